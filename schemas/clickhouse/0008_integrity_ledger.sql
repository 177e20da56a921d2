-- The integrity ledger: which parts of `events` a full `dossier inspect verify` recomputed every
-- hash of, and the hash breaks it found. The audit's INTEGRITY-HASH then recomputes only the
-- parts stored, merged with new rows or rewritten since (inspection/ledger.py says when a part
-- counts as covered). One row per part and run; nothing is ever updated.
CREATE TABLE IF NOT EXISTS integrity_runs
(
    run_id UUID,
    finished_at DateTime64(6, 'UTC'),
    table_uuid UUID,
    events UInt64,
    parts UInt32,
    breaks UInt64
)
ENGINE = MergeTree
ORDER BY (finished_at, run_id);

CREATE TABLE IF NOT EXISTS integrity_parts
(
    run_id UUID,
    table_uuid UUID,
    partition_id String,
    part String,
    min_block Int64,
    max_block Int64,
    data_version Int64,
    rows UInt64,
    checksum String
)
ENGINE = MergeTree
ORDER BY (table_uuid, partition_id, min_block, max_block, data_version);

CREATE TABLE IF NOT EXISTS integrity_breaks
(
    run_id UUID,
    table_uuid UUID,
    dossier_id String,
    seq Int64
)
ENGINE = MergeTree
ORDER BY (table_uuid, dossier_id, seq);
