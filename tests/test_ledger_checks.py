"""``verify --use-ledger``: the per-dossier checks (seq, links, transitions, id reuse) where the ledger cannot vouch.

A run that puts every finding on record (migration 0016) lets the next one check again only the dossiers with an
event in a part no such run read, and those with a finding. Each test changes the store after a recorded run in
one way (new rows, new rows of an old dossier, a reused id, rows deleted or a part dropped, a run recorded from a
claim) and asks for the findings of a full run, and for no more dossiers checked than the change touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspection import ledger
from inspection.ledger import Part, removed_rows
from inspection.verify import VerifyReport, verify
from schemas.events import DossierEvent
from schemas.hashchain import seal_chain
from tests.test_audit_store import AuditStore
from tests.test_ledger import _dossier, part


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path / "data")
    yield s
    s.close()


def _record(s: AuditStore, report: VerifyReport) -> None:
    assert report.entry is not None
    ledger.record(s.store.append, report.entry)


def _full(s: AuditStore) -> VerifyReport:
    """A full run (every dossier checked), put on record."""
    report = verify(s.query)
    assert report.entry is not None and report.entry.checks == "all"
    _record(s, report)
    return report


def _with_ledger(s: AuditStore) -> tuple[VerifyReport, ledger.Coverage]:
    """A verify --use-ledger run; its findings must be a full run's."""
    coverage = ledger.coverage(s.query)
    report = verify(s.query, coverage=coverage)
    assert report.findings == verify(s.query).findings
    return report, coverage


def _checked(report: VerifyReport) -> int:
    assert report.ledger_checked
    return report.dossiers


def _gap(n: int) -> list[DossierEvent]:
    events = _dossier(n)
    return events[:2] + events[3:]  # seq 3 missing: a seq-gap at 4


def test_only_the_new_dossiers_and_those_with_a_finding_are_checked_again(store: AuditStore) -> None:
    store.add(_dossier(1))
    store.add(_gap(2))
    full = _full(store)
    assert {(f.kind, f.dossier_id[-4:]) for f in full.findings} == {("seq-gap", "0002")}

    report, coverage = _with_ledger(store)  # nothing new: only the dossier with a finding
    assert coverage.checks_unused_because is None and coverage.flagged == (_dossier(2)[0].dossier_id,)
    assert _checked(report) == 1 and report.findings == full.findings
    assert "and the 1 with a finding on record since verify run" in coverage.describe()["dossiers"]

    store.add(_dossier(3))
    store.add(_gap(4))
    report, coverage = _with_ledger(store)
    assert _checked(report) == 3  # 2 (a finding), 3 and 4 (new); 1 rests on the recorded run
    assert {(f.kind, f.dossier_id[-4:]) for f in report.findings} == {("seq-gap", "0002"), ("seq-gap", "0004")}
    assert report.entry is not None and report.entry.checks == "scoped"
    _record(store, report)

    store.store.command("OPTIMIZE TABLE events FINAL")  # one merge of parts both runs read: still vouched for
    report, coverage = _with_ledger(store)
    assert coverage.parts == 1 and coverage.checked == coverage.covered and len(coverage.checked) == 1
    assert _checked(report) == 2  # the two with a finding


def test_a_store_rewritten_by_a_mutation_before_the_runs_keeps_its_merges_vouched_for(store: AuditStore) -> None:
    """As the year's store after migration 0014's rewrite: later parts merge with the rewritten ones."""
    store.add(_dossier(1))
    store.add(_gap(2))
    store.store.command(
        "ALTER TABLE events UPDATE n_attachments = n_attachments WHERE 1", settings={"mutations_sync": 2}
    )
    _full(store)
    store.add(_dossier(3))
    report, _ = _with_ledger(store)
    _record(store, report)
    store.store.command("OPTIMIZE TABLE events FINAL")  # the new part joins the rewritten ones
    names = [r[0] for r in store.query("SELECT name FROM system.parts WHERE table = 'events' AND active", {})]
    assert len(names) == 1 and names[0].count("_") == 4, names  # 202401_1_4_1_3: mutation 3 kept by the merge
    report, coverage = _with_ledger(store)
    assert coverage.covered == coverage.checked == tuple(names) and coverage.checks_unused_because is None
    assert _checked(report) == 1  # the dossier with a finding only


