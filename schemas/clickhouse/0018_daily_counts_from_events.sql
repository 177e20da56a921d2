-- daily_counts_view counts events itself; the daily_events table and its view are dropped.
--
-- 0009 kept one row per event in daily_events (the grouping keys and the event's identity, collapsed
-- on merge) so that a replayed event was not counted twice. Since 0017 every grouping key of the
-- view is a LowCardinality column of events, and events holds each (dossier_id, seq) once (the
-- loaders' duplicate check), so counting events directly is exact by construction and reads no
-- more: on 20,364,312 simulated events (BENCHMARKS.md, "Daily counts from events, a bloom filter of
-- dossier_id: migrations 0018 and 0019") the whole view 2.1 s from events against 2.8 s through
-- daily_events FINAL; one day 0.17 s against 0.05 s (the month's partition is read). The loaders
-- stop paying for a fourth derived view (0.72 s of the feed's 2.37 s per million events) and the
-- store for its copy of every event (~3.5 bytes an event).
--
-- The view keeps its name and columns, and counts every stored event from the moment it exists (no
-- backfill). Re-running the file is safe. Run it with the loaders stopped, like 0009.
DROP VIEW IF EXISTS daily_events_mv;

DROP TABLE IF EXISTS daily_events;

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
    SELECT
        toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, unit_code, procedure_code, channel, event_type AS outcome, status,
        count() AS events
    FROM events
    GROUP BY day, unit_code, procedure_code, channel, outcome, status
);
