"""Replaying dossier histories: realistic lifecycles, broken chains, and random legal walks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import LifecycleError
from schemas.events import ActorRole, Channel, DossierEvent, EventType
from schemas.hashchain import seal
from schemas.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    DossierState,
    Holder,
    Pause,
    Status,
    check_history,
    replay,
)
from schemas.workingtime import default_calendar
from tests.eventfactory import DOSSIER_ID, OTHER_UNIT, T0, UNIT, VN, history

E = EventType


#: The real national calendar (07:00-11:30, 13:30-17:00; holidays and make-up Saturdays).
CALENDAR = default_calendar()


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=VN)


FRI_10 = vn(3, 1, 10)  # supplement requested, Friday 1 March 2024
TUE_09 = vn(3, 5, 9)  # supplement received: Fri 5 h + Mon 8 h + Tue 2 h = 15 working hours


def online_with_supplement_and_apology() -> list[DossierEvent]:
    return history(
        (E.DOSSIER_SUBMITTED, 1, {"at": vn(2, 26, 20, 15)}),
        (E.DOSSIER_DIGITIZED, 1, {"at": vn(2, 27, 8)}),
        (E.DOSSIER_RECEIVED, 2, {"at": vn(2, 27, 8, 30), "due_at": vn(3, 1, 8, 30)}),
        (E.DOSSIER_TRANSFERRED, 4, {"at": vn(2, 27, 9)}),
        (E.SUPPLEMENT_REQUESTED, 5, {"at": FRI_10}),
        (E.SUPPLEMENT_RECEIVED, 4, {"at": TUE_09, "due_at": vn(3, 6, 8, 0)}),
        (E.STEP_HANDED_OVER, 4, {"at": vn(3, 5, 14)}),
        (E.APOLOGY_ISSUED, 4, {"at": vn(3, 5, 15), "new_due_at": vn(3, 8, 17)}),
        (E.RESULT_APPROVED, 4, {"at": vn(3, 6, 10), "to_actor": "vt-01", "to_role": ActorRole.CLERK}),
        (E.RESULT_ISSUED, 9, {"at": vn(3, 6, 11)}),
        (E.RESULT_RETURNED, 10, {"at": vn(3, 6, 14), "actor_id": "tn-02"}),
        (E.CITIZEN_RATED, 10, {"at": vn(3, 6, 15)}),
        (E.SYNCED_TO_NATIONAL, 10, {"at": vn(3, 6, 15, 5)}),
    )


def test_online_dossier_with_supplement_round_and_apology() -> None:
    events = online_with_supplement_and_apology()
    state = replay(events, calendar=CALENDAR)
    assert state == DossierState(
        dossier_id=DOSSIER_ID,
        status=Status.RETURNED,
        last_seq=13,
        last_hash=events[-1].hash,
        events=13,
        submitted_at=vn(2, 26, 20, 15),
        received_at=vn(2, 27, 8, 30),
        original_due_at=vn(3, 1, 8, 30),
        due_at=vn(3, 8, 17),
        paused=False,
        pauses=(Pause("supplement", FRI_10, TUE_09, 5, 6),),
        paused_working_time=timedelta(hours=15),
        holder=Holder("tn-02", ActorRole.RECEPTION_OFFICER, UNIT),
        supplement_count=1,
        apology_count=1,
        terminal=True,
        done_at=vn(3, 6, 11),
        returned_at=vn(3, 6, 14),
        ended_at=vn(3, 6, 11),
        last_event_at=vn(3, 6, 15, 5),
    )


def test_open_supplement_pause_is_not_yet_counted() -> None:
    state = replay(online_with_supplement_and_apology()[:5], calendar=CALENDAR)
    assert state.status is Status.SUPPLEMENT_REQUESTED
    assert state.paused
    assert state.pauses == (Pause("supplement", FRI_10, None, 5, None),)
    assert state.paused_working_time == timedelta(0)
    assert state.holder == Holder("cv-01", ActorRole.CASE_OFFICER, UNIT)
    assert state.ended_at is None


def test_replay_defaults_to_the_national_calendar() -> None:
    # Fri 26/4/2024 10:00 to Sat 4/5 10:00: 30/4-1/5 and the swapped Monday 29/4 are off, Saturday 4/5 is
    # the make-up working day: Fri 5 h + Thu 8 h + Fri 8 h + Sat 3 h.
    events = history(
        *_received_and_transferred(),
        (E.SUPPLEMENT_REQUESTED, 5, {"at": vn(4, 26, 10)}),
        (E.SUPPLEMENT_RECEIVED, 4, {"at": vn(5, 4, 10)}),
    )
    assert replay(events).paused_working_time == timedelta(hours=24)
    assert replay(online_with_supplement_and_apology()).paused_working_time == timedelta(hours=15)


def test_direct_same_day_dossier() -> None:
    direct = {"channel": Channel.DIRECT}
    events = history(
        (E.DOSSIER_RECEIVED, 2, {**direct, "at": vn(3, 11, 8), "due_at": vn(3, 11, 17)}),
        (E.RESULT_ISSUED, 9, {**direct, "at": vn(3, 11, 10)}),
        (E.RESULT_RETURNED, 10, {**direct, "at": vn(3, 11, 10, 30), "return_channel": Channel.DIRECT}),
        (E.RESULT_COLLECTED, 10, {**direct, "at": vn(3, 11, 10, 35)}),
    )
    state = replay(events, calendar=CALENDAR)
    assert (state.status, state.terminal, state.events) == (Status.RETURNED, True, 4)
    assert state.submitted_at is None
    assert (state.received_at, state.original_due_at, state.due_at) == (vn(3, 11, 8), vn(3, 11, 17), vn(3, 11, 17))
    assert (state.done_at, state.returned_at, state.ended_at) == (vn(3, 11, 10), vn(3, 11, 10, 30), vn(3, 11, 10))
    assert state.holder == Holder("tn-01", ActorRole.RECEPTION_OFFICER, UNIT)
    assert (state.pauses, state.supplement_count, state.apology_count) == ((), 0, 0)


def test_inter_agency_chain_moves_the_holder() -> None:
    cv, ld = ActorRole.CASE_OFFICER, ActorRole.LEADER
    events = history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.INTER_AGENCY_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4, {"unit_code": OTHER_UNIT, "to_unit": OTHER_UNIT, "to_actor": "cv-b1", "to_role": cv}),
        (E.INTER_AGENCY_TRANSFERRED, 4, {"unit_code": OTHER_UNIT, "to_unit": UNIT, "to_actor": "ld-01", "to_role": ld}),
        (E.STEP_RETURNED, 4, {"actor_id": "ld-01", "actor_role": ld}),
        (E.RESULT_APPROVED, 4),
        (E.RESULT_ISSUED, 9),
    )
    holders = [replay(events[:n], calendar=CALENDAR).holder for n in range(1, len(events) + 1)]
    assert holders == [
        None,
        Holder("tn-01", ActorRole.RECEPTION_OFFICER, UNIT),
        Holder("cv-01", cv, UNIT),
        Holder(None, None, OTHER_UNIT),  # sent to the coordinating agency, nobody named yet
        Holder("cv-b1", cv, OTHER_UNIT),
        Holder("ld-01", ld, UNIT),
        Holder("cv-01", cv, UNIT),
        Holder("cv-01", cv, UNIT),  # approval without to_* leaves the dossier where it is
        Holder("vt-01", ActorRole.CLERK, UNIT),
    ]


def _received_and_transferred() -> list[tuple[EventType, int, dict[str, object]]]:
    return [
        (E.DOSSIER_SUBMITTED, 1, {"at": vn(2, 26, 8)}),
        (E.DOSSIER_RECEIVED, 2, {"at": vn(2, 26, 9), "due_at": vn(3, 4, 9)}),
        (E.DOSSIER_TRANSFERRED, 4, {"at": vn(2, 26, 10)}),
    ]


def test_withdrawal_ends_the_dossier_at_the_request() -> None:
    events = history(
        *_received_and_transferred(),
        (E.WITHDRAWAL_REQUESTED, 7, {"at": vn(2, 27, 9)}),
        (E.PROCESSING_STOPPED, 8, {"at": vn(2, 28, 9)}),
    )
    requested = replay(events[:4], calendar=CALENDAR)
    assert (requested.status, requested.terminal, requested.ended_at) == (
        Status.WITHDRAWAL_REQUESTED,
        False,
        vn(2, 27, 9),
    )
    stopped = replay(events, calendar=CALENDAR)
    assert (stopped.status, stopped.terminal, stopped.ended_at) == (Status.STOPPED, True, vn(2, 27, 9))
    assert stopped.done_at is None


def test_declined_withdrawal_reopens_the_dossier() -> None:
    events = history(
        *_received_and_transferred(),
        (E.WITHDRAWAL_REQUESTED, 7, {"at": vn(2, 27, 9)}),
        (E.WITHDRAWAL_DECLINED, 4, {"at": vn(2, 27, 10)}),
    )
    state = replay(events, calendar=CALENDAR)
    assert (state.status, state.terminal, state.ended_at) == (Status.PROCESSING, False, None)


def test_refusal_before_reception_has_no_end_time() -> None:
    state = replay(history((E.DOSSIER_SUBMITTED, 1), (E.RECEPTION_REFUSED, 3)), calendar=CALENDAR)
    assert (state.status, state.terminal, state.received_at, state.ended_at) == (Status.REFUSED, True, None, None)


def test_recall_of_a_returned_result_keeps_the_first_dates() -> None:
    events = history(
        *_received_and_transferred(),
        (E.RESULT_ISSUED, 9, {"at": vn(2, 28, 9)}),
        (E.RESULT_RETURNED, 10, {"at": vn(2, 28, 14)}),
        (E.RESULT_RECALLED, 4, {"at": vn(2, 29, 9), "ref_seq": 5}),
        (E.RESULT_ISSUED, 9, {"at": vn(3, 1, 9)}),
        (E.RESULT_RETURNED, 10, {"at": vn(3, 1, 14)}),
    )
    recalled = replay(events[:6], calendar=CALENDAR)
    assert (recalled.status, recalled.terminal) == (Status.PROCESSING, False)
    assert recalled.holder == Holder("tn-01", ActorRole.RECEPTION_OFFICER, UNIT)  # recall names no new holder
    final = replay(events, calendar=CALENDAR)
    assert (final.status, final.terminal) == (Status.RETURNED, True)
    assert (final.done_at, final.returned_at, final.ended_at) == (vn(2, 28, 9), vn(2, 28, 14), vn(2, 28, 9))


def test_financial_obligation_with_clock_stopped() -> None:
    events = history(
        *_received_and_transferred(),
        (E.FINANCIAL_OBLIGATION_REQUESTED, 6, {"at": vn(3, 11, 9), "clock_stopped": True}),
        (E.FEE_PAID, 6, {"at": vn(3, 12, 15)}),
        (E.FINANCIAL_OBLIGATION_FULFILLED, 9, {"at": vn(3, 13, 9)}),
    )
    state = replay(events, calendar=CALENDAR)
    assert state.pauses == (Pause("financial", vn(3, 11, 9), vn(3, 13, 9), 4, 6),)
    assert state.paused_working_time == timedelta(hours=16)  # Mon 09:00 to Wed 09:00: two working days
    assert (state.status, state.paused, state.done_at) == (Status.DONE, False, vn(3, 13, 9))


def test_financial_obligation_without_clock_stop_pauses_nothing() -> None:
    events = history(
        *_received_and_transferred(),
        (E.FINANCIAL_OBLIGATION_REQUESTED, 6, {"clock_stopped": False}),
        (E.FINANCIAL_OBLIGATION_FULFILLED, 4),
    )
    state = replay(events, calendar=CALENDAR)
    assert (state.pauses, state.paused_working_time, state.status) == ((), timedelta(0), Status.PROCESSING)


@pytest.mark.parametrize(("event_type", "after"), [(E.RECEPTION_REFUSED, 3), (E.WITHDRAWAL_REQUESTED, 7)])
def test_leaving_status_5_other_than_by_supplement_closes_the_pause(event_type: EventType, after: int) -> None:
    events = history(
        *_received_and_transferred(),
        (E.SUPPLEMENT_REQUESTED, 5, {"at": FRI_10}),
        (event_type, after, {"at": TUE_09}),
    )
    state = replay(events, calendar=CALENDAR)
    assert state.pauses == (Pause("supplement", FRI_10, TUE_09, 4, 5),)
    assert state.paused_working_time == timedelta(hours=15)
    assert (state.paused, state.ended_at) == (False, TUE_09)


def test_two_supplement_rounds_are_counted_and_summed() -> None:
    events = history(
        *_received_and_transferred(),
        (E.SUPPLEMENT_REQUESTED, 5, {"at": vn(3, 4, 9)}),
        (E.SUPPLEMENT_RECEIVED, 4, {"at": vn(3, 4, 11)}),  # 2 h
        (E.SUPPLEMENT_REQUESTED, 5, {"at": vn(3, 4, 16)}),
        (E.SUPPLEMENT_RECEIVED, 4, {"at": vn(3, 5, 8)}),  # 1 h + 1 h
    )
    state = replay(events, calendar=CALENDAR)
    assert state.supplement_count == 2
    assert [(p.started_seq, p.ended_seq) for p in state.pauses] == [(4, 5), (6, 7)]
    assert state.paused_working_time == timedelta(hours=4)


def test_status_override_is_replayed_and_due_date_override_moves_due_at() -> None:
    events = history(
        *_received_and_transferred(),
        (E.RESULT_ISSUED, 9),
        (E.ADMIN_OVERRIDE, 4, {"override_field": "status", "override_old": "9", "override_new": "4"}),
        (E.ADMIN_OVERRIDE, 4, {"due_at": vn(3, 20, 17)}),
        (E.STEP_HANDED_OVER, 4),
    )
    state = replay(events, calendar=CALENDAR)
    assert (state.status, state.due_at, state.original_due_at) == (Status.PROCESSING, vn(3, 20, 17), vn(3, 4, 9))


def test_override_that_changes_status_without_saying_so_is_illegal() -> None:
    events = history(*_received_and_transferred(), (E.RESULT_ISSUED, 9), (E.ADMIN_OVERRIDE, 4))
    with pytest.raises(LifecycleError) as caught:
        replay(events, calendar=CALENDAR)
    assert (caught.value.kind, caught.value.seq) == ("illegal-transition", 5)
    assert "from 9 (Đã xử lý xong) by AdminOverride to 4" in str(caught.value)


# --- broken histories -------------------------------------------------------------------------


def _plain() -> list[DossierEvent]:
    return history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4),
        (E.STEP_RETURNED, 4),
        (E.RESULT_APPROVED, 4),
        (E.RESULT_ISSUED, 9),
        (E.CITIZEN_RATED, 9),
    )


def _error(events: list[DossierEvent], **kwargs: bool) -> LifecycleError:
    with pytest.raises(LifecycleError) as caught:
        replay(events, calendar=CALENDAR, **kwargs)
    return caught.value


def test_seq_gap() -> None:
    events = _plain()
    error = _error(events[:2] + events[3:])
    assert (error.kind, error.seq) == ("seq-gap", 4)
    assert str(error) == f"{DOSSIER_ID} seq 4: seq gap: expected seq 3, got 4 (StepHandedOver)"


def test_first_event_must_be_seq_1() -> None:
    error = _error(_plain()[1:])
    assert (error.kind, error.seq) == ("seq-gap", 2)
    assert "expected seq 1" in str(error)


def test_seq_repeat() -> None:
    events = _plain()
    error = _error([*events[:4], events[2]])
    assert (error.kind, error.seq) == ("seq-repeat", 3)
    assert "comes after seq 4" in str(error)


def test_foreign_event() -> None:
    other = history(*[(e.event_type, e.status) for e in _plain()], dossier_id="000.00.31.H29-240115-0002")
    error = _error([*_plain()[:3], other[3]])
    assert (error.kind, error.dossier_id, error.seq) == ("foreign-event", "000.00.31.H29-240115-0002", 4)
    assert f"in the history of {DOSSIER_ID}" in str(error)


def test_prev_hash_break() -> None:
    events = _plain()
    events[3] = seal(events[3], bytes(32))  # a consistent event, linked to the wrong predecessor
    error = _error(events)
    assert (error.kind, error.seq) == ("prev-hash-break", 4)
    assert "is not the hash of seq 3" in str(error)


def test_tampered_field_breaks_the_hash_unless_hashes_are_trusted() -> None:
    events = _plain()
    events[2] = events[2].replace(to_actor="cv-99")  # handed to someone else after the fact
    error = _error(events)
    assert (error.kind, error.seq) == ("hash-break", 3)
    assert "DossierTransferred event content does not match its hash" in str(error)
    assert replay(events, calendar=CALENDAR, verify_hashes=False).last_seq == 8


def test_invalid_event_message_is_not_prefixed_twice() -> None:
    events = _plain()
    events[2] = seal(events[2].replace(actor_id=""), events[1].hash)
    error = _error(events)
    assert (error.kind, error.seq) == ("invalid-event", 3)
    assert str(error) == f"{DOSSIER_ID} seq 3: invalid DossierTransferred event: actor_id is empty"


def test_empty_history_has_no_state() -> None:
    with pytest.raises(ValueError, match="empty history"):
        replay([])


def test_check_history_reports_every_problem_once() -> None:
    plain = _plain()
    events = history(*plain[:7], (E.SUPPLEMENT_REQUESTED, 5))  # seq 8: 9 -> 5 is illegal
    events[2] = events[2].replace(reason="x")  # hash-break at 3 (and invalid: transfers carry no reason)
    events[3] = events[3].replace(actor_id="cv-99")  # hash-break at 4
    foreign = history(*plain[:6], dossier_id="000.00.31.H29-240115-0002")[5]
    events = [*events[:4], *events[5:6], foreign, *events[6:]]  # seq 5 missing, a foreign seq 6 inserted
    found = [(e.kind, e.seq) for e in check_history(events)]
    assert found == [
        ("invalid-event", 3),
        ("hash-break", 4),
        ("seq-gap", 6),
        ("prev-hash-break", 6),
        ("foreign-event", 6),
        ("illegal-transition", 8),
    ]


def test_check_history_of_a_clean_history_is_empty() -> None:
    assert check_history(online_with_supplement_and_apology()) == []


# --- random walks through the table -----------------------------------------------------------

MOVES: dict[Status | None, list[tuple[EventType, Status]]] = {}
for (_before, _type), _targets in sorted(TRANSITIONS.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1].value)):
    MOVES.setdefault(_before, []).extend((_type, t) for t in sorted(_targets))


@st.composite
def legal_walks(draw: st.DrawFn) -> list[DossierEvent]:
    before: Status | None = None
    at = T0
    steps: list[tuple[EventType, int, dict[str, object]]] = []
    for _ in range(draw(st.integers(1, 30))):
        event_type, after = draw(st.sampled_from(MOVES[before]))
        at += timedelta(minutes=draw(st.integers(1, 5000)))
        fields: dict[str, object] = {"at": at}
        if event_type is E.ADMIN_OVERRIDE and after != before:
            fields |= {"override_field": "status", "override_old": str(before), "override_new": str(after)}
        if event_type is E.FINANCIAL_OBLIGATION_REQUESTED:
            fields["clock_stopped"] = draw(st.booleans())
        steps.append((event_type, after, fields))
        before = after
    return history(*steps)


@settings(max_examples=200, deadline=None)
@given(legal_walks())
def test_random_legal_walks_replay(events: list[DossierEvent]) -> None:
    state = replay(events, calendar=CALENDAR)
    assert state.status == events[-1].status
    assert (state.last_seq, state.events, state.last_hash) == (len(events), len(events), events[-1].hash)
    assert state.terminal == (state.status in TERMINAL)
    assert state.supplement_count == sum(e.event_type is E.SUPPLEMENT_REQUESTED for e in events)
    assert not state.paused or state.status in (Status.SUPPLEMENT_REQUESTED, Status.FINANCIAL_OBLIGATION)
    closed = [p for p in state.pauses if p.ended_at is not None]
    assert state.paused_working_time == sum(
        (CALENDAR.working_time_between(p.started_at, p.ended_at) for p in closed if p.ended_at), timedelta(0)
    )
    assert check_history(events) == []


_CHANNELS = (Channel.DIRECT, Channel.ONLINE, Channel.POSTAL)
TAMPERINGS: dict[str, Callable[[DossierEvent], object]] = {
    "event_id": lambda e: str(uuid.uuid5(uuid.NAMESPACE_URL, e.event_id)),
    "occurred_at": lambda e: e.occurred_at + timedelta(microseconds=1),
    "recorded_at": lambda e: e.recorded_at + timedelta(seconds=1),
    "actor_id": lambda e: e.actor_id + "x",
    "procedure_code": lambda e: e.procedure_code + ".1",
    "applicant_ref": lambda e: e.applicant_ref + "0",
    "channel": lambda e: _CHANNELS[(_CHANNELS.index(e.channel) + 1) % 3],
    "status": lambda e: e.status % 10 + 1,
    "n_attachments": lambda e: e.n_attachments + 1,
    "due_at": lambda e: (e.due_at or T0) + timedelta(hours=1),
    "step_code": lambda e: (e.step_code or "") + "LAI",
}


@settings(max_examples=200, deadline=None)
@given(legal_walks(), st.data())
def test_any_single_field_tampering_is_caught_by_the_hash(events: list[DossierEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(events) - 1))
    name = data.draw(st.sampled_from(sorted(TAMPERINGS)))
    target = events[index]
    events[index] = target.replace(**{name: TAMPERINGS[name](target)})
    error = _error(events)
    assert (error.kind, error.seq) == ("hash-break", index + 1)
    assert (check_history(events)[0].kind, check_history(events)[0].seq) == ("hash-break", index + 1)
