"""A dossier's state, rebuilt by folding :func:`apply` over its history.

The fold is where the contract is enforced on a whole history: every event
valid, of the same dossier, numbered without gaps, chained to the previous
hash, and a legal move of :data:`schemas.transitions.TRANSITIONS`. :func:`replay`
stops at the first problem; :func:`check_history` reports them all, for
verification tools that must show a tampered history in full.

Pauses are measured in working time with a :class:`WorkingClock` because the
time limits are (domain.md §b.6): a supplement requested on Friday afternoon
and answered on Monday morning costs the agency a few hours, not three days.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

from schemas.errors import EventValidationError, LifecycleError
from schemas.events import ZERO_HASH, ActorRole, DossierEvent, EventType, validate_event
from schemas.hashchain import compute_hash
from schemas.transitions import TERMINAL, TRANSITIONS, Status, allowed_after, check_transition

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "DossierState",
    "Holder",
    "Pause",
    "PauseKind",
    "Status",
    "WorkingClock",
    "allowed_after",
    "apply",
    "check_history",
    "check_transition",
    "fold_tolerant",
    "replay",
]

_E = EventType

_STATUS_CODES: Final = frozenset(int(code) for code in Status)


class WorkingClock(Protocol):
    """Measures working time; :func:`schemas.workingtime.default_calendar` is the real one."""

    def working_time_between(self, start: datetime, end: datetime) -> timedelta: ...


PauseKind = Literal["supplement", "financial"]

#: The status a pause belongs to: leaving it, by whatever event, ends the pause.
_PAUSE_STATUS: Final[dict[str, Status]] = {
    "supplement": Status.SUPPLEMENT_REQUESTED,
    "financial": Status.FINANCIAL_OBLIGATION,
}

#: Statuses whose entry after reception ends a dossier that never reached 9 or 10 (§b.8).
_STOP_STATUSES: Final = frozenset({Status.REFUSED, Status.WITHDRAWAL_REQUESTED, Status.STOPPED})

_HANDOVERS: Final = frozenset(
    {_E.DOSSIER_TRANSFERRED, _E.STEP_HANDED_OVER, _E.STEP_RETURNED, _E.INTER_AGENCY_TRANSFERRED}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Pause:
    """A stretch during which the dossier's clock is stopped."""

    kind: PauseKind
    started_at: datetime
    ended_at: datetime | None
    started_seq: int
    ended_seq: int | None

    @property
    def closed(self) -> bool:
        return self.ended_at is not None


@dataclasses.dataclass(frozen=True, slots=True)
class Holder:
    """Who has the dossier in hand. ``actor_id`` is None when it was sent to a unit, not a person."""

    actor_id: str | None
    role: ActorRole | None
    unit_code: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DossierState:
    """What a dossier's history adds up to after its last event.

    ``original_due_at`` is the due date set at reception and never moves: an
    apology resets ``due_at`` but the national indicator still measures
    against the first promise (§b.7). ``ended_at`` follows §b.8: the first
    time the result was ready (9), else returned (10), else the refusal,
    withdrawal request or stop after reception while the dossier sits there.
    """

    dossier_id: str
    status: Status
    last_seq: int
    last_hash: bytes
    events: int = 0
    submitted_at: datetime | None = None
    received_at: datetime | None = None
    original_due_at: datetime | None = None
    due_at: datetime | None = None
    paused: bool = False
    pauses: tuple[Pause, ...] = ()
    paused_working_time: timedelta = timedelta(0)
    holder: Holder | None = None
    supplement_count: int = 0
    apology_count: int = 0
    terminal: bool = False
    done_at: datetime | None = None
    returned_at: datetime | None = None
    ended_at: datetime | None = None
    last_event_at: datetime | None = None


class _DefaultClock:
    """Resolves :func:`schemas.workingtime.default_calendar` on first use only.

    Histories without a closed pause never need a calendar, so they replay
    without loading the holiday data.
    """

    def __init__(self) -> None:
        self._clock: WorkingClock | None = None

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        if self._clock is None:
            from schemas.workingtime import default_calendar

            clock: WorkingClock = default_calendar()
            self._clock = clock
        return self._clock.working_time_between(start, end)


class _NoClock:
    """For :func:`check_history`, which reports problems and measures nothing."""

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        return timedelta(0)


def replay(
    events: Iterable[DossierEvent], *, calendar: WorkingClock | None = None, verify_hashes: bool = True
) -> DossierState:
    """The state after ``events``, or the first :class:`LifecycleError` of the history.

    ``calendar`` defaults to the national working calendar. ``verify_hashes``
    off skips recomputing each hash (the prev_hash links are still checked),
    for a history whose hashes were already verified in bulk.
    """
    clock = calendar if calendar is not None else _DefaultClock()
    state: DossierState | None = None
    for event in events:
        state = apply(state, event, calendar=clock, verify_hashes=verify_hashes)
    if state is None:
        raise ValueError("an empty history has no state: a dossier starts with DossierSubmitted or DossierReceived")
    return state


