-- Daily counts kept as one row per event instead of one aggregate state per group.
--
-- 0004 kept daily_counts as a set of event-id hashes per (day, unit, procedure, channel,
-- outcome, status): idempotent, but on the city's data a group holds ~1.4 events, so every
-- batch paid a hash GROUP BY over six string keys and wrote a hash-set state per event or two
-- (2.1-2.8 CPU-us per event on simulated events, the dearest of the derived views). Here the
-- view writes the grouping keys and the event's identity (dossier_id, seq), sorted: a replayed
-- event is the same row again and collapses on merge, and daily_counts_view counts with FINAL
-- (1.0 CPU-us per event to keep, and the view reads faster). The keys repeat a lot, hence
-- LowCardinality. With dossier_id the table is sharded by dossier on a cluster like the others.
--
-- daily_counts_view keeps its name and columns. The new view is created and backfilled from
-- events before the old one is dropped; a re-run repeats the backfill, which collapses too. Run it
-- with the loaders stopped, like 0006: a batch fed to the views just before daily_events_mv
-- existed and written to events just after the backfill read them would be missing from the counts.
CREATE TABLE IF NOT EXISTS daily_events
(
    day Date,
    unit_code LowCardinality(String),
    procedure_code LowCardinality(String),
    channel LowCardinality(String),
    outcome LowCardinality(String),
    status Int32,
    dossier_id String,
    seq Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, unit_code, procedure_code, channel, outcome, status, dossier_id, seq);

CREATE MATERIALIZED VIEW IF NOT EXISTS daily_events_mv TO daily_events AS
SELECT
    toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, unit_code, procedure_code, channel, event_type AS outcome, status,
    dossier_id, seq
FROM events_feed;

INSERT INTO daily_events
SELECT
    toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, unit_code, procedure_code, channel, event_type AS outcome, status,
    dossier_id, seq
FROM events;

DROP VIEW IF EXISTS daily_counts_view;

CREATE VIEW IF NOT EXISTS daily_counts_view AS
SELECT
    day,
    CAST(unit_code AS String) AS unit_code,
    CAST(procedure_code AS String) AS procedure_code,
    CAST(channel AS String) AS channel,
    CAST(outcome AS String) AS outcome,
    status,
    events
FROM
(
    SELECT day, unit_code, procedure_code, channel, outcome, status, count() AS events
    FROM daily_events FINAL
    GROUP BY day, unit_code, procedure_code, channel, outcome, status
);

DROP VIEW IF EXISTS daily_counts_mv;

DROP TABLE IF EXISTS daily_counts;
