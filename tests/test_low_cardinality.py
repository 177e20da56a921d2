"""Migration 0017: the short-list columns of ``events`` as LowCardinality.

A store loaded before it reads back every value the same (NULL stays NULL, the empty string stays empty),
verifies the same, and its rewritten parts are checked again, not taken as vouched for, by the next
``verify --use-ledger``; re-running the file changes nothing; the loaders go on storing into the new types.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.migrations import migrate
from consumers.sink import Sink, read_type
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from inspection import ledger
from inspection.audit import audit, select_rules
from inspection.verify import verify
from schemas.events import FIELD_NAMES, DossierEvent
from schemas.hashchain import seal_chain
from tests.test_consumers_support import events, load_container, rows_fn, write_container

SHORT_LISTS = {
    "event_type": "LowCardinality(String)",
    "unit_code": "LowCardinality(String)",
    "procedure_code": "LowCardinality(String)",
    "channel": "LowCardinality(String)",
    "_topic": "LowCardinality(String)",
    "to_unit": "LowCardinality(Nullable(String))",
    "step_code": "LowCardinality(Nullable(String))",
    "form_code": "LowCardinality(Nullable(String))",
}
#: Every stored value as text, NULL apart from the empty string.
_ROWS = (
    "SELECT "
    + ", ".join(f"isNull(`{n}`), toString(`{n}`)" for n in (*FIELD_NAMES, "_topic", "_offset"))
    + " FROM events ORDER BY dossier_id, seq"
)


def _empty_and_text(evs: list[DossierEvent]) -> list[DossierEvent]:
    """The same histories, resealed, with the form code of some receptions empty and of others Vietnamese
    text; the rest stay NULL. NULL, the empty string and the text must each come back as they went in."""
    by_dossier: dict[str, list[DossierEvent]] = {}
    for e in evs:
        by_dossier.setdefault(e.dossier_id, []).append(e)
    out: list[DossierEvent] = []
    for k, history in enumerate(by_dossier.values()):
        form = "" if k % 3 == 0 else "Mẫu số 01/ĐK" if k % 3 == 1 else None
        out.extend(seal_chain(e.replace(form_code=form) if e.event_type == "DossierReceived" else e for e in history))
    return out


def test_a_store_loaded_before_0017_reads_the_same_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consumers.migrations as mig

    released = mig.released_migrations()
    first, second = _empty_and_text(events(50)), events(30, start=50)
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 17])
        migrate(store)
        assert load_container(store, write_container(tmp_path / "a.avro", first)) == len(first)
        before = store.query(_ROWS).rows
        forms = (
            "SELECT countIf(form_code = ''), countIf(form_code = 'Mẫu số 01/ĐK'), countIf(isNull(form_code)) "
            "FROM events"
        )
        assert all(store.query(forms).rows[0]), store.query(forms).rows
        full = verify(rows_fn(store))
        assert full.ok and full.entry is not None
        ledger.record(store.append, full.entry)
        # Every rule but R1, which reads what migration 0021 adds to dossier_facts (this store stops at 0016).
        rules = [r for r in select_rules([]) if r.id != "R1"]
        findings = audit(rows_fn(store), rules).findings

        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        assert {m.version: m.state for m in migrate(store)}[17] == "applied now"
        types = dict(
            store.query(
                "SELECT name, type FROM system.columns WHERE table = 'events' AND database = currentDatabase()"
            ).rows
        )
        assert {name: types[name] for name in SHORT_LISTS} == SHORT_LISTS
        assert types["dossier_id"] == types["event_id"] == types["actor_id"] == "String"
        assert store.query(_ROWS).rows == before
        # A crash anywhere in the file: running all of it again leaves the same values.
        for statement in next(m for m in released if m.version == 17).statements():
            store.command(statement)
        assert store.query(_ROWS).rows == before

        # The rewritten parts are not the parts the recorded run read: the ledger vouches for none of them.
        coverage = ledger.coverage(rows_fn(store))
        assert coverage.covered_rows == 0, coverage.describe()
        report = verify(rows_fn(store), coverage=coverage)
        assert report.ok and report.events == len(first) and report.findings == full.findings
        assert audit(rows_fn(store), rules).findings == findings

        # The loader stores into the new types; the chain and its checks go on across both.
        assert load_container(store, write_container(tmp_path / "b.avro", second)) == len(second)
        report = verify(rows_fn(store))
        assert report.ok and report.events == len(first) + len(second), report.findings
        assert store.query("SELECT count() FROM events WHERE _topic = 'file:b.avro'").scalar() == len(second)


def test_the_loaders_parse_short_lists_as_strings(tmp_path: Path) -> None:
    """Parsed straight into LowCardinality, Avro took twice the CPU of the whole parse: the loaders read those
    fields as their inner type and ClickHouse converts them as the rows are stored."""
    assert read_type("LowCardinality(String)") == "String"
    assert read_type("LowCardinality(Nullable(String))") == "Nullable(String)"
    assert read_type("Array(LowCardinality(String))") == "Array(LowCardinality(String))"
    assert read_type("Nullable(DateTime64(6, 'UTC'))") == "Nullable(DateTime64(6, 'UTC'))"
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            structure = sink.file_structure()
        finally:
            sink.close()
    assert "`event_type` String," in structure and "`to_unit` Nullable(String)," in structure
    assert "`unknown_facts` Array(LowCardinality(String))" in structure
    assert not any(f"` {t}" in structure for t in set(SHORT_LISTS.values()))
