"""The control sheet rebuilt from events: steps, pauses, apologies, verdict, bitemporal views."""

from __future__ import annotations

from datetime import datetime, timedelta

from inspection.controlsheet import build_control_sheet
from inspection.controlsheet_view import render_text, to_dict
from schemas.events import ActorRole, EventType
from schemas.hashchain import seal_chain
from tests.eventfactory import UNIT, VN, history
from tests.sampledossier import sample_history

E = EventType
NOW = datetime(2024, 6, 1, tzinfo=VN)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=VN)  # March 2024: 4 = Monday


def test_late_dossier_with_apology_is_late_against_the_original_due_date() -> None:
    sheet = build_control_sheet(sample_history(), now=NOW)
    v = sheet.verdict
    assert v.outcome == "late"
    assert v.original_due_at == datetime(2024, 2, 19, 16, tzinfo=VN)
    assert v.current_due_at == datetime(2024, 2, 21, 16, tzinfo=VN)
    assert v.late_by == timedelta(hours=13, minutes=30)  # 19th 16-17h, 20th 8 h, 21st 07:00-11:30
    assert [a.timely_national for a in sheet.apologies] == [True]
    assert sheet.chain_intact
    assert [s.action for s in sheet.steps] == [E.DOSSIER_RECEIVED, E.DOSSIER_TRANSFERRED]
    assert sheet.steps[1].ended_seq == 5 and sheet.steps[1].giver is not None


def _supplement_history(second_supplement: bool = False) -> list:  # type: ignore[type-arg]
    steps = [
        (E.DOSSIER_SUBMITTED, 1, {"at": _at(1, 20)}),
        (E.DOSSIER_RECEIVED, 2, {"at": _at(4, 8), "due_at": _at(7, 8)}),
        (E.DOSSIER_TRANSFERRED, 4, {"at": _at(4, 9), "step_budget_minutes": 16 * 60}),
        (E.SUPPLEMENT_REQUESTED, 5, {"at": _at(5, 8)}),
        (E.SUPPLEMENT_RECEIVED, 4, {"at": _at(6, 8)}),
    ]
    if second_supplement:
        steps += [(E.SUPPLEMENT_REQUESTED, 5, {"at": _at(6, 9)}), (E.SUPPLEMENT_RECEIVED, 4, {"at": _at(6, 10)})]
    steps += [
        (E.STEP_HANDED_OVER, 4, {"at": _at(7, 14), "step_budget_minutes": 60}),
        (E.RESULT_ISSUED, 9, {"at": _at(7, 15, 30)}),
    ]
    return history(*steps)


def test_supplement_pause_is_excluded_from_the_verdict_and_the_step() -> None:
    sheet = build_control_sheet(_supplement_history(), now=NOW)
    assert sheet.verdict.paused == timedelta(hours=8)
    assert sheet.verdict.adjusted_end == _at(6, 15, 30)
    assert sheet.verdict.outcome == "early"
    transferred = sheet.steps[1]
    assert transferred.paused == timedelta(hours=8)
    # Mon 09:00 -> Thu 14:00 is 6 + 8 + 8 + 5 = 27 working hours, 8 of them paused.
    assert transferred.spent == timedelta(hours=19)
    assert transferred.outcome == "late"  # budget 16 h
    leader = sheet.steps[2]
    assert leader.spent == timedelta(minutes=90) and leader.outcome == "late"


def test_more_than_one_supplement_counts_late() -> None:
    sheet = build_control_sheet(_supplement_history(second_supplement=True), now=NOW)
    assert sheet.verdict.outcome == "late"
    assert "more than one supplement" in sheet.verdict.note


def test_as_of_shows_the_dossier_as_it_stood() -> None:
    sheet = build_control_sheet(_supplement_history(), as_of=_at(5, 10), now=NOW)
    assert [e.seq for e in sheet.events] == [1, 2, 3, 4]
    assert sheet.state is not None and sheet.state.status == 5 and sheet.state.paused
    assert sheet.verdict.outcome == "in_progress_not_due"
    assert sheet.steps[-1].outcome == "in_progress"


def test_known_at_hides_what_was_recorded_later_and_flags_backdating() -> None:
    events = _supplement_history()
    late = events[-1].replace(recorded_at=_at(12, 9))
    events = list(seal_chain([*events[:-1], late]))
    known = build_control_sheet(events, known_at=_at(8, 9), now=NOW)
    assert [e.seq for e in known.hidden_by_known_at] == [7]
    assert known.verdict.outcome == "in_progress_overdue"
    full = build_control_sheet(events, now=NOW)
    assert [e.seq for e in full.backdated] == [7]
    assert "recorded late: seq 7 ResultIssued" in render_text(full)


def test_tampered_history_is_still_shown_with_its_problems() -> None:
    events = _supplement_history()
    events[4] = events[4].replace(occurred_at=_at(5, 9))
    sheet = build_control_sheet(events, now=NOW)
    assert [p.kind for p in sheet.problems] == ["hash-break"]
    assert not sheet.chain_intact
    assert "hash-break" in render_text(sheet)


def test_dict_form_is_json_ready() -> None:
    data = to_dict(build_control_sheet(sample_history(), now=NOW))
    assert data["verdict"]["outcome"] == "late"
    assert data["verdict"]["late_by_minutes"] == 810
    assert data["steps"][0]["handed_over_at"] == "2024-02-07T16:00:00.000000+07:00"
    assert data["integrity"] == {"intact": True, "problems": []}


def test_an_approval_that_passes_the_dossier_on_opens_the_clerks_step() -> None:
    events = history(
        (E.DOSSIER_RECEIVED, 2, {"at": _at(4, 8), "due_at": _at(7, 8)}),
        (E.DOSSIER_TRANSFERRED, 4, {"at": _at(4, 9)}),
        (E.STEP_HANDED_OVER, 4, {"at": _at(4, 10)}),
        (E.RESULT_APPROVED, 4, {"at": _at(5, 10), "to_actor": "vt-01", "to_role": ActorRole.CLERK, "to_unit": UNIT}),
        (E.RESULT_ISSUED, 9, {"at": _at(5, 15)}),
    )
    steps = build_control_sheet(events, now=NOW).steps
    assert [s.action for s in steps][-2:] == [E.STEP_HANDED_OVER, E.RESULT_APPROVED]
    leader, clerk = steps[-2], steps[-1]
    assert leader.ended_seq == 4 and leader.spent == timedelta(hours=8)
    assert clerk.receiver.actor_id == "vt-01" and clerk.spent == timedelta(hours=3)  # 10:00-11:30, 13:30-15:00
