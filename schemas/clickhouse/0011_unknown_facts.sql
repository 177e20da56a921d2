-- Schema v2 (dossier_event.v2.avsc): unknown_facts, the facts an event's source did not carry (the
-- fields it names hold their empty value, meaning "not said"). Events stored before this migration
-- read as [] (everything they carry was said), which is what a v1 payload means. The hash chain's
-- canonical form leaves an empty array out, so every stored hash stays valid.
ALTER TABLE events ADD COLUMN IF NOT EXISTS unknown_facts Array(LowCardinality(String)) AFTER ref_seq;
