"""Migration 0014: hash and prev_hash in one column (``chain``), ZSTD everywhere.

A store loaded before it keeps every stored byte of the chain and verifies the same; re-running the file (a
crash in the middle) changes nothing; the loaders go on writing the new layout; a link broken in the store is
still found, because prev_hash is stored as it came, not derived from the previous event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consumers.bulk import load_file
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection.verify import verify
from tests.test_consumers_support import events, insert_old_layout, write_container

_CHAIN_ROWS = "SELECT dossier_id, seq, hex(prev_hash), hex(hash) FROM events ORDER BY dossier_id, seq"


def _query(store: Store) -> Any:
    return lambda sql, params: store.query(sql, params).rows


def test_a_store_loaded_before_0014_keeps_its_chain_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consumers.migrations as mig

    released = mig.released_migrations()
    first, second = events(60), events(40, start=60)
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 14])
        migrate(store)
        insert_old_layout(store, write_container(tmp_path / "a.avro", first))
        before = store.query(_CHAIN_ROWS).rows
        assert len(before) == len(first) and verify(_query(store)).ok

        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version <= 14])
        assert {m.version: m.state for m in migrate(store)}[14] == "applied now"
        layout = dict(
            store.query(
                "SELECT name, default_kind FROM system.columns WHERE table = 'events' "
                "AND database = currentDatabase() AND name IN ('chain', 'prev_hash', 'hash')"
            ).rows
        )
        assert layout == {"chain": "", "prev_hash": "ALIAS", "hash": "ALIAS"}
        assert store.query(_CHAIN_ROWS).rows == before
        # A crash anywhere in the file: running all of it again leaves the same bytes.
        for statement in next(m for m in released if m.version == 14).statements():
            store.command(statement)
        assert store.query(_CHAIN_ROWS).rows == before
        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        migrate(store)
        report = verify(_query(store))
        assert report.ok and report.events == len(first), report.findings

        # The loader writes the new layout, the chain and its checks go on across both.
        sink = Sink(store, engine="MergeTree")
        try:
            loaded = load_file(sink, write_container(tmp_path / "b.avro", second), tmp_path)
        finally:
            sink.close()
        assert loaded.result.stored == len(second)
        report = verify(_query(store))
        assert report.ok and report.events == len(first) + len(second), report.findings
        codecs = dict(
            store.query(
                "SELECT name, compression_codec FROM system.columns WHERE table = 'events' "
                "AND database = currentDatabase() AND name IN ('chain', 'seq', 'event_id')"
            ).rows
        )
        assert codecs == {
            "chain": "CODEC(ZSTD(1))",
            "seq": "CODEC(Delta(8), ZSTD(1))",  # occurred_at: T64 since 0020
            "event_id": "CODEC(ZSTD(1))",
        }


def test_a_link_broken_in_the_store_is_still_found(tmp_path: Path) -> None:
    """prev_hash is stored as the event carried it: rewriting it in the store is a finding, not a derivation."""
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            load_file(sink, write_container(tmp_path / "a.avro", events(3)), tmp_path)
        finally:
            sink.close()
        dossier = store.query("SELECT min(dossier_id) FROM events").scalar()
        store.command(
            "ALTER TABLE events UPDATE chain = [unhex(repeat('ab', 32)), chain[2]] "
            "WHERE dossier_id = {d:String} AND seq = 4 SETTINGS mutations_sync = 2",
            {"d": dossier},
        )
        found = {(f.kind, f.dossier_id, f.seq) for f in verify(_query(store)).findings}
        assert (dossier, 4) in {(d, s) for _k, d, s in found}
        assert {k for k, d, s in found if (d, s) == (dossier, 4)} & {"prev-hash-break", "hash-break"}
