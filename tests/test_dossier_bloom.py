"""Migration 0019: a bloom filter of ``dossier_id`` per granule of ``events``.

A store loaded before it has the index built for every part; a read of one dossier then keeps only the
parts that hold it, where the primary key alone kept every part whose key range spans the id. Histories
read the same, the rewritten parts are checked again (not vouched for) by the next ``verify --use-ledger``,
and parts the loaders write afterwards carry the index.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection import ledger
from inspection.history import load_history
from inspection.verify import verify
from tests.test_consumers_support import events, load_container, rows_fn, write_container

_PARTS = (
    "SELECT name, secondary_indices_compressed_bytes FROM system.parts "
    "WHERE database = currentDatabase() AND table = 'events' AND active ORDER BY name"
)


def _parts_read(store: Store, dossier_id: str) -> tuple[int, int]:
    """(parts kept, parts of the table) after every index, from ``EXPLAIN indexes = 1`` of a replay's read."""
    plan = "\n".join(
        row[0]
        for row in store.query(
            "EXPLAIN indexes = 1 SELECT * FROM events WHERE dossier_id = {id:String}", {"id": dossier_id}
        ).rows
    )
    kept = re.findall(r"Parts: (\d+)/(\d+)", plan)
    assert kept, plan
    return int(kept[-1][0]), int(kept[0][1])


def test_a_store_loaded_before_0019_gets_the_index_and_a_replay_skips_other_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consumers.migrations as mig

    released = mig.released_migrations()
    # Both files span two months (four parts) and their dossiers interleave in key order: in the month of a
    # dossier of the first file, the second file's part spans its id too.
    every = events(60)
    first = [e for e in every if int(e.dossier_id[-11:-5]) % 2 == 0]
    second = [e for e in every if int(e.dossier_id[-11:-5]) % 2 == 1]
    assert first and second
    one = first[0].dossier_id
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 19])
        migrate(store)
        assert load_container(store, write_container(tmp_path / "a.avro", first)) == len(first)
        assert load_container(store, write_container(tmp_path / "b.avro", second)) == len(second)
        parts = store.query(_PARTS).rows
        assert len(parts) == 4 and all(size == 0 for _name, size in parts), parts
        assert _parts_read(store, one) == (2, 4)  # the primary key keeps both parts of the month
        history = load_history(store, one)
        full = verify(rows_fn(store))
        assert full.ok and full.entry is not None
        ledger.record(store.append, full.entry)

        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        assert {m.version: m.state for m in migrate(store)}[19] == "applied now"
        parts = store.query(_PARTS).rows
        assert len(parts) == 4 and all(size > 0 for _name, size in parts), parts
        assert _parts_read(store, one) == (1, 4)
        assert load_history(store, one) == history
        # A crash anywhere in the file: running all of it again builds the index again, the same.
        for statement in next(m for m in released if m.version == 19).statements():
            store.command(statement)
        assert _parts_read(store, one) == (1, 4) and load_history(store, one) == history

        # The parts the index was built into are new parts: the ledger vouches for none of them.
        coverage = ledger.coverage(rows_fn(store))
        assert coverage.covered_rows == 0, coverage.describe()
        report = verify(rows_fn(store), coverage=coverage)
        assert report.ok and report.events == len(every) and report.findings == full.findings

        # Parts the loader writes afterwards carry the index.
        later = events(10, start=60)
        assert load_container(store, write_container(tmp_path / "c.avro", later)) == len(later)
        parts = store.query(_PARTS).rows
        assert len(parts) > 4 and all(size > 0 for _name, size in parts), parts
        assert _parts_read(store, later[0].dossier_id)[0] == 1