def apply(
    state: DossierState | None,
    event: DossierEvent,
    *,
    calendar: WorkingClock | None = None,
    verify_hashes: bool = True,
) -> DossierState:
    """The state after ``event``; ``state`` None means ``event`` is the dossier's first.

    Raises :class:`LifecycleError` for the first problem found, in the order
    invalid-event, foreign-event, seq-gap/seq-repeat, prev-hash-break,
    hash-break, illegal-transition.
    """
    for error in _problems(state, event, verify_hashes=verify_hashes):
        raise error
    after = Status(event.status)
    return _advance(state, event, after, calendar if calendar is not None else _DefaultClock())


def check_history(events: Iterable[DossierEvent], *, verify_hashes: bool = True) -> list[LifecycleError]:
    """Every problem of a history, in order; empty when it replays cleanly.

    After a problem the check goes on trusting the event's own seq, hash and
    status, so one tampered event yields one hash-break rather than a cascade.
    Events of another dossier are reported and otherwise skipped.
    """
    return fold_tolerant(events, calendar=_NoClock(), verify_hashes=verify_hashes)[1]


def fold_tolerant(
    events: Iterable[DossierEvent], *, calendar: WorkingClock | None = None, verify_hashes: bool = True
) -> tuple[DossierState | None, list[LifecycleError]]:
    """The state an inspector sees, and every problem met on the way.

    Like :func:`replay`, but a problem does not stop the fold: it is recorded
    and the event is trusted as written (an inspector reconstructing a
    tampered or partial history still needs to see it). ``calendar`` measures
    the paused working time; None uses the national calendar.
    """
    clock = calendar if calendar is not None else _DefaultClock()
    found: list[LifecycleError] = []
    state: DossierState | None = None
    for event in events:
        problems = list(_problems(state, event, verify_hashes=verify_hashes, first_only=False))
        found.extend(problems)
        if any(p.kind == "foreign-event" for p in problems):
            continue
        if event.status in _STATUS_CODES:
            after = Status(event.status)
        else:
            after = state.status if state is not None else Status.SUBMITTED
        state = _advance(state, event, after, clock)
    return state, found


def _problems(
    state: DossierState | None, event: DossierEvent, *, verify_hashes: bool, first_only: bool = True
) -> Iterator[LifecycleError]:
    """The problems of ``event`` after ``state``; with ``first_only`` the first decides.

    Later checks assume the earlier ones passed, so with ``first_only`` a
    caller raising the first one never sees a check run on bad input.
    """
    dossier_id, seq = str(event.dossier_id), event.seq
    valid = True
    try:
        validate_event(event)
    except EventValidationError as exc:
        valid = False
        detail = str(exc).removeprefix(f"{dossier_id} seq {seq}: ")
        error = LifecycleError("invalid-event", dossier_id, seq, f"invalid {event.event_type.value} event: {detail}")
        error.__cause__ = exc
        yield error
        if first_only:
            return
    if state is not None and event.dossier_id != state.dossier_id:
        yield LifecycleError(
            "foreign-event", dossier_id, seq, f"event of dossier {dossier_id} in the history of {state.dossier_id}"
        )
        return
    yield from _link_problems(state, event)
    if verify_hashes and valid:
        computed = compute_hash(event)
        if computed != event.hash:
            yield LifecycleError(
                "hash-break",
                dossier_id,
                seq,
                f"{event.event_type.value} event content does not match its hash "
                f"(stored {event.hash.hex()[:16]}…, computed {computed.hex()[:16]}…): changed after sealing",
            )
    if event.status in _STATUS_CODES:
        try:
            check_transition(state.status if state is not None else None, event)
        except LifecycleError as exc:
            yield exc


def _link_problems(state: DossierState | None, event: DossierEvent) -> Iterator[LifecycleError]:
    dossier_id, seq = str(event.dossier_id), event.seq
    if not isinstance(seq, int) or not isinstance(event.prev_hash, bytes):
        return  # already reported as invalid-event
    expected_seq = 1 if state is None else state.last_seq + 1
    expected_prev = ZERO_HASH if state is None else state.last_hash
    if seq > expected_seq:
        yield LifecycleError(
            "seq-gap", dossier_id, seq, f"seq gap: expected seq {expected_seq}, got {seq} ({event.event_type.value})"
        )
    elif seq < expected_seq:
        yield LifecycleError(
            "seq-repeat",
            dossier_id,
            seq,
            f"seq repeat: seq {seq} ({event.event_type.value}) comes after seq {expected_seq - 1}",
        )
    if event.prev_hash != expected_prev:
        what = "32 zero bytes for the first event" if state is None else f"the hash of seq {state.last_seq}"
        yield LifecycleError(
            "prev-hash-break",
            dossier_id,
            seq,
            f"prev_hash {event.prev_hash.hex()[:16]}… of {event.event_type.value} is not {what} "
            f"({expected_prev.hex()[:16]}…)",
        )