def test_new_events_of_a_dossier_checked_before_are_checked_with_its_whole_history(store: AuditStore) -> None:
    events = _dossier(1)
    store.add(events[:4])
    _full(store)
    tail = list(seal_chain(events))[4:]
    tail[0] = tail[0].replace(prev_hash=b"\x07" * 32)  # does not link to seq 4, which a run checked
    store.add(tail)
    report, _ = _with_ledger(store)
    assert _checked(report) == 1 and report.events == 6
    assert {(f.kind, f.seq) for f in report.findings} >= {("prev-hash-break", 5)}


def test_an_id_reused_by_a_new_event_is_found_with_the_old_one(store: AuditStore) -> None:
    old = _dossier(1)
    store.add(old)
    store.add(_dossier(2))
    _full(store)
    new = list(_dossier(3))
    new[1] = new[1].replace(event_id=old[1].event_id)
    store.add(list(seal_chain(new)))
    report, _ = _with_ledger(store)
    reused = {(f.dossier_id[-4:], f.seq) for f in report.findings if f.kind == "event-id-reused"}
    assert reused == {("0001", 2), ("0003", 2)}
    _record(store, report)
    again, coverage = _with_ledger(store)  # both dossiers are on record with the finding, and found again
    assert set(coverage.flagged) == {old[0].dossier_id, new[0].dossier_id}
    assert again.findings == report.findings and _checked(again) == 2


def _split(store: AuditStore) -> tuple[list[DossierEvent], str]:
    """Dossier 1 over three parts (seq 1-2, 3-4 with dossier 9, 5-6); the name of the middle part."""
    events = _dossier(1)
    store.add(events[:2])
    store.add([*events[2:4], *_dossier(9)])
    store.add(events[4:])
    names = [r[0] for r in store.query("SELECT name FROM system.parts WHERE table = 'events' AND active", {})]
    middle = store.query(
        "SELECT DISTINCT _part FROM events WHERE dossier_id = {d:String}", {"d": _dossier(9)[0].dossier_id}
    )
    assert len(names) == 3 and len(middle) == 1
    return events, str(middle[0][0])


def test_rows_deleted_after_the_recorded_run_make_every_dossier_checked_again(store: AuditStore) -> None:
    events, _ = _split(store)
    _full(store)
    # dossier 1 keeps no row in the rewritten part: only the deletion says it must be checked again
    store.store.command(
        "ALTER TABLE events DELETE WHERE dossier_id = {d:String} AND seq IN (3, 4)",
        {"d": events[0].dossier_id},
        settings={"mutations_sync": 2},
    )
    report, coverage = _with_ledger(store)
    assert coverage.checks_unused_because is not None and "rewritten by a mutation" in coverage.checks_unused_because
    assert not report.ledger_checked and report.dossiers == 2
    assert {(f.kind, f.dossier_id[-4:], f.seq) for f in report.findings} == {("seq-gap", "0001", 5)}
    assert coverage.describe()["dossiers"].startswith("all checked again: part ")
    assert report.entry is not None and report.entry.checks == "all"  # a new baseline
    _record(store, report)
    assert ledger.coverage(store.query).checks_unused_because is None


def test_a_dropped_part_makes_every_dossier_checked_again(store: AuditStore) -> None:
    _, middle = _split(store)
    _full(store)
    store.store.command(f"ALTER TABLE events DROP PART '{middle}'")
    report, coverage = _with_ledger(store)
    assert coverage.checks_unused_because == f"part {middle}, read by a recorded run, is gone (dropped or detached)"
    assert {(f.kind, f.dossier_id[-4:], f.seq) for f in report.findings} == {("seq-gap", "0001", 5)}


def test_the_audit_asks_for_the_hashes_alone_and_says_nothing_of_dossiers(store: AuditStore) -> None:
    store.add(_gap(1))
    _full(store)
    hashes = ledger.coverage(store.query, dossiers=False)
    assert hashes.covered and hashes.checks_unused_because == ledger.NOT_ASKED and not hashes.flagged
    assert set(hashes.describe()) == {"hashes", "ledger"}
    assert set(ledger.coverage(store.query).describe()) == {"hashes", "ledger", "dossiers"}


