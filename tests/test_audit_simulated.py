"""Every rule finds exactly what the simulator injected: precision and recall 100% against manifest.jsonl.

The audit runs in ClickHouse over the simulator's Avro files and catalogue,
loaded into a real embedded store; the manifest comes from the simulator's own
judge. A finding counts only with the same evidence seqs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspection import coverage
from inspection.audit import audit, parse_params, select_rules
from inspection.rules import CATALOGUE
from producers.simulator.kinds import ALL_RATE, INJECTED
from producers.simulator.run import SimulationSettings, simulate
from tests.test_audit_store import AuditStore, Findings, manifest

KEY = b"k" * 32


def simulated(tmp: Path, **settings: object) -> Iterator[tuple[AuditStore, Findings]]:
    out = tmp / "sim"
    simulate(SimulationSettings(out=out, pseudonym_key=KEY, workers=2, **settings))  # type: ignore[arg-type]
    store = AuditStore(tmp / "data")
    store.add_avro_files(out)
    store.add_catalogue(out)
    yield store, manifest(out)
    store.close()


@pytest.fixture(scope="module")
def every_violation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuditStore, Findings]]:
    rates = dict.fromkeys(INJECTED, ALL_RATE)
    rates.update(dict.fromkeys(("R1", "R2", "R3", "R4"), 0.002))
    yield from simulated(tmp_path_factory.mktemp("all"), dossiers=6000, seed=11, rates=rates, on_time=0.99)


def compare(found: Findings, expected: Findings) -> list[str]:
    problems = []
    for rule in CATALOGUE:
        mine = {k: v for k, v in found.items() if k[1] == rule}
        theirs = {k: v for k, v in expected.items() if k[1] == rule}
        if mine != theirs:
            false_pos = sorted(set(mine.items()) - set(theirs.items()))[:3]
            missed = sorted(set(theirs.items()) - set(mine.items()))[:3]
            problems.append(f"{rule}: wrong or extra {false_pos}; missed {missed}")
    return problems


def test_every_rule_has_full_precision_and_recall(every_violation: tuple[AuditStore, Findings]) -> None:
    store, expected = every_violation
    found = store.findings()
    assert not compare(found, expected), "\n".join(compare(found, expected))
    empty = [rule for rule in CATALOGUE if not any(k[1] == rule for k in expected)]
    assert not empty, f"the run injects nothing for {empty}: the comparison would prove nothing"


def test_parameters_change_what_is_found(every_violation: tuple[AuditStore, Findings]) -> None:
    store, expected = every_violation
    strict = store.findings("R5", params={"supplement_deadline_wd": "0"})
    lenient = store.findings("R5", params={"supplement_deadline_wd": "100"})
    assert len(strict) > sum(1 for k in expected if k[1] == "R5") and not lenient


def test_a_filter_keeps_exactly_the_matching_dossiers(every_violation: tuple[AuditStore, Findings]) -> None:
    store, expected = every_violation
    unit = store.query(
        "SELECT unit_code FROM events WHERE event_type = 'DossierReceived' GROUP BY unit_code ORDER BY count() DESC "
        "LIMIT 1",
        {},
    )[0][0]
    received_there = {
        d for (d,) in store.query("SELECT dossier_id FROM events WHERE event_type = 'DossierReceived' AND unit_code = "
                                  "{u:String}", {"u": unit})
    }  # fmt: skip
    found = store.findings(scope="dossier_id IN (SELECT dossier_id FROM events WHERE event_type = 'DossierReceived' "
                                 "AND unit_code = {u:String})", scope_params={"u": unit})  # fmt: skip
    want = {k: v for k, v in expected.items() if k[0] in received_there}
    assert found == want and found


def test_slice_by_slice_of_dossiers_the_audit_is_the_same(
    every_violation: tuple[AuditStore, Findings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``coverage.SLICE_ROWS`` events every rule and coverage query runs slice by slice of whole dossiers
    (memory bounded at any store size): same findings, with the same people and units, and the same coverage."""
    store, _expected = every_violation

    def report() -> dict[str, Any]:
        r = audit(store.query, select_rules([]), params=parse_params([]))
        return {
            "findings": r.findings,
            "runs": [(run.rule, run.findings) for run in r.runs],
            "coverage": {k: v.describe() for k, v in r.coverage.items()},
        }

    whole = report()
    ids = [str(d) for (d,) in store.query("SELECT DISTINCT dossier_id FROM events ORDER BY dossier_id", {})]
    cuts: list[str | None] = [None, *ids[2000::2000], None]
    used: list[int] = []

    def slices(*_args: Any) -> list[tuple[str | None, str | None]]:
        used.append(len(cuts) - 1)
        return list(itertools.pairwise(cuts))

    monkeypatch.setattr(coverage, "dossier_slices", slices)
    sliced = report()
    assert used and used[0] >= 3 and whole["findings"]
    assert sliced == whole
