"""Unknown is not absent: a rule never fires on a fact the source did not say, and the audit counts what it could
not assess, per rule and reason (``computed_on.coverage``).

Each pair of dossiers differs in one thing: the fact is said to be empty (the rule fires) or said to be unknown
(it does not, and the dossier is counted as not assessable under "<fact> unknown").
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from inspection import coverage
from inspection.audit import audit, parse_params, select_rules
from inspection.cli_audit import rules_cmd
from schemas.errors import EventValidationError
from schemas.events import EventType, validate_event
from schemas.rulebook import NEEDS, RULE_IDS
from tests.eventfactory import VN, history, make_event
from tests.test_audit_store import AuditStore
from tests.test_consumers_support import dossier

E = EventType
T = datetime(2024, 1, 15, 8, 0, tzinfo=VN)
DUE = T + timedelta(days=3)


def _id(n: int) -> str:
    return f"000.00.31.H29-240115-{n:04d}"


def _received(**fields: Any) -> tuple[EventType, int, dict[str, Any]]:
    return (E.DOSSIER_RECEIVED, 2, {"at": T, "due_at": DUE, "form_code": "01", "n_attachments": 1, **fields})


def _stop(**fields: Any) -> tuple[EventType, int, dict[str, Any]]:
    return (E.PROCESSING_STOPPED, 8, {"at": T + timedelta(hours=1), "n_attachments": 1, **fields})


#: dossier number -> (steps, the rule, whether it must fire)
DOSSIERS: dict[int, tuple[list[Any], str, bool]] = {
    1: ([_received(), _stop(reason=" ")], "R17", True),  # a blank reason: said so
    2: ([_received(), _stop(reason=None, unknown_facts=("reason",))], "R17", False),
    3: ([_received(), _stop(reason="Hồ sơ không đủ điều kiện", n_attachments=0)], "R17", True),
    4: (
        [_received(), _stop(reason="Hồ sơ không đủ điều kiện", n_attachments=0, unknown_facts=("n_attachments",))],
        "R17",
        False,
    ),
    5: ([_received(form_code=None)], "R16", True),
    6: ([_received(form_code=None, unknown_facts=("form_code",))], "R16", False),
    7: ([_received(due_at=None)], "R16", True),
    8: ([_received(due_at=None, unknown_facts=("due_at",))], "R16", False),
}


def _events() -> list[Any]:
    return [e for n, (steps, _r, _f) in DOSSIERS.items() for e in history(*steps, dossier_id=_id(n))]


def test_without_a_catalogue_the_command_says_so_and_what_it_could_not_assess(tmp_path: Path) -> None:
    # First in the file: the module's store (below) must not be open in this process yet.
    s = AuditStore(tmp_path)
    s.add(_events())
    s.close()
    env = {"DOSSIER_DATA_DIR": str(tmp_path)}  # a process of its own: this one holds the module's store
    out = dossier("inspect", "audit", "R7", "R16", "R17", "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    cover = json.loads(out.stdout)["computed_on"]["coverage"]
    # No catalogue: R16 and R7 judge nothing; two R16 dossiers are also counted under their unknown fact.
    assert cover["R7"] == {"assessed": 0, "not_assessable": {"no catalogue loaded": 8}}
    assert cover["R16"] == {
        "assessed": 0,
        "not_assessable": {"due_at unknown": 1, "form_code unknown": 1, "no catalogue loaded": 8},
    }
    table = dossier("inspect", "audit", "R7", "R16", "R17", env=env)
    assert "warning: no procedure catalogue is loaded, so R7, R16 judged nothing" in table.stderr
    assert "dossier consume load-catalogue DIR" in table.stderr
    assert "R17: assessed 5 of 8 dossier(s); not assessable: 1 due_at unknown, 1 n_attachments unknown, 1 reason" in (
        table.stderr
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path_factory.mktemp("unknown"))
    s.add(_events())
    s.add_procedure()
    yield s
    s.close()


def test_the_histories_are_valid_events() -> None:
    for n, (steps, _rule, _fires) in DOSSIERS.items():
        for event in history(*steps, dossier_id=_id(n)):
            validate_event(event)


@pytest.mark.parametrize("number", sorted(DOSSIERS))
def test_a_rule_fires_on_what_was_said_never_on_what_was_not(store: AuditStore, number: int) -> None:
    _steps, rule, fires = DOSSIERS[number]
    report = audit(store.query, select_rules([rule]), params=parse_params([]))
    assert (_id(number) in {f.dossier_id for f in report.findings}) is fires


def test_coverage_counts_what_each_rule_could_not_assess(store: AuditStore) -> None:
    report = audit(store.query, select_rules(["R16", "R17", "R5"]), params=parse_params([]))
    cover = {rule: c.describe() for rule, c in report.coverage.items()}
    # Dossier 8 counts for R17 too: its part (b) reads due0, which that dossier's source did not say.
    assert cover["R17"] == {
        "assessed": 5,
        "not_assessable": {"due_at unknown": 1, "n_attachments unknown": 1, "reason unknown": 1},
    }
    assert cover["R16"] == {"assessed": 6, "not_assessable": {"due_at unknown": 1, "form_code unknown": 1}}
    assert cover["R5"] == {"assessed": 8, "not_assessable": {}}


@pytest.mark.parametrize("catalogue", ["theirs", "another", "none"])
def test_coverage_counted_slice_by_slice_of_dossiers_is_the_same(
    store: AuditStore, monkeypatch: pytest.MonkeyPatch, catalogue: str
) -> None:
    """A store past ``coverage.SLICE_ROWS`` events is counted in slices of whole dossiers; the counts add up to
    the unsliced ones, including the dossiers under an unknown fact and a catalogue gap alike ("another": every
    dossier's procedure is missing from the catalogue, so R16's two unknowns are in both)."""
    rules = select_rules(["R5", "R7", "R16", "R17", "R20"])

    def covered() -> dict[str, Any]:
        return {r: c.describe() for r, c in audit(store.query, rules, params=parse_params([])).coverage.items()}

    ids = sorted(str(r[0]) for r in store.query("SELECT DISTINCT dossier_id FROM events", {}))
    cuts: list[str | None] = [None, *ids[1::2], None]  # two dossiers a slice
    calls: list[int] = []

    def slices(*_args: Any) -> list[tuple[str | None, str | None]]:
        calls.append(1)
        return list(itertools.pairwise(cuts))

    if catalogue != "theirs":
        store.store.command("TRUNCATE TABLE procedures")
    if catalogue == "another":
        store.add_procedure(procedure_code="9.999999")
    try:
        whole = covered()
        with monkeypatch.context() as m:
            m.setattr(coverage, "dossier_slices", slices)
            sliced = covered()
    finally:
        if catalogue != "theirs":  # the module's store again
            store.store.command("TRUNCATE TABLE procedures")
            store.add_procedure()
    assert calls and sliced == whole
    if catalogue == "another":
        assert whole["R16"] == {
            "assessed": 0,
            "not_assessable": {"due_at unknown": 1, "form_code unknown": 1, "procedure not in the catalogue": 8},
        }


def test_rules_full_names_what_each_rule_needs() -> None:
    out = CliRunner().invoke(rules_cmd, ["R17", "R16", "R20", "R5", "--format", "json"])
    rows = {r["id"]: r["needs"] for r in json.loads(out.stdout)}
    assert rows["R17"].startswith("reason on ReceptionRefused/ProcessingStopped; n_attachments on")
    assert "catalogue" in rows["R16"] and "form_code on DossierReceived" in rows["R16"]
    assert rows["R5"] == "nothing that can be unknown"
    assert set(NEEDS) <= set(RULE_IDS)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": None, "unknown_facts": ("reason", "n_attachments")}, "sorted"),
        ({"unknown_facts": ("status",)}, "cannot be unknown"),
        ({"reason": "x", "unknown_facts": ("reason",)}, "listed in unknown_facts but has a value"),
        ({"unknown_facts": ("requested_documents",)}, "ProcessingStopped does not carry"),
    ],
)
def test_unknown_facts_are_checked_by_the_contract(fields: dict[str, Any], message: str) -> None:
    event = make_event(E.PROCESSING_STOPPED, seq=2, status=8, **{"reason": "r", "n_attachments": 0, **fields})
    with pytest.raises(EventValidationError, match=message):
        validate_event(event)


def test_the_scorecard_leaves_out_a_dossier_whose_due_date_was_not_said(store: AuditStore) -> None:
    from inspection.scorecard import ScorecardQuery, compute_scorecard

    card = compute_scorecard(store.store, ScorecardQuery())
    assert card.coverage()["2.1"] == {"assessed": 7, "not_assessable": {"due_at unknown": 1}}
    assert card.coverage()["4.2"] == {"assessed": 8, "not_assessable": {}}
    (row,) = card.rows
    assert row["received"] == 8 and row["on_time_of"] == 7
