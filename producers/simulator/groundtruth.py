"""The rulebook's predicates over one dossier's raw events: the manifest's source of truth.

Every injected dossier (and every calibrated late one) is judged here after
its history is final, so the manifest lists every breach the data holds, not
only the one that was meant: a late dossier also has a step over its budget
(R10), a phantom dossier also lacks an approval (R15). Clean dossiers are clean
by construction and are not judged here; the test suite's independent checker
judges every dossier of a run and must agree with the manifest exactly.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from typing import Any, Final

from producers.simulator.clock import HOUR, MINUTE, WD, FastClock
from producers.simulator.fastcodec import CANONICAL
from schemas.catalogue import Procedure
from schemas.rulebook import RULE_IDS
from schemas.textnorm import is_blank

Raw = dict[str, Any]
HANDOVERS: Final = frozenset({"DossierTransferred", "StepHandedOver", "StepReturned", "InterAgencyTransferred"})
CLOSERS: Final = HANDOVERS | {
    "ResultApproved",
    "ResultIssued",
    "SupplementRequested",
    "FinancialObligationRequested",
    "WithdrawalRequested",
    "ProcessingStopped",
    "ReceptionRefused",
}
DOC_REQUESTS: Final = frozenset({"SupplementRequested", "ReceptionGuidanceIssued"})
PROCESSING: Final = frozenset(
    {"StepHandedOver", "StepReturned", "InterAgencyTransferred", "SupplementRequested", "FinancialObligationRequested"}
)
_ZERO: Final = bytes(32)


class Judge:
    """Evaluates the rules with the given parameters (defaults: the rulebook's)."""

    def __init__(self, clock: FastClock, procedures: Mapping[str, Procedure], params: Mapping[str, Any]) -> None:
        self.clock = clock
        self.procedures = procedures
        self.p = dict(params)

    def findings(self, events: list[Raw]) -> dict[str, list[int]]:
        """rule id -> sorted evidence seqs, for every rule the dossier breaches."""
        ctx = _Context(self.clock, events)
        found: dict[str, set[int]] = {}
        for rule_id in RULE_IDS:
            method = getattr(self, "r_" + rule_id.replace("-", "_").lower())
            evidence = method(ctx)
            if evidence:
                found[rule_id] = evidence
        return {k: sorted(v) for k, v in found.items()}

    def on_time(self, events: list[Raw]) -> bool | None:
        """Index 766 indicator 2.1 (rulebook.ON_TIME_2_1); None when the dossier was never received."""
        ctx = _Context(self.clock, events)
        if ctx.R is None:
            return None
        if len(ctx.supplements) > 1:
            return False
        if ctx.E is not None:
            return not ctx.late
        return True  # the simulator leaves no dossier in progress

    # -- rules -----------------------------------------------------------------------------------

    def r_r1(self, c: _Context) -> set[int]:
        if not c.late:
            return set()
        assert c.R is not None and c.E is not None and c.due0 is not None  # what late is computed from
        lead = int(self.p["apology_lead_wd"]) * WD
        for a in c.of("ApologyIssued"):
            if a["seq"] > c.R["seq"] and c.wt(a["occurred_at"], c.due0) >= lead:
                return set()
        return {c.R["seq"], c.E["seq"]}

    def r_r2(self, c: _Context) -> set[int]:
        apologies = c.of("ApologyIssued")
        dates = {a.get("new_due_at") for a in apologies}
        if len(apologies) > int(self.p["max_apologies"]) or len(dates) > 1:
            return {a["seq"] for a in apologies}
        return set()

    def r_r3(self, c: _Context) -> set[int]:
        apologies = c.of("ApologyIssued")
        if not apologies or c.E is None:
            return set()
        last = apologies[-1]
        if c.wt(last["new_due_at"], c.E["occurred_at"]) - c.pause_wt > 0:
            return {last["seq"], c.E["seq"]}
        return set()

    def r_r4(self, c: _Context) -> set[int]:
        if len(c.supplements) > int(self.p["max_supplement_requests"]):
            return {s["seq"] for s in c.supplements}
        return set()

    def r_r5(self, c: _Context) -> set[int]:
        if not c.supplements:
            return set()
        first = c.supplements[0]
        assert c.R is not None  # supplements are those after R
        if c.wt(c.R["occurred_at"], first["occurred_at"]) > int(self.p["supplement_deadline_wd"]) * WD:
            return {c.R["seq"], first["seq"]}
        return set()

    def r_r6(self, c: _Context) -> set[int]:
        if c.due0 is None:
            return set()
        limit = int(self.p["last_day_minutes"]) * MINUTE
        return {s["seq"] for s in c.supplements if c.wt(s["occurred_at"], c.due0) < limit}

    def r_r7(self, c: _Context) -> set[int]:
        proc = self.procedures.get(c.procedure_code)
        if proc is None:
            return set()
        allowed = set(proc.component_codes)
        return {
            x["seq"]
            for x in c.events
            if x["event_type"] in DOC_REQUESTS and set(x.get("requested_documents", ())) - allowed
        }

    def r_r8(self, c: _Context) -> set[int]:
        out: set[int] = set()
        for x in c.events:
            if x["event_type"] not in DOC_REQUESTS:
                continue
            wanted = set(x.get("requested_documents", ()))
            for g in c.of("DossierDigitized"):
                if g["seq"] < x["seq"] and wanted & set(g.get("documents", ())):
                    out |= {x["seq"], g["seq"]}
        return out

    def r_r9(self, c: _Context) -> set[int]:
        if c.R is None:
            return set()
        x = next((e for e in c.events if e["event_type"] == "DossierTransferred" and e["seq"] > c.R["seq"]), None)
        if x is None:
            return set()
        clock = self.clock
        hh, mm = (int(v) for v in str(self.p["transfer_cutoff"]).split(":"))
        received = c.R["occurred_at"]
        day = clock.local_day(received)
        tod = received - clock.day_at(day, 0)
        if clock.is_working_day(day) and tod <= (hh * 60 + mm) * MINUTE:
            limit = clock.day_end(day)
        else:
            limit = clock.day_at(clock.next_working_day(day), 7 * HOUR + int(self.p["transfer_grace_minutes"]) * MINUTE)
        return {c.R["seq"], x["seq"]} if x["occurred_at"] > limit else set()

    def r_r10(self, c: _Context) -> set[int]:
        out: set[int] = set()
        events = c.events
        for i, o in enumerate(events):
            budget = o.get("step_budget_minutes")
            if budget is None:
                continue
            closer = next((e for e in events[i + 1 :] if e["event_type"] in CLOSERS), None)
            if closer is not None and c.wt(o["occurred_at"], closer["occurred_at"]) > budget * MINUTE:
                out |= {o["seq"], closer["seq"]}
        return out

    def r_r11(self, c: _Context) -> set[int]:
        out: set[int] = set()
        if c.D is None:
            return out
        done = c.D["occurred_at"]
        if c.T is not None and c.due0 is not None and done <= c.due0 < c.T["occurred_at"]:
            out |= {c.D["seq"], c.T["seq"]}
        limit = int(self.p["notify_max_wd"]) * WD
        notified = any(
            e["event_type"] in ("ApplicantNotified", "ResultReturned")
            and e["seq"] > c.D["seq"]
            and c.wt(done, e["occurred_at"]) <= limit
            for e in c.events
        )
        if not notified:
            out.add(c.D["seq"])
        return out  # (b) needs as_of; every simulated result is returned

    def r_r12(self, c: _Context) -> set[int]:
        out: set[int] = set()
        threshold = int(self.p["backdate_threshold_minutes"]) * MINUTE
        prev = None
        for e in c.events:
            if e["recorded_at"] - e["occurred_at"] > threshold:
                out.add(e["seq"])
            if prev is not None and e["occurred_at"] < prev["occurred_at"]:
                out |= {prev["seq"], e["seq"]}
            prev = e
        if c.E is not None:
            assert c.R is not None  # E is defined from R
            if c.due0 is not None and c.E["occurred_at"] == c.due0:
                out |= {c.R["seq"], c.E["seq"]}
            if c.E["actor_role"] not in ("SYSTEM", "APPLICANT") and not self.clock.is_working_instant(
                c.E["occurred_at"]
            ):
                out.add(c.E["seq"])
        return out

    def r_r13(self, c: _Context) -> set[int]:
        return {e["seq"] for e in c.events if e["event_type"] in ("AdminOverride", "ResultRecalled")}

    def r_r14(self, c: _Context) -> set[int]:
        r, d = c.R, c.D
        if r is None or d is None or r["actor_id"] != d["actor_id"] or r.get("n_attachments", 0) != 0:
            return set()
        if any(r["seq"] < e["seq"] < d["seq"] and e["event_type"] in HANDOVERS for e in c.events):
            return set()
        if c.wt(r["occurred_at"], d["occurred_at"]) < int(self.p["phantom_max_minutes"]) * MINUTE:
            return {r["seq"], d["seq"]}
        return set()

    def r_r15(self, c: _Context) -> set[int]:
        r, d = c.R, c.D
        if r is None or d is None or d["seq"] < r["seq"]:
            return set()
        if any(e["event_type"] == "ResultApproved" and r["seq"] < e["seq"] < d["seq"] for e in c.events):
            return set()
        return {r["seq"], d["seq"]}

    def r_r16(self, c: _Context) -> set[int]:
        proc = self.procedures.get(c.procedure_code)
        if c.R is None or proc is None or proc.same_day:
            return set()
        return {c.R["seq"]} if c.R.get("form_code") is None or c.R.get("due_at") is None else set()

    def r_r17(self, c: _Context) -> set[int]:
        out: set[int] = set()
        for x in c.events:
            kind = x["event_type"]
            if kind in ("ReceptionRefused", "ProcessingStopped"):
                reason = x.get("reason")
                if is_blank(reason) or x.get("n_attachments", 0) == 0:
                    out.add(x["seq"])
            if kind == "ProcessingStopped" and c.due0 is not None and x["occurred_at"] > c.due0:
                asked = any(
                    e["event_type"] == "WithdrawalRequested" and e["actor_role"] == "APPLICANT" and e["seq"] < x["seq"]
                    for e in c.events
                )
                if not asked:
                    out.add(x["seq"])
        return out

    def r_r18(self, c: _Context) -> set[int]:
        s = c.events[0]
        if s["event_type"] != "DossierSubmitted" or s["status"] != 1:
            return set()
        left = next((e for e in c.events if e["status"] != 1), None)
        if left is None:
            return set()
        if c.wt(s["occurred_at"], left["occurred_at"]) > int(self.p["unreceived_max_wh"]) * 60 * MINUTE:
            return {s["seq"], left["seq"]}
        return set()

    def r_r19(self, c: _Context) -> set[int]:
        out: set[int] = set()
        limit = int(self.p["sync_max_hours"]) * HOUR
        syncs = c.of("SyncedToNational")
        prev_status = None
        for x in c.events:
            changed = x["status"] != prev_status
            prev_status = x["status"]
            if not changed or x["event_type"] == "SyncedToNational":
                continue
            if not any(
                y["seq"] > x["seq"] and y["ref_seq"] >= x["seq"] and y["occurred_at"] - x["occurred_at"] <= limit
                for y in syncs
            ):
                out.add(x["seq"])
        return out

    def r_r20(self, c: _Context) -> set[int]:
        out: set[int] = set()
        if c.R is not None and c.R["channel"] in ("DIRECT", "POSTAL"):
            if not any(e["event_type"] == "DossierDigitized" and e["seq"] > c.R["seq"] for e in c.events):
                out.add(c.R["seq"])
        proc = self.procedures.get(c.procedure_code)
        issued = c.of("ResultIssued")
        if proc is not None and proc.paper_result and issued and issued[0]["result_electronic"] is False:
            i = issued[0]
            if not any(
                e["event_type"] == "DossierDigitized" and e["seq"] > i["seq"] and e.get("result_electronic") is True
                for e in c.events
            ):
                out.add(i["seq"])
        return out

    def r_r21(self, c: _Context) -> set[int]:
        if c.R is None:
            return set()
        a = c.R["actor_id"]
        p = next(
            (e for e in c.events if e["event_type"] in PROCESSING and e["seq"] > c.R["seq"] and e["actor_id"] == a),
            None,
        )
        q = next((e for e in c.events if e["event_type"] == "ResultApproved" and e["actor_id"] == a), None)
        return {c.R["seq"], p["seq"], q["seq"]} if p is not None and q is not None else set()

    def r_integrity_seq(self, c: _Context) -> set[int]:
        seqs = [e["seq"] for e in c.events]
        out = {s for s in seqs if seqs.count(s) > 1}
        distinct = sorted(set(seqs))
        if distinct[0] > 1:
            out.add(distinct[0])
        for a, b in itertools.pairwise(distinct):
            if b > a + 1:
                out |= {a, b}
        return out

    def r_integrity_hash(self, c: _Context) -> set[int]:
        out: set[int] = set()
        by_seq = {e["seq"]: e for e in c.events}
        for e in c.events:
            if hashlib.sha256(CANONICAL[e["event_type"]](e)).digest() != e["hash"]:
                out.add(e["seq"])
            if e["seq"] == 1:
                if e["prev_hash"] != _ZERO:
                    out.add(1)
            elif e["seq"] - 1 in by_seq and by_seq[e["seq"] - 1]["hash"] != e["prev_hash"]:
                out.add(e["seq"])
        return out


class _Context:
    """The rulebook's derived terms (R, D, T, E, pauses, late) for one dossier."""

    def __init__(self, clock: FastClock, events: list[Raw]) -> None:
        self.events = events
        self.wt = clock.wt
        self.procedure_code = events[0]["procedure_code"]
        self.R = next((e for e in events if e["event_type"] == "DossierReceived"), None)
        self.due0 = self.R.get("due_at") if self.R is not None else None
        self.D = next((e for e in events if e["status"] == 9), None)
        self.T = next((e for e in events if e["status"] == 10), None)
        self.E = None
        if self.R is not None:
            self.E = (
                self.D
                or self.T
                or next((e for e in events if e["seq"] > self.R["seq"] and e["status"] in (3, 7, 8)), None)
            )
        r_seq = self.R["seq"] if self.R is not None else None
        self.supplements = [
            e for e in events if e["event_type"] == "SupplementRequested" and r_seq is not None and e["seq"] > r_seq
        ]
        self.pause_wt = self._pauses()
        self.late = (
            self.E is not None
            and self.due0 is not None
            and self.wt(self.due0, self.E["occurred_at"]) - self.pause_wt > 0
        )

    def of(self, event_type: str) -> list[Raw]:
        return [e for e in self.events if e["event_type"] == event_type]

    def _pauses(self) -> int:
        total = 0
        open_at: int | None = None
        open_status = 0
        for e in self.events:
            if open_at is not None and e["status"] != open_status:
                total += self.wt(open_at, e["occurred_at"])
                open_at = None
            if e["event_type"] == "SupplementRequested" and e["status"] == 5:
                open_at, open_status = e["occurred_at"], 5
            elif e["event_type"] == "FinancialObligationRequested" and e.get("clock_stopped") and e["status"] == 6:
                open_at, open_status = e["occurred_at"], 6
        return total