def test_runs_that_recorded_only_hash_breaks_vouch_for_no_dossier(store: AuditStore) -> None:
    store.add(_dossier(1))
    entry = verify(store.query).entry
    assert entry is not None
    hashes_only = ledger.Entry(entry.table_uuid, entry.parts, entry.breaks, entry.events)  # as from a claim
    ledger.record(store.store.append, hashes_only)
    coverage = ledger.coverage(store.query)
    assert coverage.unused_because is None and coverage.covered  # the hashes are spared
    assert coverage.checks_unused_because is not None and "no full verify" in coverage.checks_unused_because
    report = verify(store.query, coverage=coverage)
    assert not report.ledger_checked and report.dossiers == 1
    assert report.entry is not None and report.entry.checks == "all"


def test_a_store_before_migration_0016_records_hash_breaks_only(store: AuditStore) -> None:
    store.add(_dossier(1))
    store.store.command("ALTER TABLE integrity_runs DROP COLUMN checks")
    store.store.command("ALTER TABLE integrity_breaks DROP COLUMN kind")
    report = verify(store.query)
    assert report.entry is not None and report.entry.checks is None
    _record(store, report)
    coverage = ledger.coverage(store.query)
    assert coverage.unused_because is None
    assert coverage.checks_unused_because == "the ledger predates per-dossier records (run `dossier consume migrate`)"


# -- the removal rule on its own ---------------------------------------------------------------------------------


def test_recorded_rows_are_accounted_for_by_the_parts_that_hold_them() -> None:
    recorded = [part("202401_1_1_0", 10), part("202401_2_2_0", 5), part("202401_1_2_1", 15)]
    assert removed_rows([part("202401_1_2_1", 15)], recorded) is None
    assert removed_rows([part("202401_1_3_2", 18)], recorded) is None  # merged with a new insert
    assert removed_rows([part("202401_1_2_1", 14)], recorded) == (
        "part 202401_1_2_1 holds fewer rows than the recorded parts merged into it"
    )
    assert removed_rows([part("202401_1_1_0", 10)], recorded) == (
        "part 202401_2_2_0, read by a recorded run, is gone (dropped or detached)"
    )
    assert removed_rows([part("202402_1_2_1", 15)], recorded[2:]) == (
        "part 202401_1_2_1, read by a recorded run, is gone (dropped or detached)"
    )  # another partition holds nothing of it
    mutated: list[Part] = [part("202401_1_2_1_7", 15)]
    assert removed_rows(mutated, recorded) == (
        "part 202401_1_1_0, read by a recorded run, was rewritten by a mutation (now 202401_1_2_1_7)"
    )
    # a store a mutation rewrote (version 7) before the run: a new part merged with such a part keeps counting
    before = [part("202401_1_2_1_7", 15), part("202401_8_8_0", 4)]
    assert removed_rows([part("202401_1_8_2_7", 19)], before) is None
    assert removed_rows([part("202401_1_8_2_9", 19)], before) == (
        "part 202401_1_2_1_7, read by a recorded run, was rewritten by a mutation (now 202401_1_8_2_9)"
    )


def test_every_kind_of_finding_goes_on_record() -> None:
    table = uuid.uuid4()
    entry = ledger.Entry(table, (), (("d1", 3),), 10, checks="scoped", findings=(("d2", 4, "seq-gap"),))
    rows = entry.rows()
    assert rows["integrity_runs"][0]["checks"] == "scoped" and rows["integrity_runs"][0]["breaks"] == 1
    assert [(r["dossier_id"], r["seq"], r["kind"]) for r in rows["integrity_breaks"]] == [
        ("d1", 3, "hash-break"),
        ("d2", 4, "seq-gap"),
    ]
    legacy = ledger.Entry(table, (), (("d1", 3),), 10).rows()
    assert "checks" not in legacy["integrity_runs"][0] and "kind" not in legacy["integrity_breaks"][0]
