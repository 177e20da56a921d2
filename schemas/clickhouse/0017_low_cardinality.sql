-- The columns of events whose values come from short lists (event types, units, procedures, roles,
-- channels, the rulebook's terms, the Kafka topic or loaded file) as LowCardinality: each part stores
-- every distinct value once and a small integer per row. A value is still a string everywhere it is
-- read (the hash chain's canonical form, query results, exports), and any new value is taken without
-- a migration, as with String.
--
-- Why: almost every audit rule and inspector query starts by scanning event_type, unit_code or
-- procedure_code over the whole store, and every command's provenance groups by _topic. As String
-- each of those scans decompressed ~15-27 bytes an event; as LowCardinality ~1. Measured on
-- 20,364,312 simulated events (BENCHMARKS.md, "Short-list columns as LowCardinality"): events 1,846
-- → 1,630 MB on disk (-10.6 bytes an event), event_type 29.5 → 4.1 MB compressed and 418 → 18 MB
-- to decompress.
--
-- Left as they are: the identifiers and free texts whose values are mostly distinct (event_id,
-- dossier_id, actor_id, to_actor, applicant_ref, reason, result_ref, override_old, override_new).
--
-- A store that holds events already has these columns rewritten once (a mutation over every part;
-- it waits until done): run it with the loaders stopped. Re-running the file is safe (a column of
-- that type already is left as it is). Parts rewritten here are new parts: the integrity ledger
-- does not cover them until the next full `dossier inspect verify`.
ALTER TABLE events
    MODIFY COLUMN event_type LowCardinality(String),
    MODIFY COLUMN unit_code LowCardinality(String),
    MODIFY COLUMN actor_role LowCardinality(String),
    MODIFY COLUMN procedure_code LowCardinality(String),
    MODIFY COLUMN rule_set LowCardinality(String),
    MODIFY COLUMN applicant_kind LowCardinality(String),
    MODIFY COLUMN channel LowCardinality(String),
    MODIFY COLUMN procedure_version LowCardinality(Nullable(String)),
    MODIFY COLUMN step_code LowCardinality(Nullable(String)),
    MODIFY COLUMN form_code LowCardinality(Nullable(String)),
    MODIFY COLUMN to_unit LowCardinality(Nullable(String)),
    MODIFY COLUMN to_role LowCardinality(Nullable(String)),
    MODIFY COLUMN time_limit_unit LowCardinality(Nullable(String)),
    MODIFY COLUMN deadline_convention LowCardinality(Nullable(String)),
    MODIFY COLUMN service_level LowCardinality(Nullable(String)),
    MODIFY COLUMN payment_channel LowCardinality(Nullable(String)),
    MODIFY COLUMN return_channel LowCardinality(Nullable(String)),
    MODIFY COLUMN override_field LowCardinality(Nullable(String)),
    MODIFY COLUMN _topic LowCardinality(String)
SETTINGS mutations_sync = 2;
