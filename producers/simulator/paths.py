"""One dossier's history, planned in working-time positions and emitted as raw events.

A dossier is a sequence of *segments*: a duration of working time followed by
the event that ends it. Normal dossiers are clean by construction (see
:mod:`schemas.rulebook`): every step ends within its budget, the transfer
leaves the one-stop office within NĐ 61 Đ19's limit, supplement requests come
within 3 working days and more than a working day before the due date, every
status change is synchronised within minutes, results are announced and
returned before the due date. Injected kinds (:mod:`producers.simulator.kinds`)
change one of those choices; whatever else they breach as a consequence is
found by :mod:`producers.simulator.groundtruth` and listed in the manifest too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable
from typing import Any, Final

from producers.simulator import procedures as P
from producers.simulator.canonform import CANONICAL
from producers.simulator.clock import HOUR, MINUTE, US, WD, FastClock
from schemas.events import ZERO_HASH

RECEIPT_FORM: Final = "TT01-2018:01"
SUPPLEMENT_FORM: Final = "TT01-2018:02"
REFUSAL_FORM: Final = "TT01-2018:03"
APOLOGY_FORM: Final = "TT01-2018:04"
SYNC_ACTOR: Final = "dvcqg-sync"
NOTIFY_ACTOR: Final = "he-thong-thong-bao"

Raw = dict[str, Any]
Emit = Callable[[int], None]


class Plan:
    """What to do with one dossier; kinds flip these knobs.

    A plain class with the defaults as class attributes, not a dataclass:
    one is made per dossier, and setting 32 fields costs more than the knobs
    a dossier actually turns.
    """

    supplement_rounds: int = 0
    supplement_at_wd: float | None = None  # first request, working days after reception (R5)
    supplement_near_due: bool = False  # R6
    foreign_document: bool = False  # R7
    digitised_document: bool = False  # R8
    financial: bool = False
    inter_agency: bool = False
    rework: bool = False
    withdraw: bool = False
    stop: bool = False
    stop_reason: str = "Hồ sơ không đủ điều kiện giải quyết theo quy định"
    refuse: bool = False
    refuse_attachments: int = 1
    late_by: int = 0  # working µs beyond due0 (calibrated late), 0 for on time
    apologies: int = 0  # late dossiers: apologies issued
    apology_timely: bool = True
    apology_date_missed: bool = False  # R3
    slow_transfer: bool = False  # R9
    overrun_step: bool = False  # R10 on an on-time dossier
    skip_approval: bool = False  # R15
    phantom: bool = False  # R14
    no_receipt_form: bool = False  # R16
    unreceived_wh: float = 0.0  # R18
    sync: str = "all"  # all | none | last (R19)
    skip_digitise: bool = False  # R20a
    paper_result_missing: bool = False  # R20b
    one_official: bool = False  # R21
    return_late: bool = False  # R11a
    no_notify: bool = False  # R11c
    admin_override: bool = False  # R13
    backdate: str = ""  # R12: recorded | earlier | evening

    def __init__(self, **knobs: Any) -> None:
        for name, value in knobs.items():
            if not hasattr(Plan, name):
                raise TypeError(f"Plan has no knob {name!r}")
            setattr(self, name, value)


@dataclasses.dataclass
class Cast:
    """Who handles the dossier."""

    unit: str
    tn: str
    cv: str
    ld: str
    vt: str
    admin: str
    partner_unit: str
    partner_cv: str


class Timeline:
    """Collects a dossier's events in time order; positions become instants through the clock.

    ``base`` holds the fields every event of the dossier shares (and the
    encoders' pre-encoded runs); ``unit`` and ``applicant`` are the handling
    unit and the applicant's pseudonym, for events the builder adds later.
    """

    def __init__(self, clock: FastClock, base: Raw, unit: str = "", applicant: str = "") -> None:
        self.clock = clock
        self.base = base
        self.unit = unit
        self.applicant = applicant
        self.events: list[Raw] = []

    def add(self, event_type: str, status: int, t: int, actor: str, role: str, unit: str, **fields: Any) -> Raw:
        e = {
            **self.base,
            "event_type": event_type,
            "status": status,
            "occurred_at": t,
            "unit_code": unit,
            "actor_id": actor,
            "actor_role": role,
        }
        for k, v in fields.items():
            if v is not None:
                e[k] = v
        self.events.append(e)
        return e

    def at(self, p: int) -> int:
        return self.clock.instant(p)


def handover_fields(
    clock: FastClock, p: int, budget_min: int, step: str, to_unit: str, to_actor: str, role: str
) -> Raw:
    return {
        "to_unit": to_unit,
        "to_actor": to_actor,
        "to_role": role,
        "step_code": step,
        "step_budget_minutes": budget_min,
        "step_due_at": clock.instant(p + budget_min * MINUTE),
    }


def work(budget_min: int, factor: float, jitter: float) -> int:
    """A step's duration: a share of its budget, never more, never under 20 seconds."""
    budget = budget_min * MINUTE
    return min(budget, max(20 * US, int(budget * factor * jitter)))


def sync_events(tl: Timeline, delays: list[int], mode: str) -> None:
    """Insert SyncedToNational after status changes (one sync covers every change before it)."""
    out: list[Raw] = []
    pending: int | None = None
    last_status: int | None = None
    k = 0
    for e in tl.events:
        if pending is not None and pending < e["occurred_at"]:
            out.append(_sync(tl, pending, out[-1]["status"]))
            pending = None
        out.append(e)
        if e["status"] != last_status and pending is None:
            pending = e["occurred_at"] + delays[k % len(delays)]
            k += 1
        last_status = e["status"]
    if pending is not None:
        out.append(_sync(tl, pending, out[-1]["status"]))
    if mode == "none":
        out = [e for e in out if e["event_type"] != "SyncedToNational"]
    elif mode == "last":
        for i in range(len(out) - 1, -1, -1):
            if out[i]["event_type"] == "SyncedToNational":
                del out[i]
                break
    tl.events = out


def _sync(tl: Timeline, t: int, status: int) -> Raw:
    return {
        **tl.base,
        "event_type": "SyncedToNational",
        "status": status,
        "occurred_at": t,
        "unit_code": tl.unit,
        "actor_id": SYNC_ACTOR,
        "actor_role": "SYSTEM",
    }


_ID_MASK: Final = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)
_ID_SET: Final = (0x4 << 76) | (0x8 << 60)


