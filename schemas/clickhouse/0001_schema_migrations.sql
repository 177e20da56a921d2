-- Which numbered migrations have been applied, with the checksum of the file as applied.
-- `dossier consume migrate` refuses to continue when a released file no longer matches.
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
ORDER BY version;
