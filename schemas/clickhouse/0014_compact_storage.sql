-- Storage for the city's year (~275 million events on one machine).
--
-- 1. The hash chain in one stream. hash and prev_hash are 32 random bytes each, so apart they cost
--    ~62 bytes an event on disk whatever the codec. Yet prev_hash of seq n is, byte for byte, hash of
--    seq n-1, and events is sorted by (dossier_id, seq): stored as one array column [prev_hash, hash],
--    each prev_hash lies right after the hash it repeats, and the compressor stores it as a
--    back-reference of a few bytes (measured on 996,600 simulated events: 33.6 bytes an event for
--    both, against 62.2). Nothing is derived or dropped: both values are stored exactly as the event
--    carried them, a broken link stays visible (it just compresses worse), and hash and prev_hash remain
--    readable under their contract names as ALIAS columns (chain[1], chain[2]). ALIAS columns are not
--    part of SELECT *: name them (the inspectors' console includes them in * for its sessions).
--    The loader stages each batch with [prev_hash, hash] AS chain.
--
--    A store that holds events already is rewritten once (the UPDATE below is a mutation over every
--    part; it waits until done). Run it with the loaders stopped. Re-running the file after a crash
--    is safe: once hash and prev_hash are aliases of chain, the UPDATE rewrites chain with itself.
--    Parts rewritten here are new parts: the integrity ledger does not cover them until the next full
--    `dossier inspect verify`.
ALTER TABLE events ADD COLUMN IF NOT EXISTS chain Array(FixedString(32)) CODEC(ZSTD(1)) AFTER status;

ALTER TABLE events UPDATE chain = [prev_hash, hash] WHERE 1 SETTINGS mutations_sync = 2;

ALTER TABLE events
    DROP COLUMN IF EXISTS prev_hash,
    DROP COLUMN IF EXISTS hash,
    ADD COLUMN prev_hash FixedString(32) ALIAS chain[1] AFTER chain,
    ADD COLUMN hash FixedString(32) ALIAS chain[2] AFTER prev_hash;

-- 2. ZSTD instead of LZ4, and Delta before it for the sorted timestamps and sequence numbers. With
--    step 1, on the same 996,600 events with every part written this way: events 94.1 bytes an event
--    instead of 162.5, the derived tables 17.7 instead of 32.6 (strings and the nullable columns of
--    the contract compress about twice as well). ZSTD(1) costs ~0.6 CPU-microseconds an event more
--    than LZ4 when a part is written (compact parts of those events: 1.93 s against 1.34 s), so the
--    loader writes its staging parts with LZ4 and merges recompress them; levels above 1 gained under
--    2 %. A codec change is metadata only: parts written from now on, and merges, use it; existing
--    parts keep LZ4 until they merge.
ALTER TABLE events
    MODIFY COLUMN event_id CODEC(ZSTD(1)),
    MODIFY COLUMN dossier_id CODEC(ZSTD(1)),
    MODIFY COLUMN seq CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN event_type CODEC(ZSTD(1)),
    MODIFY COLUMN occurred_at CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN recorded_at CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN unit_code CODEC(ZSTD(1)),
    MODIFY COLUMN actor_id CODEC(ZSTD(1)),
    MODIFY COLUMN actor_role CODEC(ZSTD(1)),
    MODIFY COLUMN procedure_code CODEC(ZSTD(1)),
    MODIFY COLUMN rule_set CODEC(ZSTD(1)),
    MODIFY COLUMN applicant_ref CODEC(ZSTD(1)),
    MODIFY COLUMN applicant_kind CODEC(ZSTD(1)),
    MODIFY COLUMN channel CODEC(ZSTD(1)),
    MODIFY COLUMN status CODEC(ZSTD(1)),
    MODIFY COLUMN procedure_version CODEC(ZSTD(1)),
    MODIFY COLUMN step_code CODEC(ZSTD(1)),
    MODIFY COLUMN due_at CODEC(ZSTD(1)),
    MODIFY COLUMN form_code CODEC(ZSTD(1)),
    MODIFY COLUMN n_attachments CODEC(ZSTD(1)),
    MODIFY COLUMN to_unit CODEC(ZSTD(1)),
    MODIFY COLUMN to_actor CODEC(ZSTD(1)),
    MODIFY COLUMN to_role CODEC(ZSTD(1)),
    MODIFY COLUMN step_due_at CODEC(ZSTD(1)),
    MODIFY COLUMN step_budget_minutes CODEC(ZSTD(1)),
    MODIFY COLUMN reason CODEC(ZSTD(1)),
    MODIFY COLUMN new_due_at CODEC(ZSTD(1)),
    MODIFY COLUMN requested_documents CODEC(ZSTD(1)),
    MODIFY COLUMN documents CODEC(ZSTD(1)),
    MODIFY COLUMN time_limit_value CODEC(ZSTD(1)),
    MODIFY COLUMN time_limit_unit CODEC(ZSTD(1)),
    MODIFY COLUMN deadline_convention CODEC(ZSTD(1)),
    MODIFY COLUMN service_level CODEC(ZSTD(1)),
    MODIFY COLUMN amount_vnd CODEC(ZSTD(1)),
    MODIFY COLUMN payment_channel CODEC(ZSTD(1)),
    MODIFY COLUMN clock_stopped CODEC(ZSTD(1)),
    MODIFY COLUMN result_ref CODEC(ZSTD(1)),
    MODIFY COLUMN result_electronic CODEC(ZSTD(1)),
    MODIFY COLUMN return_channel CODEC(ZSTD(1)),
    MODIFY COLUMN rating CODEC(ZSTD(1)),
    MODIFY COLUMN override_field CODEC(ZSTD(1)),
    MODIFY COLUMN override_old CODEC(ZSTD(1)),
    MODIFY COLUMN override_new CODEC(ZSTD(1)),
    MODIFY COLUMN ref_seq CODEC(ZSTD(1)),
    MODIFY COLUMN unknown_facts CODEC(ZSTD(1)),
    MODIFY COLUMN _topic CODEC(ZSTD(1)),
    MODIFY COLUMN _partition CODEC(ZSTD(1)),
    MODIFY COLUMN _offset CODEC(ZSTD(1)),
    MODIFY COLUMN _ingested_at CODEC(Delta, ZSTD(1));

-- The derived tables the same way (Delta on dossier_steps' sorted seq and time).
ALTER TABLE dossier_steps
    MODIFY COLUMN dossier_id CODEC(ZSTD(1)),
    MODIFY COLUMN seq CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN procedure_code CODEC(ZSTD(1)),
    MODIFY COLUMN event_type CODEC(ZSTD(1)),
    MODIFY COLUMN us CODEC(Delta, ZSTD(1)),
    MODIFY COLUMN is_start CODEC(ZSTD(1)),
    MODIFY COLUMN budget CODEC(ZSTD(1)),
    MODIFY COLUMN due_us CODEC(ZSTD(1)),
    MODIFY COLUMN r_actor CODEC(ZSTD(1)),
    MODIFY COLUMN r_role CODEC(ZSTD(1)),
    MODIFY COLUMN r_unit CODEC(ZSTD(1)),
    MODIFY COLUMN g_actor CODEC(ZSTD(1)),
    MODIFY COLUMN g_unit CODEC(ZSTD(1));

ALTER TABLE daily_events
    MODIFY COLUMN day CODEC(ZSTD(1)),
    MODIFY COLUMN unit_code CODEC(ZSTD(1)),
    MODIFY COLUMN procedure_code CODEC(ZSTD(1)),
    MODIFY COLUMN channel CODEC(ZSTD(1)),
    MODIFY COLUMN outcome CODEC(ZSTD(1)),
    MODIFY COLUMN status CODEC(ZSTD(1)),
    MODIFY COLUMN dossier_id CODEC(ZSTD(1)),
    MODIFY COLUMN seq CODEC(ZSTD(1));

ALTER TABLE dossier_facts
    MODIFY COLUMN dossier_id CODEC(ZSTD(1)),
    MODIFY COLUMN reception CODEC(ZSTD(1)),
    MODIFY COLUMN done CODEC(ZSTD(1)),
    MODIFY COLUMN returned CODEC(ZSTD(1)),
    MODIFY COLUMN stops CODEC(ZSTD(1)),
    MODIFY COLUMN supplements CODEC(ZSTD(1)),
    MODIFY COLUMN apologies CODEC(ZSTD(1)),
    MODIFY COLUMN pause_events CODEC(ZSTD(1)),
    MODIFY COLUMN flags CODEC(ZSTD(1)),
    MODIFY COLUMN ratings CODEC(ZSTD(1));

ALTER TABLE dossier_state
    MODIFY COLUMN dossier_id CODEC(ZSTD(1)),
    MODIFY COLUMN seq CODEC(ZSTD(1)),
    MODIFY COLUMN event_type CODEC(ZSTD(1)),
    MODIFY COLUMN status CODEC(ZSTD(1)),
    MODIFY COLUMN occurred_at CODEC(ZSTD(1)),
    MODIFY COLUMN recorded_at CODEC(ZSTD(1)),
    MODIFY COLUMN unit_code CODEC(ZSTD(1)),
    MODIFY COLUMN procedure_code CODEC(ZSTD(1)),
    MODIFY COLUMN channel CODEC(ZSTD(1)),
    MODIFY COLUMN applicant_kind CODEC(ZSTD(1)),
    MODIFY COLUMN actor_id CODEC(ZSTD(1)),
    MODIFY COLUMN actor_role CODEC(ZSTD(1)),
    MODIFY COLUMN step_code CODEC(ZSTD(1)),
    MODIFY COLUMN due_at CODEC(ZSTD(1));
