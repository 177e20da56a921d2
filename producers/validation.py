"""Checking a whole publishing input before the first send.

Every event is checked against the contract (the JSON form or Avro record
must build a valid event), every dossier's events (in input order, across all
files) must replay as a legal history: seq 1, 2, 3 … without gap or repeat,
each ``prev_hash`` the previous ``hash``, each hash matching the content,
each move allowed by the lifecycle (:func:`schemas.lifecycle.check_history`).
An ``event_id`` may occur once. A problem anywhere in a dossier holds back
the whole dossier: publishing part of a history would leave a gap the
consumer cannot repair.

A *continuation* is a dossier whose first event in the input has seq > 1:
the rest of a history whose beginning is already on the topic, as in the
undelivered file of a failed run. It is refused unless asked for, because a
history that silently lost its first lines looks exactly the same. For a
continuation the first event's own content and hash are checked, and the
history is checked from there on; its link to the unseen predecessor cannot be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from dossier_runtime.progress import PhaseStarter
from producers.inputs import InputEvent, InputProblem, Item, read_events
from schemas.errors import EventValidationError, LifecycleError
from schemas.events import validate_event
from schemas.hashchain import compute_hash
from schemas.lifecycle import check_history

#: Problems of a continuation's first event that only say "the beginning is elsewhere".
_CONTINUATION_KINDS: Final = frozenset({"seq-gap", "prev-hash-break", "illegal-transition"})


@dataclasses.dataclass(frozen=True)
class Problem:
    """One bad position of the input: reported as ``source: reason``."""

    source: str
    reason: str
    dossier_id: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class CheckedInput:
    """The verdict on a whole input. Events and items keep input order."""

    accepted: tuple[InputEvent, ...]
    rejected: tuple[Item, ...]  # every item of a rejected dossier, and unreadable lines
    problems: tuple[Problem, ...]
    dossiers: int
    rejected_dossiers: int
    items_read: int
    continuations: int

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def accepted_dossiers(self) -> int:
        return self.dossiers - self.rejected_dossiers


def check_paths(
    paths: Sequence[Path], *, continuation: bool = False, phase: PhaseStarter | None = None
) -> CheckedInput:
    """Read every file and check the whole input (see the module docstring).

    ``phase`` starts the progress of reading (events) and of checking (dossiers)."""
    items: list[Item] = []
    read = phase("reading", None, "events") if phase is not None else None
    for path in paths:
        if read is None:
            items.extend(read_events(path))
            continue
        for item in read_events(path):
            items.append(item)
            read(1)
    return check_items(items, continuation=continuation, phase=phase)


def check_items(
    items: Sequence[Item], *, continuation: bool = False, phase: PhaseStarter | None = None
) -> CheckedInput:
    problems: list[tuple[int, Problem]] = []
    by_dossier: dict[str, list[int]] = {}
    bad_dossiers: set[str] = set()
    loose: set[int] = set()  # problems that belong to no dossier
    first_seen: dict[str, str] = {}
    for index, item in enumerate(items):
        if isinstance(item, InputProblem):
            problems.append((index, Problem(item.source, item.reason, item.dossier_id)))
            if item.dossier_id is None:
                loose.add(index)
            else:
                by_dossier.setdefault(item.dossier_id, []).append(index)
                bad_dossiers.add(item.dossier_id)
            continue
        event = item.event
        by_dossier.setdefault(event.dossier_id, []).append(index)
        earlier = first_seen.setdefault(event.event_id, item.source)
        if earlier != item.source:
            reason = f"{event.dossier_id} seq {event.seq}: event_id {event.event_id} repeats the event at {earlier}"
            problems.append((index, Problem(item.source, reason, event.dossier_id)))
            bad_dossiers.add(event.dossier_id)
    continuations = 0
    checked = phase("checking", len(by_dossier), "dossiers") if phase is not None else None
    for dossier_id, indexes in by_dossier.items():
        if checked is not None:
            checked(1)
        if dossier_id in bad_dossiers:
            # unreadable lines already reject it: replaying the rest would only echo the hole they leave,
            # but each event's own content is still checked so every bad line is listed
            for i in indexes:
                item = items[i]
                if isinstance(item, InputEvent) and (standalone := _standalone_problem(item)) is not None:
                    problems.append((i, Problem(item.source, standalone, dossier_id)))
            continue
        events = [items[i] for i in indexes]
        found, continued = _history_problems(events, continuation)  # type: ignore[arg-type]
        continuations += continued
        if found:
            bad_dossiers.add(dossier_id)
            problems.extend((indexes[pos], Problem(events[pos].source, reason, dossier_id)) for pos, reason in found)
    problems.sort(key=lambda pair: pair[0])
    rejected_idx = loose | {i for d in bad_dossiers for i in by_dossier[d]}
    return CheckedInput(
        accepted=tuple(it for i, it in enumerate(items) if i not in rejected_idx and isinstance(it, InputEvent)),
        rejected=tuple(it for i, it in enumerate(items) if i in rejected_idx),
        problems=tuple(p for _, p in problems),
        dossiers=len(by_dossier),
        rejected_dossiers=len(bad_dossiers),
        items_read=len(items),
        continuations=continuations,
    )


def _history_problems(events: Sequence[InputEvent], continuation: bool) -> tuple[list[tuple[int, str]], int]:
    """(position in ``events``, reason) of every problem; and 1 if this is an accepted continuation."""
    history = [e.event for e in events]
    starts_late = history[0].seq > 1
    errors = check_history(history)
    if not errors:
        return [], 0
    found: list[tuple[int, str]] = []
    for pos, err in _attribute(history, errors):
        if pos == 0 and starts_late:
            if continuation and err.kind in _CONTINUATION_KINDS:
                continue
            if err.kind == "prev-hash-break":
                continue  # the seq gap says it already
            if err.kind == "seq-gap":
                found.append((pos, f"{err}{_continuation_hint(history[0].seq)}"))
                continue
        found.append((pos, str(err)))
    return found, int(starts_late and continuation and not found)


def _standalone_problem(item: InputEvent) -> str | None:
    """What is wrong with one event on its own (contract, hash), whatever its neighbours."""
    event = item.event
    try:
        validate_event(event)
    except EventValidationError as exc:
        detail = str(exc).removeprefix(f"{event.dossier_id} seq {event.seq}: ")
        return f"{event.dossier_id} seq {event.seq}: invalid {event.event_type.value} event: {detail}"
    computed = compute_hash(event)
    if computed != event.hash:
        return (
            f"{event.dossier_id} seq {event.seq}: {event.event_type.value} event content does not match its hash "
            f"(stored {event.hash.hex()[:16]}…, computed {computed.hex()[:16]}…): changed after sealing"
        )
    return None


def _continuation_hint(seq: int) -> str:
    return (
        f"; the dossier starts at seq {seq}: if its earlier events are already on the topic "
        "(e.g. an undelivered file), publish with --continuation"
    )


def _attribute(history: Sequence[object], errors: Sequence[LifecycleError]) -> list[tuple[int, LifecycleError]]:
    """Which event each problem belongs to.

    check_history reports in event order and a problem of event k depends on
    events up to k only, so the problems of the prefix ``history[:k+1]``
    beyond those of ``history[:k]`` are event k's. Only invalid dossiers pay
    for this (quadratic in the length of one history, which is short).
    """
    out: list[tuple[int, LifecycleError]] = []
    before = 0
    for k in range(len(history)):
        upto = len(check_history(history[: k + 1])) if k + 1 < len(history) else len(errors)  # type: ignore[arg-type]
        out.extend((k, err) for err in errors[before:upto])
        before = upto
        if before >= len(errors):
            break
    return out
