-- A bloom filter of dossier_id per granule of events, so a read of a few dossiers skips the parts that
-- do not hold them.
--
-- A dossier's events sit in the parts of the months it lived through, but every part's key range spans
-- nearly every dossier id (an id starts with its unit), so the primary key alone leaves one granule of
-- every part to read for a dossier it does not hold: a replay read dossier_id from every part, then
-- ~45 columns of the two or three that hold it. With this index the other parts are dropped by their
-- filter (a few hundred bytes each) before any column is read. Measured on 20,364,312 simulated events
-- in 19 parts (BENCHMARKS.md, "Daily counts from events, a bloom filter of dossier_id: migrations 0018
-- and 0019"): a replay read from disk p50 ~100 -> ~52 ms; the index is 2.5 MB (0.12 bytes an event).
--
-- A store holding events has the index built once for its parts (a mutation; it waits until done; 3.8 s
-- on that store): run it with the loaders stopped. Parts it rewrites are new parts: the integrity ledger
-- does not cover them until the next full `dossier inspect verify`, and the next loader reads their event
-- ids again once. Re-running the file is safe; it builds the index again (the parts are rewritten again).
ALTER TABLE events ADD INDEX IF NOT EXISTS dossier_bloom dossier_id TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE events MATERIALIZE INDEX dossier_bloom SETTINGS mutations_sync = 2;
