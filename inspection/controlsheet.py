"""The control sheet (Phiếu kiểm soát quá trình giải quyết hồ sơ) rebuilt from a dossier's events.

An inspector reconstructing a dossier needs, step by step: who gave it to
whom (person, role, unit), when, the step's budget, the working time spent
and whether the step finished early, on time or late; the pauses
(supplement, financial obligation) with their working time excluded; the
apologies with their new dates; the final verdict against the *original*
due date (an apology does not make a late dossier on time); and whether the
seq and hash chain hold.

Two clocks (bitemporal view): ``as_of`` is valid time (what had happened by
then, by ``occurred_at``), ``known_at`` is transaction time (what the system
knew by then, by ``recorded_at``). An event recorded long after it
happened appears only from its ``recorded_at``; comparing the two views
exposes backdating.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from schemas.errors import LifecycleError
from schemas.events import ActorRole, DossierEvent, EventType
from schemas.lifecycle import DossierState, Pause, fold_tolerant
from schemas.workingtime import Outcome, WorkingCalendar, default_calendar

E = EventType

#: Events that put the dossier in someone's hands; each opens a control-sheet row.
STEP_STARTS: Final = frozenset(
    {E.DOSSIER_RECEIVED, E.DOSSIER_TRANSFERRED, E.STEP_HANDED_OVER, E.STEP_RETURNED, E.INTER_AGENCY_TRANSFERRED}
)


def opens_step(event: DossierEvent) -> bool:
    """Whether ``event`` puts the dossier in someone's hands: a hand-over, or an approval that passes it on.

    A leader's ResultApproved that names a receiver (the clerk who numbers and
    issues the result) ends the leader's step and opens the clerk's, so the
    issuing time is not charged to the leader.
    """
    if event.event_type in STEP_STARTS:
        return True
    return event.event_type is E.RESULT_APPROVED and (event.to_actor is not None or event.to_unit is not None)


#: The same predicate in SQL over the ``events`` columns.
OPENS_STEP_SQL: Final = (
    "(event_type IN ({starts}) OR (event_type = 'ResultApproved' AND (to_actor IS NOT NULL OR to_unit IS NOT NULL)))"
).format(starts=", ".join(f"'{e.value}'" for e in sorted(STEP_STARTS)))

#: Statuses that end the handling: the open row closes when the dossier reaches one.
_HANDLING_ENDS: Final = frozenset({3, 7, 8, 9, 10})
BACKDATING_THRESHOLD: Final = timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Party:
    actor_id: str | None
    role: ActorRole | None
    unit_code: str

    def __str__(self) -> str:
        who = self.actor_id or "(unit)"
        role = f", {self.role.value}" if self.role else ""
        return f"{who}{role} @ {self.unit_code}"


@dataclasses.dataclass(frozen=True)
class StepRow:
    """One control-sheet row: the dossier in one party's hands."""

    number: int
    seq: int
    action: EventType
    giver: Party | None
    receiver: Party
    handed_over_at: datetime
    ended_at: datetime | None
    ended_seq: int | None
    budget: timedelta | None
    step_due_at: datetime | None
    spent: timedelta
    paused: timedelta
    outcome: str  # early | on_time | late | in_progress | no_budget


@dataclasses.dataclass(frozen=True)
class ApologyRow:
    seq: int
    at: datetime
    actor: Party
    new_due_at: datetime | None
    reason: str | None
    timely_national: bool  # at least one working day before the original due date (NĐ 61)
    timely_hcmc: bool  # no later than the original due date (HCMC QĐ 5157/2016)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The dossier's outcome against its original due date (Index 766 indicator 2.1)."""

    outcome: str  # early | on_time | late | in_progress_not_due | in_progress_overdue | no_due_date
    ended_at: datetime | None
    adjusted_end: datetime | None
    original_due_at: datetime | None
    current_due_at: datetime | None
    paused: timedelta
    late_by: timedelta  # working time past the original due date (zero unless late)
    note: str


@dataclasses.dataclass(frozen=True)
class ControlSheet:
    dossier_id: str
    as_of: datetime | None
    known_at: datetime | None
    events: tuple[DossierEvent, ...]
    hidden_by_known_at: tuple[DossierEvent, ...]
    state: DossierState | None
    steps: tuple[StepRow, ...]
    pauses: tuple[Pause, ...]
    apologies: tuple[ApologyRow, ...]
    verdict: Verdict
    problems: tuple[LifecycleError, ...]
    backdated: tuple[DossierEvent, ...]

    @property
    def chain_intact(self) -> bool:
        return not self.problems


def _party(actor: str | None, role: ActorRole | None, unit: str) -> Party:
    return Party(actor, role, unit)


def _receiver(event: DossierEvent) -> Party:
    if event.event_type is E.DOSSIER_RECEIVED:
        return _party(event.actor_id, event.actor_role, event.unit_code)
    return _party(event.to_actor, event.to_role, event.to_unit or event.unit_code)


def _paused_within(pauses: Sequence[Pause], start: datetime, end: datetime, cal: WorkingCalendar) -> timedelta:
    total = timedelta(0)
    for pause in pauses:
        lo = max(start, pause.started_at)
        hi = min(end, pause.ended_at or end)
        if hi > lo:
            total += cal.working_time_between(lo, hi)
    return total


def _step_outcome(
    spent: timedelta, budget: timedelta | None, end: datetime | None, due: datetime | None, cal: WorkingCalendar
) -> str:
    if end is None:
        return "in_progress"
    if budget is not None:
        spent_min, budget_min = spent // timedelta(minutes=1), budget // timedelta(minutes=1)
        return "early" if spent_min < budget_min else "on_time" if spent_min == budget_min else "late"
    if due is not None:
        return cal.outcome(end, due).value
    return "no_budget"