def event_id(bits: int) -> str:
    """A random (version 4) UUID from 128 random bits: version nibble 4, variant bits 10."""
    h = (bits & _ID_MASK | _ID_SET).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def finish(tl: Timeline, rng: random.Random, *, seal: bool = False) -> None:
    """Number the events, set ref_seq of syncs, event ids and recorded_at (0.2 to 20 s after).

    With ``seal``, also chain the hashes (:func:`~producers.simulator.canonform.seal_raw`) in the
    same pass: what a clean dossier needs, and one loop instead of two on the hot path.
    """
    bits, r = rng.getrandbits, rng.random
    sha, canon, prev = hashlib.sha256, CANONICAL, ZERO_HASH
    for seq, e in enumerate(tl.events, start=1):
        e["seq"] = seq
        e["event_id"] = event_id(bits(128))
        event_type = e["event_type"]
        if event_type == "SyncedToNational":
            e["ref_seq"] = seq - 1
        if "recorded_at" not in e:
            e["recorded_at"] = e["occurred_at"] + int((0.2 + (20 - 0.2) * r()) * US)
        if seal:
            e["prev_hash"] = prev
            prev = e["hash"] = sha(canon[event_type](e)).digest()


STEP_ROLES: Final = {
    P.STEP_REVIEW: "CASE_OFFICER",
    P.STEP_PARTNER: "CASE_OFFICER",
    P.STEP_CONSOLIDATE: "CASE_OFFICER",
    P.STEP_APPROVE: "LEADER",
    P.STEP_ISSUE: "CLERK",
    P.STEP_REWORK: "CASE_OFFICER",
}
__all__ = ["HOUR", "WD", "Cast", "Plan", "Timeline", "event_id", "finish", "handover_fields", "sync_events", "work"]
