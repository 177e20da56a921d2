"""Migration 0020: timestamps through T64, offsets through Delta, the derived tables' short lists as LowCardinality.

A store loaded before it keeps every part of ``events`` as it was (the codecs are metadata), so the integrity
ledger still vouches for all of them; the derived tables are rewritten with the new types and read the same.
Once the parts are merged with the new codecs every value reads back the same, and a store migrated midway
holds what a store built with 0020 holds after the same loads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection import ledger
from inspection.accountability import AccountabilityQuery, compute_accountability
from inspection.verify import verify
from tests.test_consumers_support import events, load_container, rows_fn, write_container
from tests.test_scorecard_support import load_city, simulate_city

_EVENTS_PARTS = (
    "SELECT name FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active ORDER BY name"
)
_LATER = datetime(2030, 1, 1, tzinfo=UTC)
_CODECS = {
    ("events", "occurred_at"): "T64",
    ("events", "recorded_at"): "T64",
    ("events", "_offset"): "Delta",
    ("dossier_steps", "us"): "T64",
    ("dossier_state", "occurred_at"): "T64",
    ("dossier_state", "recorded_at"): "T64",
}
_LISTS = {
    "dossier_steps": ("procedure_code", "r_unit", "g_unit"),
    "dossier_state": ("event_type", "unit_code", "procedure_code", "channel", "applicant_kind", "actor_role"),
}


def _snapshot(store: Store, *, ingested: bool = True) -> dict[str, Any]:
    """Every stored row of events and the derived tables (as text), and the accountability report over them."""
    skip = "" if ingested else " EXCEPT _ingested_at"
    out: dict[str, Any] = {
        "events": store.query(f"SELECT *{skip}, prev_hash, hash FROM events ORDER BY dossier_id, seq, event_id").rows
    }
    for table, order in (("dossier_steps", "dossier_id, seq"), ("dossier_state", "dossier_id")):
        out[table] = store.query(f"SELECT * FROM {table} FINAL ORDER BY {order}").rows
    for by in ("official", "unit", "pair"):
        out[by] = compute_accountability(store, AccountabilityQuery(by=by, as_of=_LATER)).rows
    return out


def test_a_store_loaded_before_0020_keeps_its_parts_and_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consumers.migrations as mig

    released = mig.released_migrations()
    sim = tmp_path / "sim"
    simulate_city(sim, dossiers=400, violations="all", seed=5)
    later = write_container(tmp_path / "later.avro", events(12, start=90))

    with opened_store(Settings(data_dir=tmp_path / "old"), role="writer", serve=False) as store:
        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 20])
        migrate(store)
        load_city(store, sim, tmp_path / "old")
        parts = store.query(_EVENTS_PARTS).rows
        before = _snapshot(store)
        assert before["events"] and before["dossier_steps"] and before["dossier_state"] and before["official"]
        full = verify(rows_fn(store))
        assert full.entry is not None
        ledger.record(store.append, full.entry)

        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        assert {m.version: m.state for m in migrate(store)}[20] == "applied now"
        columns = {(t, c): (ty, codec) for t, c, ty, codec in store.query(
            "SELECT table, name, type, compression_codec FROM system.columns WHERE database = currentDatabase() "
            "AND table IN ('events', 'dossier_steps', 'dossier_state')").rows}  # fmt: skip
        for key, codec in _CODECS.items():
            assert codec in columns[key][1], (key, columns[key])
        for table, names in _LISTS.items():
            for name in names:
                assert columns[(table, name)][0] == "LowCardinality(String)", (table, name, columns[(table, name)])
        assert columns[("dossier_state", "step_code")][0] == "LowCardinality(Nullable(String))"
        assert columns[("dossier_steps", "r_actor")][0] == "String"  # the officials' ids stay as they were

        # events was not rewritten: the same parts, every one still vouched for by the ledger.
        assert store.query(_EVENTS_PARTS).rows == parts
        coverage = ledger.coverage(rows_fn(store))
        assert coverage.covered_rows == coverage.rows == len(before["events"]), coverage.describe()
        assert _snapshot(store) == before

        # Merged with the new codecs, every value reads back the same.
        for table in ("events", "dossier_steps", "dossier_state"):
            store.command(f"OPTIMIZE TABLE {table} FINAL")
        assert store.query(_EVENTS_PARTS).rows != parts
        assert _snapshot(store) == before

        # A crash anywhere in the file: running all of it again changes nothing.
        for statement in next(m for m in released if m.version == 20).statements():
            store.command(statement)
        assert _snapshot(store) == before

        assert load_container(store, later) == 12 * 8
        migrated = _snapshot(store, ingested=False)

    # A store built with 0020 from the start holds the same after the same loads.
    with opened_store(Settings(data_dir=tmp_path / "new"), role="writer", serve=False) as store:
        migrate(store)
        load_city(store, sim, tmp_path / "new")
        assert load_container(store, later) == 12 * 8
        assert _snapshot(store, ingested=False) == migrated