def _segments(events: Sequence[DossierEvent]) -> list[tuple[DossierEvent, DossierEvent | None]]:
    """(event that handed the dossier over, event that ended that holding or None if still held)."""
    segments: list[tuple[DossierEvent, DossierEvent | None]] = []
    start: DossierEvent | None = None
    for event in events:
        starts = opens_step(event)
        ends = event.status in _HANDLING_ENDS and event.event_type is not E.ADMIN_OVERRIDE
        if start is not None and (starts or ends):
            segments.append((start, event))
            start = None
        if starts:
            start = event
    if start is not None:
        segments.append((start, None))
    return segments


def _step_row(
    number: int, start: DossierEvent, end: DossierEvent | None, pauses: Sequence[Pause], now: datetime,
    cal: WorkingCalendar,
) -> StepRow:  # fmt: skip
    stop = end.occurred_at if end is not None else now
    paused = _paused_within(pauses, start.occurred_at, stop, cal)
    spent = cal.working_time_between(start.occurred_at, stop) - paused
    budget = timedelta(minutes=start.step_budget_minutes) if start.step_budget_minutes is not None else None
    end_at = end.occurred_at if end is not None else None
    giver = (
        None if start.event_type is E.DOSSIER_RECEIVED else _party(start.actor_id, start.actor_role, start.unit_code)
    )
    return StepRow(
        number=number,
        seq=start.seq,
        action=start.event_type,
        giver=giver,
        receiver=_receiver(start),
        handed_over_at=start.occurred_at,
        ended_at=end_at,
        ended_seq=end.seq if end is not None else None,
        budget=budget,
        step_due_at=start.step_due_at,
        spent=spent,
        paused=paused,
        outcome=_step_outcome(spent, budget, end_at, start.step_due_at, cal),
    )


def _steps(
    events: Sequence[DossierEvent], pauses: Sequence[Pause], now: datetime, cal: WorkingCalendar
) -> list[StepRow]:
    return [_step_row(n, start, end, pauses, now, cal) for n, (start, end) in enumerate(_segments(events), start=1)]


def _apologies(events: Sequence[DossierEvent], original_due: datetime | None, cal: WorkingCalendar) -> list[ApologyRow]:
    rows = []
    national_limit = cal.add_working_days(original_due, -1) if original_due is not None else None
    for event in events:
        if event.event_type is not E.APOLOGY_ISSUED:
            continue
        rows.append(
            ApologyRow(
                seq=event.seq,
                at=event.occurred_at,
                actor=_party(event.actor_id, event.actor_role, event.unit_code),
                new_due_at=event.new_due_at,
                reason=event.reason,
                timely_national=national_limit is not None and event.occurred_at <= national_limit,
                timely_hcmc=original_due is not None and event.occurred_at <= original_due,
            )
        )
    return rows


def _verdict(state: DossierState | None, now: datetime, cal: WorkingCalendar) -> Verdict:
    if state is None or state.original_due_at is None:
        note = "not received yet" if state is None or state.received_at is None else "received without a due date"
        return Verdict("no_due_date", None, None, None, None, timedelta(0), timedelta(0), note)
    due, paused = state.original_due_at, state.paused_working_time
    if state.ended_at is None:
        outcome = "in_progress_overdue" if now > due else "in_progress_not_due"
        late_by = cal.working_time_between(due, now) if now > due else timedelta(0)
        return Verdict(outcome, None, None, due, state.due_at, paused, late_by, f"as of {now.isoformat()}")
    adjusted = cal.add_working_time(state.ended_at, -paused) if paused else state.ended_at
    outcome = cal.outcome(adjusted, due).value
    note = "pauses excluded" if paused else ""
    if state.supplement_count > 1:
        outcome, note = Outcome.LATE.value, "more than one supplement request counts as late (Index 766 2.1)"
    late_by = cal.working_time_between(due, adjusted) if outcome == "late" and adjusted > due else timedelta(0)
    return Verdict(outcome, state.ended_at, adjusted, due, state.due_at, paused, late_by, note)


def build_control_sheet(
    events: Sequence[DossierEvent],
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    now: datetime,
    calendar: WorkingCalendar | None = None,
) -> ControlSheet:
    """The control sheet of one dossier's events (any order; sorted by seq here).

    ``now`` is the reference time for steps and dossiers still in progress (the
    caller passes the wall clock, or ``as_of``). Problems in the history (gaps,
    hash breaks, illegal transitions) are reported in ``problems``, never hidden.
    """
    if not events:
        raise ValueError("no events: the dossier is not in the store")
    cal = calendar or default_calendar()
    ordered = sorted(events, key=lambda e: e.seq)
    visible = [e for e in ordered if as_of is None or e.occurred_at <= as_of]
    hidden = tuple(e for e in visible if known_at is not None and e.recorded_at > known_at)
    visible = [e for e in visible if e not in hidden]
    reference = min(now, as_of) if as_of is not None else now
    state, problems = fold_tolerant(visible, calendar=cal)
    pauses = state.pauses if state is not None else ()
    return ControlSheet(
        dossier_id=ordered[0].dossier_id,
        as_of=as_of,
        known_at=known_at,
        events=tuple(visible),
        hidden_by_known_at=hidden,
        state=state,
        steps=tuple(_steps(visible, pauses, reference, cal)),
        pauses=tuple(pauses),
        apologies=tuple(_apologies(visible, state.original_due_at if state else None, cal)),
        verdict=_verdict(state, reference, cal),
        problems=tuple(problems),
        backdated=tuple(e for e in visible if e.recorded_at - e.occurred_at > BACKDATING_THRESHOLD),
    )
