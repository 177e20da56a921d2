"""Integrity verification in ClickHouse SQL (real chDB), against the lifecycle's Python checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import pytest

from inspection.verify import legal_transitions, verify
from schemas.events import DossierEvent, EventType
from schemas.hashchain import seal_chain
from schemas.lifecycle import check_history
from schemas.registry import current_schema
from tests.eventfactory import history

E = EventType


def _clean(dossier: str) -> list[DossierEvent]:
    return history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4),
        (E.RESULT_ISSUED, 9),
        (E.RESULT_RETURNED, 10),
        dossier_id=dossier,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path / "chdb"))
    yield client
    client.close()


def _load(client: Any, tmp_path: Path, events: list[DossierEvent]) -> None:
    path = tmp_path / "events.avro"
    with path.open("wb") as f:
        fastavro.writer(f, current_schema().parsed, [e.to_record() for e in events])
    client.command("DROP TABLE IF EXISTS events")
    client.command(
        f"CREATE TABLE events ENGINE = MergeTree ORDER BY (dossier_id, seq) AS SELECT * FROM file('{path}', 'Avro')"
    )


def _query(client: Any):  # type: ignore[no-untyped-def]
    return lambda sql, params: client.query(sql, parameters=params).result_rows


def test_clean_store_verifies(store: Any, tmp_path: Path) -> None:
    events = [e for n in range(1, 4) for e in _clean(f"000.00.31.H29-240115-{n:04d}")]
    _load(store, tmp_path, events)
    report = verify(_query(store))
    assert report.ok, report.findings
    assert (report.events, report.dossiers) == (18, 3)


def test_each_kind_of_problem_is_found_with_its_first_divergent_event(store: Any, tmp_path: Path) -> None:
    gap = _clean("000.00.31.H29-240115-0001")
    del gap[3]
    tampered = _clean("000.00.31.H29-240115-0002")
    tampered[2] = tampered[2].replace(actor_id="someone-else")
    conflict = _clean("000.00.31.H29-240115-0003")
    conflict.append(conflict[4].replace(event_id="7f1c1d2e-5a4b-4c3d-9e8f-7a6b5c4d3e2f", result_ref="forged"))
    repeat = _clean("000.00.31.H29-240115-0004")
    repeat.append(repeat[1])
    start = history((E.DOSSIER_SUBMITTED, 1), (E.DOSSIER_RECEIVED, 2), dossier_id="000.00.31.H29-240115-0005")
    illegal = list(seal_chain([*start, _clean("000.00.31.H29-240115-0005")[5].replace(seq=3)]))
    _load(store, tmp_path, gap + tampered + conflict + repeat + illegal)
    report = verify(_query(store))
    found = {(f.kind, f.dossier_id[-4:], f.seq) for f in report.findings}
    assert ("seq-gap", "0001", 5) in found
    assert ("prev-hash-break", "0001", 5) not in found  # a gap is reported as a gap, not as a broken link
    assert ("hash-break", "0002", 3) in found
    assert ("conflicting-events", "0003", 5) in found
    assert ("seq-repeat", "0004", 2) in found
    assert ("illegal-transition", "0005", 3) in found
    assert report.first_divergence["000.00.31.H29-240115-0002"] == 3
    assert report.counts()["hash-break"] >= 1


def test_sql_agrees_with_the_python_lifecycle_on_hash_and_transition_checks(store: Any, tmp_path: Path) -> None:
    events = _clean("000.00.31.H29-240115-0009")
    events[3] = events[3].replace(to_actor="ld-99")
    _load(store, tmp_path, events)
    sql = {(f.kind, f.seq) for f in verify(_query(store)).findings}
    python = {(p.kind, p.seq) for p in check_history(events)}
    assert sql == python == {("hash-break", 4)}


def test_dossier_filter_is_bound_not_interpolated(store: Any, tmp_path: Path) -> None:
    _load(store, tmp_path, _clean("000.00.31.H29-240115-0001"))
    report = verify(_query(store), dossier="x' OR '1'='1")
    assert (report.events, report.findings) == (0, ())
    assert verify(_query(store), dossier="000.00.31.H29-240115-0001").events == 6


def test_legal_transitions_cover_the_table() -> None:
    legal = legal_transitions()
    assert "0|DossierSubmitted|1" in legal and "9|ResultReturned|10" in legal
    assert "9|SupplementRequested|5" not in legal


def _with_ingested_at(client: Any, at: str) -> None:
    """The loader's ``_ingested_at`` column, as the stored table has it, every row stored at ``at``."""
    client.command(f"ALTER TABLE events ADD COLUMN _ingested_at DateTime64(6, 'UTC') DEFAULT toDateTime64('{at}', 6)")


