-- File loads in progress. `dossier consume load` marks every file it was given as started before any of its
-- rows reach `events`, and as completed once they all have; a load cut short (a kill inside the commit window
-- leaves part of a file stored) stays visible in `consume status` and `inspect verify` until the file is loaded
-- again, which completes it (nothing is stored twice). The latest row of a topic (file:<name>) is its state.
CREATE TABLE IF NOT EXISTS file_loads
(
    topic String,
    path String,
    state LowCardinality(String),
    at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(at)
ORDER BY topic;
