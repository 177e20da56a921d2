-- The access log: one row per `dossier inspect` command run against the store (who, when, the command and
-- its parameters, rows returned, SHA-256 of its output, exit code), hash-chained: `hash` is the SHA-256 of a
-- canonical encoding of the row with `prev_hash`, the previous row's `hash` (dossier_runtime/accessrecord.py
-- and docs/access-log.md say which). Hashes are lowercase hex. Nothing is ever updated or deleted.
--
-- Appends are deduplicated by a token naming the seq they take (insert_deduplication_token), so two inspectors
-- that race for one seq cannot both store it: the loser finds another hash under that seq and appends again.
CREATE TABLE IF NOT EXISTS access_log
(
    seq           UInt64,
    at            DateTime64(6, 'UTC'),
    inspector     String,
    command       String,
    params        String,
    exit_code     Int32,
    rows          Nullable(UInt64),
    output_sha256 String,
    via           String,
    prev_hash     String,
    hash          String
)
ENGINE = MergeTree
ORDER BY seq
SETTINGS non_replicated_deduplication_window = 100000;
