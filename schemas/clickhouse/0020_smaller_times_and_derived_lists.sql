-- Smaller on disk: timestamps through T64, file and Kafka offsets through Delta, and the short-list columns of
-- the derived tables as LowCardinality, as 0017 made those of events.
--
-- 1. Codecs (metadata only: no part is rewritten; parts written from now on and merges use them, so a stored
--    part shrinks when it next merges). Sorted by dossier rather than by time, the timestamps took less
--    through T64 (which keeps only the bits a block of values uses) and ZSTD than through Delta and ZSTD.
--    _offset is a record index in a loaded file or a Kafka offset, rising within a dossier: Delta leaves
--    small numbers. Left with their codecs: the Nullable times (due_at, step_due_at,
--    dossier_steps.due_us), which T64 made larger (0.58 -> 1.22, 1.31 -> 2.06 and 1.17 -> 1.54 bytes an event).
--    The integrity ledger keeps vouching for every part: a codec does not change what a part holds.
-- 2. The derived tables' short-list columns as LowCardinality (a mutation of dossier_steps and dossier_state
--    only, not of events; it waits until done, ~2 s for 20 million events). The officials' ids (r_actor,
--    g_actor, actor_id) stay String: 1.4M distinct actors among 20 million simulated events. The loaders'
--    views write strings into these columns as before; a value is still a string everywhere it is read.
--
-- Measured on 20,364,312 simulated events loaded into a new store, every table merged (BENCHMARKS.md,
-- "Smaller times, offsets and derived lists: migration 0020"), bytes an event: events 79.7 -> 77.8
-- (occurred_at 5.61 -> 5.20, recorded_at 5.67 -> 5.20, _offset 1.39 -> 0.42), dossier_steps 7.30 -> 6.46,
-- dossier_state 2.12 -> 1.59; all tables 92.6 -> 89.3.
--
-- Re-running the file after a crash is safe: a column that has the type already is left as it is.
ALTER TABLE events
    MODIFY COLUMN occurred_at CODEC(T64, ZSTD(1)),
    MODIFY COLUMN recorded_at CODEC(T64, ZSTD(1)),
    MODIFY COLUMN _offset CODEC(Delta, ZSTD(1));

ALTER TABLE dossier_steps
    MODIFY COLUMN us CODEC(T64, ZSTD(1)),
    MODIFY COLUMN procedure_code LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN r_unit LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN g_unit LowCardinality(String) CODEC(ZSTD(1))
SETTINGS mutations_sync = 2;

ALTER TABLE dossier_state
    MODIFY COLUMN occurred_at CODEC(T64, ZSTD(1)),
    MODIFY COLUMN recorded_at CODEC(T64, ZSTD(1)),
    MODIFY COLUMN event_type LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN unit_code LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN procedure_code LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN channel LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN applicant_kind LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN actor_role LowCardinality(String) CODEC(ZSTD(1)),
    MODIFY COLUMN step_code LowCardinality(Nullable(String)) CODEC(ZSTD(1))
SETTINGS mutations_sync = 2;
