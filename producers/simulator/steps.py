"""The state and helpers every part of a dossier's builder shares: the cast, the plan, the segments, ``ev``.

:class:`~producers.simulator.dossier.DossierBuilder` is assembled from this
base and two parts: :class:`~producers.simulator.timing.Timing` (fitting the
segments to the due date) and :class:`~producers.simulator.closing.Closing`
(what follows the result: notification, return, rating; apologies; an admin
override).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from producers.simulator import procedures as P
from producers.simulator.clock import MINUTE, FastClock
from producers.simulator.paths import Cast, Plan, Raw, Timeline
from producers.simulator.procedures import CatalogueEntry

CV, LD, VT, TN, CD = "CASE_OFFICER", "LEADER", "CLERK", "RECEPTION_OFFICER", "APPLICANT"
P_ROLE = {
    P.STEP_REVIEW: CV,
    P.STEP_PARTNER: CV,
    P.STEP_CONSOLIDATE: CV,
    P.STEP_APPROVE: LD,
    P.STEP_ISSUE: VT,
    P.STEP_REWORK: CV,
}


class Segment:
    """A stretch of working time ending in an event; ``kind``: fixed | work | pause | over."""

    __slots__ = ("dur", "emit", "kind", "tag")

    def __init__(self, dur: int, kind: str, emit: Callable[[int], object], tag: str = "") -> None:
        self.dur, self.kind, self.emit, self.tag = dur, kind, emit, tag


class StepBuilder:
    """Plans and emits the events of one received (or refused) dossier: shared state and helpers."""

    def __init__(
        self, clock: FastClock, rng: random.Random, entry: CatalogueEntry, cast: Cast, plan: Plan, tl: Timeline
    ) -> None:
        self.clock, self.rng, self.entry, self.cast, self.plan, self.tl = clock, rng, entry, cast, plan, tl
        self.proc = entry.procedure
        self.budget = entry.budgets
        self.u = rng.random
        self.instant = clock.instant
        self.base = tl.base
        self.segments: list[Segment] = []
        self.step_start = 0
        self.due0 = 0
        self.pdue = 0
        self.pr = 0
        self.done_pos: int | None = None
        self.status = 2
        self.overrun_tag = ""
        self.request_pos = 0

    # -- helpers -------------------------------------------------------------------------------

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.u()

    def seg(self, dur: int, kind: str, emit: Callable[[int], object], tag: str = "") -> None:
        self.segments.append(Segment(dur, kind, emit, tag))

    def ev(self, event_type: str, status: int, p: int, actor: str, role: str, unit: str = "", **f: Any) -> Raw:
        """Add an event at position ``p`` (:meth:`Timeline.add`, inlined: this is the hot path)."""
        self.status = status
        e = {
            **self.base,
            "event_type": event_type,
            "status": status,
            "occurred_at": self.instant(p),
            "unit_code": unit or self.cast.unit,
            "actor_id": actor,
            "actor_role": role,
        }
        for k, v in f.items():
            if v is not None:
                e[k] = v
        self.tl.events.append(e)
        return e

    def handover(
        self, event_type: str, p: int, actor: str, role: str, step: str, to: str, unit: str = "", **f: Any
    ) -> Raw:
        to_unit = f.pop("to_unit", unit or self.cast.unit)
        budget = self.budget[step]
        self.step_start = p
        e = self.ev(event_type, 4, p, actor, role, unit, **f)
        e["to_unit"] = to_unit
        e["to_actor"] = to
        e["to_role"] = P_ROLE[step]
        e["step_code"] = step
        e["step_budget_minutes"] = budget
        e["step_due_at"] = self.instant(p + budget * MINUTE)
        return e

    def _cd(self) -> str:
        return self.tl.applicant


__all__ = ["CD", "CV", "LD", "P_ROLE", "TN", "VT", "Segment", "StepBuilder"]
