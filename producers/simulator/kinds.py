"""Dossier kinds: the clean default, the calibrated late one, and one injected kind per rule.

Rates are per dossier. The late kinds (``late`` and R1-R4, which are all late
dossiers) share the late rate: R1-R4 take their share of it, ``late`` is the
rest, so the on-time rate does not move when violations are switched on.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Final

from producers.simulator.clock import WD
from producers.simulator.paths import Plan
from producers.simulator.procedures import CatalogueEntry

LATE_KINDS: Final = ("R1", "R2", "R3", "R4")
INJECTED: Final = (
    *LATE_KINDS,
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "R11",
    "R12",
    "R13",
    "R14",
    "R15",
    "R16",
    "R17",
    "R18",
    "R19",
    "R20",
    "R21",
    "INTEGRITY-SEQ",
    "INTEGRITY-HASH",
)
#: Default rates: small, as in a well-run city, yet every kind shows up in a run of 100k dossiers.
DEFAULT_RATES: Final[Mapping[str, float]] = {
    **dict.fromkeys(LATE_KINDS, 0.0001),
    **dict.fromkeys(("R5", "R9", "R10", "R18", "R19"), 0.0005),
    **dict.fromkeys(("R6", "R7", "R8", "R12", "R16", "R11"), 0.0002),
    **dict.fromkeys(("R13", "R14", "R15", "R17", "R21"), 0.0001),
    "R20": 0.001,
    "INTEGRITY-SEQ": 0.00005,
    "INTEGRITY-HASH": 0.00005,
}
ALL_RATE: Final = 0.004  # --violations all: every kind at this rate
FOREIGN_DOCUMENT: Final = "GIAY-XAC-NHAN-KHAC"


def eligible(kind: str, entry: CatalogueEntry, online_capable: bool) -> bool:
    proc = entry.procedure
    long_enough = proc.time_limit_unit == "WORKING_DAYS" and proc.time_limit_value >= 7
    if kind in ("late", "R1", "R2", "R3"):
        return entry.late_ok and not proc.same_day
    if kind in ("R4", "R6", "R7", "R8"):
        return entry.supplement_ok
    if kind == "R5":
        return entry.supplement_ok and long_enough
    if kind == "R9":
        return long_enough
    if kind == "R18":
        return online_capable
    if kind in ("R10", "R12", "R13", "R15", "R16", "R17", "R21"):
        return not proc.same_day
    return True


def plan_for(kind: str, entry: CatalogueEntry, rng: random.Random, online: bool) -> tuple[Plan, str | None]:
    """The plan of a dossier of ``kind``, and the channel it forces (None: keep the drawn one)."""
    u = rng.random
    proc = entry.procedure
    plan = Plan(inter_agency=proc.inter_agency)
    force: str | None = None
    if kind == "normal":
        plan.financial = proc.clock_stops_for_financial and u() < 0.6
        plan.supplement_rounds = 1 if entry.supplement_ok and u() < 0.06 else 0
        plan.rework = u() < 0.03
        x = u()
        if online and x < 0.01:
            plan.refuse = True
        elif not proc.same_day and x < 0.014:
            plan.withdraw = True
        elif not proc.same_day and x < 0.017:
            # A stop after examination comes within the time limit: no pause may carry it past the
            # original due date, which R17(b) would rightly flag (normal dossiers are clean by construction).
            plan.stop, plan.supplement_rounds, plan.financial = True, 0, False
        return plan, None
    plan.rework = u() < 0.03
    if kind == "late" or kind in LATE_KINDS:
        plan.late_by = int((0.3 + 3.7 * u()) * WD)
        plan.apologies = {"R1": 0 if u() < 0.7 else 1, "R2": 2}.get(kind, 1)
        plan.apology_timely = kind != "R1"
        plan.apology_date_missed = kind == "R3"
        plan.supplement_rounds = 2 if kind == "R4" else 0
    elif kind in ("R5", "R6", "R7", "R8"):
        plan.supplement_rounds = 1
        plan.supplement_at_wd = 3.05 + 0.75 * u() if kind == "R5" else None
        plan.supplement_near_due = kind == "R6"
        plan.foreign_document = kind == "R7"
        plan.digitised_document = kind == "R8"
        force = "DIRECT" if kind == "R8" else None
    elif kind == "R9":
        plan.slow_transfer = True
    elif kind == "R10":
        plan.overrun_step = True
    elif kind == "R11":
        plan.return_late, plan.no_notify = (True, False) if u() < 0.5 else (False, True)
    elif kind == "R12":
        plan.backdate = rng.choice(("recorded", "earlier", "evening"))
    elif kind == "R13":
        plan.admin_override = True
    elif kind == "R14":
        plan.phantom, force = True, "DIRECT"
    elif kind == "R15":
        plan.skip_approval = True
    elif kind == "R16":
        plan.no_receipt_form = True
    elif kind == "R17":
        if online and u() < 0.5:
            plan.refuse, plan.refuse_attachments = True, 0
        else:
            plan.stop, plan.stop_reason = True, ""
    elif kind == "R18":
        plan.unreceived_wh, force = 9 + 21 * u(), "ONLINE"
    elif kind == "R19":
        plan.sync = "none" if u() < 0.5 else "last"
    elif kind == "R20":
        if proc.paper_result and u() < 0.5:
            plan.paper_result_missing = True
        else:
            plan.skip_digitise, force = True, "DIRECT"
    elif kind == "R21":
        plan.one_official = True
    return plan, force
