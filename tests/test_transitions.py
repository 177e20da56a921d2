"""The transition table, checked pair by pair against the project's written reading of domain.md §a."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.errors import EventValidationError, LifecycleError
from schemas.events import EventType, validate_event
from schemas.hashchain import seal
from schemas.lifecycle import DossierState, apply
from schemas.transitions import TERMINAL, TRANSITIONS, Status, allowed_after, check_transition, status_label
from tests.eventfactory import DOSSIER_ID, make_event

E = EventType

# The table as the brief writes it: "<status before or -> <event> <after>... | ...".
SPEC = """
-  DossierSubmitted 1 | DossierReceived 2
1  ReceptionGuidanceIssued 1 | DossierReceived 2 | ReceptionRefused 3 | DossierDigitized 1 | FeePaid 1
2  DossierTransferred 4 | ResultApproved 2 | ResultIssued 9 | SupplementRequested 5 | FinancialObligationRequested 6
2  WithdrawalRequested 7 | ProcessingStopped 8 | DossierDigitized 2 | FeePaid 2 | ApologyIssued 2
4  StepHandedOver 4 | StepReturned 4 | InterAgencyTransferred 4 | ResultApproved 4 | SupplementRequested 5
4  FinancialObligationRequested 6 | WithdrawalRequested 7 | ProcessingStopped 8 | ResultIssued 9 | DossierDigitized 4
4  FeePaid 4 | ApologyIssued 4
5  SupplementReceived 4 | ReceptionRefused 3 | WithdrawalRequested 7 | ApologyIssued 5 | DossierDigitized 5
6  FinancialObligationFulfilled 4 9 | FeePaid 6 | ApologyIssued 6
7  ProcessingStopped 8 | WithdrawalDeclined 4
9  ResultReturned 10 | ResultRecalled 4 | DossierDigitized 9 | FeePaid 9 | CitizenRated 9
10 ResultCollected 10 | ResultRecalled 4 9 | DossierDigitized 10 | CitizenRated 10
3  CitizenRated 3
8  CitizenRated 8
"""


def _spec() -> dict[tuple[Status | None, EventType], frozenset[Status]]:
    table: dict[tuple[Status | None, EventType], frozenset[Status]] = {}
    for line in SPEC.strip().splitlines():
        key, _, entries = line.partition(" ")
        before = None if key == "-" else Status(int(key))
        for entry in entries.split("|"):
            name, *after = entry.split()
            table[(before, EventType(name))] = frozenset(Status(int(code)) for code in after)
    for status in Status:
        table[(status, E.SYNCED_TO_NATIONAL)] = frozenset({status})
        table[(status, E.FEEDBACK_FILED)] = frozenset({status})
        table[(status, E.APPLICANT_NOTIFIED)] = frozenset({status})
        table[(status, E.ADMIN_OVERRIDE)] = frozenset(Status)
    return table


EXPECTED = _spec()
FROM: list[Status | None] = [None, *Status]


def test_table_is_exactly_the_written_reading() -> None:
    assert dict(TRANSITIONS) == EXPECTED


def test_statuses_carry_national_names() -> None:
    assert [int(s) for s in Status] == list(range(1, 11))
    assert Status(9).label == "9 (Đã xử lý xong)"
    assert Status(5).vi == "Yêu cầu bổ sung giấy tờ"
    assert Status(10).en == "result returned"
    assert TERMINAL == {3, 8, 10}
    assert status_label(None) == "none (first event)"
    assert status_label(11) == "11"


def test_allowed_after_accepts_plain_codes() -> None:
    assert allowed_after(6, E.FINANCIAL_OBLIGATION_FULFILLED) == {Status.PROCESSING, Status.DONE}
    assert allowed_after(10, E.RESULT_RECALLED) == {4, 9}
    assert allowed_after(0, E.FEE_PAID) == frozenset()
    assert allowed_after(None, E.FEE_PAID) == frozenset()
    assert all(allowed_after(before, E.UNKNOWN) == frozenset() for before in FROM)


def _state(before: Status, last_hash: bytes = b"\x11" * 32) -> DossierState:
    return DossierState(dossier_id=DOSSIER_ID, status=before, last_seq=4, last_hash=last_hash)


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
@pytest.mark.parametrize("before", FROM, ids=lambda b: "first" if b is None else f"from{int(b)}")
def test_every_pair_is_legal_exactly_when_the_table_says(before: Status | None, event_type: EventType) -> None:
    state = None if before is None else _state(before)
    seq = 1 if state is None else 5
    allowed = EXPECTED.get((before, event_type), frozenset())
    for target in range(1, 11):
        event = seal(make_event(event_type, seq=seq, status=target), bytes(32) if state is None else state.last_hash)
        # A due-date override (the factory default) must leave the status alone.
        legal = target in allowed and (event_type is not E.ADMIN_OVERRIDE or target == before)
        if legal:
            assert check_transition(before, event) == target
            assert apply(state, event).status == target
            continue
        with pytest.raises(LifecycleError) as caught:
            check_transition(before, event)
        error = caught.value
        assert error.kind == "illegal-transition"
        assert (error.dossier_id, error.seq) == (DOSSIER_ID, seq)
        text = str(error)
        assert text.startswith(f"{DOSSIER_ID} seq {seq}: illegal transition from {status_label(before)}")
        assert f"by {event_type.value} to {target}" in text
        try:
            validate_event(event)
        except EventValidationError:
            # Only these cannot be built valid: Unknown never is, and a first event has nothing to sync.
            assert event_type is E.UNKNOWN or (before is None and event_type is E.SYNCED_TO_NATIONAL)
            with pytest.raises(LifecycleError, match="invalid"):
                apply(state, event)
            continue
        with pytest.raises(LifecycleError) as through_fold:
            apply(state, event)
        assert through_fold.value.kind == "illegal-transition"
        assert str(through_fold.value) == text


def test_message_names_dossier_seq_status_and_type() -> None:
    event = seal(make_event(E.SUPPLEMENT_REQUESTED, seq=5, status=5), b"\x11" * 32)
    with pytest.raises(LifecycleError) as caught:
        apply(_state(Status.DONE), event)
    assert str(caught.value) == (
        "000.00.31.H29-240115-0001 seq 5: illegal transition from 9 (Đã xử lý xong) by SupplementRequested to 5"
    )


def _override(before: int, after: int, **fields: Any) -> LifecycleError | Status:
    event = make_event(E.ADMIN_OVERRIDE, seq=5, status=after, **fields)
    try:
        return check_transition(Status(before), event)
    except LifecycleError as exc:
        return exc


@pytest.mark.parametrize("before", list(Status), ids=int)
def test_status_override_may_move_any_status_to_any(before: Status) -> None:
    for after in Status:
        result = _override(before, after, override_field="status", override_old=str(before), override_new=str(after))
        assert result == after


def test_override_rule_refuses_laundered_status_changes() -> None:
    refused = [
        _override(9, 4),  # a due-date correction that also reopens the dossier
        _override(9, 4, override_field="status", override_old="8", override_new="4"),  # wrong old status
        _override(9, 4, override_field="status", override_old="9", override_new="2"),  # status ≠ override_new
        _override(9, 4, override_field="status", override_old="9", override_new="bốn"),
        _override(9, 4, override_field="status", override_old="9"),  # no new value
    ]
    assert all(isinstance(r, LifecycleError) and r.kind == "illegal-transition" for r in refused)
    assert "must leave the status unchanged" in str(refused[0])
    assert "override_old '8' is not the status before (9)" in str(refused[1])
    assert _override(9, 9) == Status.DONE
    assert _override(4, 4, override_field="status", override_old="4", override_new="04") == Status.PROCESSING


def test_event_types_without_a_row_are_known() -> None:
    # A type added to the contract is illegal everywhere until someone writes its row here and in SPEC.
    with_row = {event_type for _, event_type in TRANSITIONS}
    assert set(EventType) - with_row == {E.UNKNOWN}