def _advance(state: DossierState | None, event: DossierEvent, after: Status, clock: WorkingClock) -> DossierState:
    """The state after an event already known to be acceptable (or trusted)."""
    before = state.status if state is not None else None
    prior = state
    if prior is None:
        prior = DossierState(dossier_id=event.dossier_id, status=after, last_seq=0, last_hash=ZERO_HASH)
    at = event.occurred_at
    kind = event.event_type
    pauses, paused_time = _pauses_after(prior, event, after, clock)
    received = prior.received_at is None and kind is _E.DOSSIER_RECEIVED
    done_at = prior.done_at if prior.done_at is not None or after is not Status.DONE else at
    returned_at = prior.returned_at if prior.returned_at is not None or after is not Status.RETURNED else at
    return dataclasses.replace(
        prior,
        status=after,
        last_seq=event.seq,
        last_hash=event.hash,
        events=prior.events + 1,
        submitted_at=at if prior.submitted_at is None and kind is _E.DOSSIER_SUBMITTED else prior.submitted_at,
        received_at=at if received else prior.received_at,
        original_due_at=event.due_at if received else prior.original_due_at,
        due_at=_due_after(prior.due_at, event),
        paused=bool(pauses) and not pauses[-1].closed,
        pauses=pauses,
        paused_working_time=paused_time,
        holder=_holder_after(prior.holder, event),
        supplement_count=prior.supplement_count + (kind is _E.SUPPLEMENT_REQUESTED),
        apology_count=prior.apology_count + (kind is _E.APOLOGY_ISSUED),
        terminal=after in TERMINAL,
        done_at=done_at,
        returned_at=returned_at,
        ended_at=_ended_after(prior, before, after, at, done_at, returned_at),
        last_event_at=at,
    )


def _ended_after(
    prior: DossierState,
    before: Status | None,
    after: Status,
    at: datetime,
    done_at: datetime | None,
    returned_at: datetime | None,
) -> datetime | None:
    if done_at is not None:
        return done_at
    if returned_at is not None:
        return returned_at
    if after in _STOP_STATUSES and prior.received_at is not None:
        return prior.ended_at if before in _STOP_STATUSES else at
    return None


def _due_after(due_at: datetime | None, event: DossierEvent) -> datetime | None:
    """An apology's ``new_due_at`` wins; otherwise the event's own ``due_at`` when it carries one."""
    if event.event_type is _E.APOLOGY_ISSUED and event.new_due_at is not None:
        return event.new_due_at
    return event.due_at if event.due_at is not None else due_at


def _holder_after(holder: Holder | None, event: DossierEvent) -> Holder | None:
    kind = event.event_type
    if kind in (_E.DOSSIER_RECEIVED, _E.RESULT_ISSUED, _E.RESULT_RETURNED):
        return Holder(event.actor_id, event.actor_role, event.unit_code)
    handed = kind in _HANDOVERS or (
        kind is _E.RESULT_APPROVED and (event.to_actor or event.to_role or event.to_unit) is not None
    )
    if handed:
        return Holder(event.to_actor, event.to_role, event.to_unit or event.unit_code)
    return holder


def _pauses_after(
    prior: DossierState, event: DossierEvent, after: Status, clock: WorkingClock
) -> tuple[tuple[Pause, ...], timedelta]:
    """Close the open pause when the status leaves its own; open one on SupplementRequested
    or a clock-stopping FinancialObligationRequested."""
    pauses = list(prior.pauses)
    paused_time = prior.paused_working_time
    at = event.occurred_at
    if pauses and not pauses[-1].closed and after is not _PAUSE_STATUS[pauses[-1].kind]:
        open_pause = pauses[-1]
        pauses[-1] = dataclasses.replace(open_pause, ended_at=at, ended_seq=event.seq)
        paused_time += clock.working_time_between(open_pause.started_at, at)
    kind: PauseKind | None = None
    if event.event_type is _E.SUPPLEMENT_REQUESTED:
        kind = "supplement"
    elif event.event_type is _E.FINANCIAL_OBLIGATION_REQUESTED and event.clock_stopped:
        kind = "financial"
    if kind is not None and after is _PAUSE_STATUS[kind]:
        pauses.append(Pause(kind, at, None, event.seq, None))
    return tuple(pauses), paused_time
