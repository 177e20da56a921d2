-- The integrity ledger keeps every finding of a run, not only its hash breaks, so that
-- `verify --use-ledger` can leave alone the dossiers whose events all lie in parts a run
-- checked, instead of re-running seq, links, transitions and id reuse over the whole store
-- (inspection/ledger.py says when that is sound).
--
-- checks: what the run put on record. 'hashes': its hash breaks only (the runs before this
-- migration, and those an owner records from a reader's claim); 'all': every finding, every
-- dossier checked; 'scoped': every finding, the dossiers the ledger did not cover checked.
ALTER TABLE integrity_runs ADD COLUMN IF NOT EXISTS checks LowCardinality(String) DEFAULT 'hashes';

-- kind: the finding's kind (inspection.verify.KINDS); the rows before this migration are hash breaks.
ALTER TABLE integrity_breaks ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'hash-break';