def test_incremental_run_checks_only_what_was_stored_after_the_watermark(store: Any, tmp_path: Path) -> None:
    old = _clean("000.00.31.H29-240115-0001")
    tampered_old = _clean("000.00.31.H29-240115-0002")
    tampered_old[2] = tampered_old[2].replace(actor_id="someone-else")
    _load(store, tmp_path, old + tampered_old)
    _with_ingested_at(store, "2026-01-01 00:00:00")
    store.command("OPTIMIZE TABLE events FINAL")
    full = verify(_query(store))
    assert {f.dossier_id[-4:] for f in full.findings} == {"0002"}
    assert full.watermark == datetime(2026, 1, 1, tzinfo=UTC)

    # Later: a new dossier, tampered, and the next event of an old one whose prev_hash is wrong.
    new = _clean("000.00.31.H29-240115-0003")
    new[1] = new[1].replace(reason="edited")
    late = _clean("000.00.31.H29-240115-0001")[5].replace(seq=7, prev_hash=bytes(32))
    path = tmp_path / "later.avro"
    with path.open("wb") as f:
        fastavro.writer(f, current_schema().parsed, [e.to_record() for e in [*new, late]])
    store.command(
        f"INSERT INTO events SELECT *, toDateTime64('2026-01-02 00:00:00.000001', 6) FROM file('{path}', 'Avro')"
    )
    report = verify(_query(store), since=full.watermark)
    found = {(f.kind, f.dossier_id[-4:], f.seq) for f in report.findings}
    assert ("hash-break", "0003", 2) in found
    assert ("prev-hash-break", "0001", 7) in found  # the old dossier's chain is re-checked as a whole
    assert not any(d == "0002" for _k, d, _s in found)  # verified before: not recomputed
    assert (report.events, report.dossiers) == (7, 2)
    assert report.watermark == datetime(2026, 1, 2, 0, 0, 0, 1, tzinfo=UTC)
    again = verify(_query(store), since=report.watermark)
    assert (again.events, again.findings, again.watermark) == (0, (), report.watermark)


def test_cli_prints_the_watermark_and_runs_incrementally_from_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    import json

    from inspection.cli_verify import verify_cmd
    from tests.test_scorecard_support import invoke, simulated

    data, summary = simulated(tmp_path_factory, violations="none", dossiers=300)
    full = invoke(verify_cmd, data, "--format", "json", "-q")
    assert full.exit_code == 0, full.output
    provenance = json.loads(full.stdout)["computed_on"]
    assert (provenance["mode"], provenance["checked_events"]) == ("full", summary["counts"]["events"])
    again = invoke(verify_cmd, data, "--since", provenance["watermark"], "--format", "json", "-q")
    assert again.exit_code == 0, again.output
    incremental = json.loads(again.stdout)["computed_on"]
    assert (incremental["mode"], incremental["checked_events"], incremental["watermark"]) == (
        "incremental",
        0,
        provenance["watermark"],
    )
    refused = invoke(verify_cmd, data, "--since", "yesterday")
    assert refused.exit_code == 2 and "ISO 8601" in refused.output
