-- Messages and rows that could not be stored, with where they came from and why.
-- kind: bad-magic | unknown-fingerprint | undecodable | invalid | conflict.
-- source: kafka (topic/partition/offset) or file (topic = file:<path>, offset = record index).
-- Replaying the same message after a crash replaces its row instead of adding one
-- (ReplacingMergeTree on the position and a hash of the raw bytes: a different message at a
-- reused offset after a broker reset stays a separate row). Count with FINAL.
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_at DateTime64(6, 'UTC') DEFAULT now64(6),
    source LowCardinality(String),
    topic String,
    partition Int32,
    offset Int64,
    kind LowCardinality(String),
    error String,
    event_id Nullable(String),
    dossier_id Nullable(String),
    seq Nullable(Int64),
    raw String,
    raw_hash UInt64 MATERIALIZED sipHash64(raw)
)
ENGINE = ReplacingMergeTree(dead_at)
ORDER BY (source, topic, partition, offset, raw_hash);
