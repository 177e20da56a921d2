"""The integrity ledger: what a full verify puts on record, and what the audit may then leave alone.

The coverage rule is tested on its own (parts as ``system.parts`` describes
them), then end to end on a real embedded store: every way the log changes
after a recorded run (new rows, a merge, an in-place update, a forged row)
must give the audit's INTEGRITY-HASH the same findings as a full recompute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dossier_runtime.errors import StoreError
from dossier_runtime.store import StoreQueryError
from inspection import ledger
from inspection.audit import audit, parse_params, select_rules
from inspection.ledger import Part, covered_parts
from inspection.verify import verify
from schemas.events import DossierEvent
from schemas.hashchain import compute_hash
from tests.test_audit_store import AuditStore
from tests.test_verify import _clean


def part(name: str, rows: int, checksum: str = "c", version: int | None = None) -> Part:
    partition, lo, hi, _level, *mutation = name.split("_")
    data_version = int(mutation[0]) if mutation else int(lo)
    return Part(name, partition, int(lo), int(hi), data_version if version is None else version, rows, checksum)


# -- the coverage rule -------------------------------------------------------------------------------------------


def test_a_recorded_part_is_covered_only_with_the_same_rows_and_checksum() -> None:
    recorded = [part("202401_1_1_0", 10, "a")]
    assert covered_parts([part("202401_1_1_0", 10, "a")], recorded) == {"202401_1_1_0"}
    assert covered_parts([part("202401_1_1_0", 10, "edited")], recorded) == set()
    assert covered_parts([part("202401_1_1_0", 11, "a")], recorded) == set()
    assert covered_parts([part("202402_1_1_0", 10, "a")], recorded) == set()  # another partition


def test_a_merge_of_recorded_parts_is_covered() -> None:
    recorded = [part("202401_1_1_0", 10), part("202401_2_2_0", 5), part("202401_4_4_0", 1)]
    assert covered_parts([part("202401_1_4_1", 16)], recorded) == {"202401_1_4_1"}
    # merged again later, with the intermediate merge on record too
    recorded += [part("202401_1_2_1", 15)]
    assert covered_parts([part("202401_1_4_2", 16)], recorded) == {"202401_1_4_2"}


@pytest.mark.parametrize(
    ("active", "why"),
    [
        (part("202401_1_5_1", 16), "ends at a block inserted since (5)"),
        (part("202401_1_4_1", 17), "one row more than the recorded parts hold"),
        (part("202401_1_4_1", 15), "one row fewer (a row removed)"),
        (part("202401_1_4_1_9", 16), "rewritten by mutation 9"),
        (part("202401_2_4_1", 11), "starts after the first recorded block"),
        (part("202401_5_5_0", 3), "a new insert"),
    ],
)
def test_a_part_with_rows_not_on_record_is_not_covered(active: Part, why: str) -> None:
    recorded = [part("202401_1_1_0", 10), part("202401_2_2_0", 5), part("202401_4_4_0", 1)]
    assert covered_parts([active], recorded) == set(), why


def test_a_mutation_must_be_on_record_for_every_part_merged() -> None:
    recorded = [part("202401_1_1_0", 10), part("202401_2_2_0_9", 5), part("202401_1_1_0_9", 10)]
    assert covered_parts([part("202401_1_2_1_9", 15)], recorded) == {"202401_1_2_1_9"}
    assert covered_parts([part("202401_1_2_1_9", 15)], recorded[:2]) == set()  # block 1 recorded before mutation 9


def test_a_part_inserted_after_a_mutation_and_merged_with_its_parts_is_covered() -> None:
    """A merge takes the highest mutation of its parts: block 10, inserted after mutation 9, joins at version 9."""
    recorded = [part("202401_1_2_1_9", 15), part("202401_10_10_0", 4)]
    assert covered_parts([part("202401_1_10_2_9", 19)], recorded) == {"202401_1_10_2_9"}
    assert covered_parts([part("202401_1_10_2_11", 19)], recorded) == set()  # rewritten by mutation 11 since


# -- end to end on the embedded store --------------------------------------------------------------------------


def _dossier(n: int) -> list[DossierEvent]:
    return _clean(f"000.00.31.H29-240115-{n:04d}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path / "data")
    yield s
    s.close()


def _integrity(s: AuditStore, full: bool = False) -> tuple[dict[tuple[str, tuple[int, ...]], str], dict[str, str]]:
    pairs = ["full_recompute=1"] if full else []
    report = audit(s.query, select_rules(["INTEGRITY-HASH"]), params=parse_params(pairs))
    assert report.integrity is not None
    return {(f.dossier_id, f.evidence_seqs): f.explanation for f in report.findings}, dict(report.integrity)


def _record(s: AuditStore) -> ledger.Entry:
    entry = verify(s.query).entry
    assert entry is not None
    ledger.record(s.store.append, entry)
    return entry


def _same_as_full(s: AuditStore) -> tuple[dict[tuple[str, tuple[int, ...]], str], dict[str, str]]:
    found, how = _integrity(s)
    assert found == _integrity(s, full=True)[0]
    return found, how


def test_the_audit_recomputes_only_what_changed_since_the_recorded_run(store: AuditStore) -> None:
    tampered = _dossier(2)
    tampered[2] = tampered[2].replace(actor_id="someone-else")  # content no longer matches its hash
    store.add(_dossier(1))
    store.add(tampered)
    store.add(_dossier(3))
    before, how = _integrity(store)
    assert how["ledger"].startswith("not used: no verify run recorded")
    assert set(before) == {(tampered[0].dossier_id, (3,))}

    entry = _record(store)
    assert len(entry.parts) == 3 and entry.breaks == ((tampered[0].dossier_id, 3),) and entry.events == 18
    found, how = _same_as_full(store)
    assert found == before
    assert how["hashes"] == "recomputed for 0 of 18 events (0 of 3 parts)", how
    assert "1 dossier(s) with a recorded break" in how["ledger"]

    store.store.command("OPTIMIZE TABLE events FINAL")  # a merge: the break is now inside a part never recorded
    found, how = _same_as_full(store)
    assert found == before and how["hashes"].startswith("recomputed for 0 of 18 events"), how

    store.add(_dossier(4))  # new rows: their part is recomputed, the merged one is not
    found, how = _same_as_full(store)
    assert found == before and how["hashes"].startswith("recomputed for 6 of 24 events"), how


def test_a_row_changed_in_place_after_the_recorded_run_is_found(store: AuditStore) -> None:
    store.add(_dossier(1))
    store.add(_dossier(2))
    _record(store)
    victim = _dossier(1)[3].dossier_id
    store.store.command(
        "ALTER TABLE events UPDATE actor_id = 'forged' WHERE dossier_id = {d:String} AND seq = 4",
        {"d": victim},
        settings={"mutations_sync": 2},
    )
    found, how = _same_as_full(store)
    assert set(found) == {(victim, (4,))}
    assert how["hashes"] == "recomputed for 12 of 12 events (2 of 2 parts)", how


def test_a_forged_row_inserted_after_the_recorded_run_is_found(store: AuditStore) -> None:
    store.add(_dossier(1))
    _record(store)
    genuine = _dossier(5)
    forged = [*genuine[:5], genuine[5].replace(result_ref="forged")]  # hash left as it was sealed
    assert compute_hash(forged[5]) != forged[5].hash
    store.add(forged)
    found, how = _same_as_full(store)
    assert set(found) == {(genuine[0].dossier_id, (6,))}
    assert how["hashes"].startswith("recomputed for 6 of 12 events"), how


def test_full_recompute_and_an_unfinished_mutation_leave_the_ledger_aside(store: AuditStore) -> None:
    store.add(_dossier(1))
    _record(store)
    assert _integrity(store, full=True)[1]["ledger"] == "not used: full_recompute=1"
    coverage = ledger.coverage(store.query)
    assert coverage.unused_because is None and len(coverage.covered) == 1
    # a mutation that cannot finish: reads may see it applied on the fly while the parts keep their names
    with pytest.raises(StoreQueryError, match="stuck"):  # it fails, and stays on the table's list
        store.store.command(
            "ALTER TABLE events UPDATE n_attachments = n_attachments + throwIf(n_attachments >= 0, 'stuck') WHERE 1"
        )
    coverage = ledger.coverage(store.query)
    assert coverage.unused_because == "events has 1 unfinished mutation(s), 0 patch part(s)", coverage
    assert verify(store.query).entry is None  # and a run made meanwhile does not go on record
    store.store.command("KILL MUTATION WHERE database = currentDatabase() AND table = 'events' SYNC")
    assert ledger.coverage(store.query).unused_because is None


def test_a_recreated_table_does_not_inherit_the_ledger(store: AuditStore) -> None:
    store.add(_dossier(1))
    _record(store)
    store.store.command("CREATE TABLE events_copy AS events")
    store.store.command("INSERT INTO events_copy SELECT * FROM events")
    store.store.command("EXCHANGE TABLES events AND events_copy")  # same part names, another table
    coverage = ledger.coverage(store.query)
    assert (
        coverage.covered == ()
        and coverage.unused_because == "no verify run recorded yet (run `dossier inspect verify`)"
    )


def test_only_record_tables_take_appends(store: AuditStore) -> None:
    with pytest.raises(StoreError, match="not a record table"):
        store.store.append("events", b"{}\n")


# -- recording (through an owner's endpoint: tests/test_ledger_owner.py) -------------------------------------


def test_a_refused_record_is_reported_not_fatal(store: AuditStore) -> None:
    store.add(_dossier(1))
    entry = verify(store.query).entry
    assert entry is not None
    store.store.command("DROP TABLE integrity_parts")
    assert ledger.record_and_tell(store.store.record_run, entry).startswith("not recorded: ")
    assert ledger.record_and_tell(store.store.record_run, None).startswith("not recorded: only a full run")


def test_verify_with_the_ledger_recomputes_only_what_is_not_covered(store: AuditStore) -> None:
    tampered = _dossier(2)
    tampered[2] = tampered[2].replace(actor_id="someone-else")
    store.add(_dossier(1))
    store.add(tampered)
    first = _record(store)
    genuine = _dossier(5)
    store.add([*genuine[:5], genuine[5].replace(result_ref="forged")])  # after the recorded run
    del_gap = _dossier(6)
    store.add(del_gap[:2] + del_gap[3:])  # a seq gap: not a hash matter, found all the same

    coverage = ledger.coverage(store.query)
    assert coverage.covered and coverage.known_breaks == (tampered[0].dossier_id,)
    incremental = verify(store.query, coverage=coverage)
    full = verify(store.query)
    assert incremental.findings == full.findings
    kinds = {(f.kind, f.dossier_id[-4:], f.seq) for f in incremental.findings}
    assert {("hash-break", "0002", 3), ("hash-break", "0005", 6), ("seq-gap", "0006", 4)} <= kinds

    assert incremental.entry is not None
    assert {p.name for p in incremental.entry.parts}.isdisjoint(coverage.covered)  # only what it recomputed
    assert len(incremental.entry.parts) == 2 and len(first.parts) == 2
    ledger.record(store.store.append, incremental.entry)
    again = ledger.coverage(store.query)
    assert len(again.covered) == again.parts == 4
    assert again.known_breaks == tuple(sorted({tampered[0].dossier_id, genuine[0].dossier_id}))


def test_verify_use_ledger_on_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dossier_audit.cli import main

    s = AuditStore(tmp_path / "data")
    s.add(_dossier(1))
    s.close()
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    full = runner.invoke(main, ["inspect", "verify", "--format", "json", "-q"], env=env)
    assert full.exit_code == 0, full.output
    assert json.loads(full.output)["computed_on"]["ledger"].startswith("recorded run ")
    again = runner.invoke(main, ["inspect", "verify", "--use-ledger", "--format", "json", "-q"], env=env)
    computed_on = json.loads(again.output)["computed_on"]
    assert computed_on["mode"] == "ledger"
    assert computed_on["integrity"]["hashes"] == "recomputed for 0 of 6 events (0 of 1 parts)"
    assert computed_on["ledger"].startswith("recorded run ") and ": 0 parts" in computed_on["ledger"]
    wrong = runner.invoke(main, ["inspect", "verify", "--use-ledger", "--since", "2026-01-01"], env=env)
    assert wrong.exit_code == 2 and "does not go with --since" in wrong.output


def test_full_recompute_is_a_switch() -> None:
    from inspection.audit import AuditUsageError

    assert parse_params(["full_recompute=1"])["full_recompute"] == 1
    with pytest.raises(AuditUsageError, match="full_recompute takes a whole number from 0 to 1, got '2'"):
        parse_params(["full_recompute=2"])


def test_a_bulk_load_after_the_recorded_run_is_recomputed(store: AuditStore, tmp_path: Path) -> None:
    """The bulk loader attaches parts from its staging table: they get new block numbers, so they are not covered."""
    from consumers import bulk
    from consumers.sink import Sink
    from tests.test_bulk_load import _container

    store.add(_dossier(1))
    _record(store)
    genuine = _dossier(7)
    forged = [*genuine[:5], genuine[5].replace(actor_id="someone-else")]  # valid, but not as sealed
    sink = Sink(store.store, engine="MergeTree")
    try:
        loaded = list(bulk.load_files(sink, [_container(tmp_path / "late.avro", forged)], tmp_path))
    finally:
        sink.close()
    assert [x.result.stored for x in loaded] == [6], [d.error for x in loaded for d in x.result.dead]
    found, how = _same_as_full(store)
    assert set(found) == {(genuine[0].dossier_id, (6,))}
    assert how["hashes"].startswith("recomputed for 6 of 12 events"), how
