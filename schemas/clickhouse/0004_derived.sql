-- Derived tables, kept by materialized views on events_feed.
--
-- The loader writes every batch it stores into events_feed (a Null table: nothing is kept
-- there, only the views fire), so the views see exactly what reaches the raw log, whichever
-- way it got there (an INSERT, or partitions attached from a staging table). Both targets are
-- idempotent: feeding the same event twice (a replay after a crash) changes nothing.
CREATE TABLE IF NOT EXISTS events_feed
(
    event_id String,
    dossier_id String,
    seq Int64,
    event_type String,
    status Int32,
    occurred_at DateTime64(6, 'UTC'),
    recorded_at DateTime64(6, 'UTC'),
    unit_code String,
    procedure_code String,
    channel String,
    applicant_kind String,
    actor_id String,
    actor_role String,
    step_code Nullable(String),
    due_at Nullable(DateTime64(6, 'UTC'))
)
ENGINE = Null;

-- The current state of each dossier: its latest event. Query with FINAL (or argMax by seq).
CREATE TABLE IF NOT EXISTS dossier_state
(
    dossier_id String,
    seq Int64,
    event_type String,
    status Int32,
    occurred_at DateTime64(6, 'UTC'),
    recorded_at DateTime64(6, 'UTC'),
    unit_code String,
    procedure_code String,
    channel String,
    applicant_kind String,
    actor_id String,
    actor_role String,
    step_code Nullable(String),
    due_at Nullable(DateTime64(6, 'UTC'))
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY dossier_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_state_mv TO dossier_state AS
SELECT
    dossier_id,
    tupleElement(latest, 1) AS seq,
    tupleElement(latest, 2) AS event_type,
    tupleElement(latest, 3) AS status,
    tupleElement(latest, 4) AS occurred_at,
    tupleElement(latest, 5) AS recorded_at,
    tupleElement(latest, 6) AS unit_code,
    tupleElement(latest, 7) AS procedure_code,
    tupleElement(latest, 8) AS channel,
    tupleElement(latest, 9) AS applicant_kind,
    tupleElement(latest, 10) AS actor_id,
    tupleElement(latest, 11) AS actor_role,
    tupleElement(latest, 12) AS step_code,
    tupleElement(latest, 13) AS due_at
FROM
(
    SELECT dossier_id, argMax(tuple(seq, event_type, status, occurred_at, recorded_at, unit_code, procedure_code, channel, applicant_kind, actor_id, actor_role, step_code, due_at), seq) AS latest
    FROM events_feed
    GROUP BY dossier_id
);

-- Daily counts per unit x procedure x channel x outcome (the event type) and status after it,
-- days in Asia/Ho_Chi_Minh. The count is a set of event-id hashes (uniqExact), so a replayed event
-- is not counted twice. Read it through daily_counts_view.
CREATE TABLE IF NOT EXISTS daily_counts
(
    day Date,
    unit_code String,
    procedure_code String,
    channel String,
    outcome String,
    status Int32,
    event_ids AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, unit_code, procedure_code, channel, outcome, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_counts_mv TO daily_counts AS
SELECT
    toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day,
    unit_code,
    procedure_code,
    channel,
    event_type AS outcome,
    status,
    uniqExactState(sipHash64(event_id)) AS event_ids
FROM events_feed
GROUP BY day, unit_code, procedure_code, channel, outcome, status;

CREATE VIEW IF NOT EXISTS daily_counts_view AS
SELECT day, unit_code, procedure_code, channel, outcome, status, uniqExactMerge(event_ids) AS events
FROM daily_counts
GROUP BY day, unit_code, procedure_code, channel, outcome, status;
