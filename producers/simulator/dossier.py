"""Build one dossier's raw events from a :class:`~producers.simulator.paths.Plan`."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from producers.simulator import procedures as P
from producers.simulator.clock import DAY, HOUR, MINUTE, US, WD, FastClock
from producers.simulator.paths import (
    APOLOGY_FORM,
    NOTIFY_ACTOR,
    RECEIPT_FORM,
    REFUSAL_FORM,
    SUPPLEMENT_FORM,
    Cast,
    Plan,
    Raw,
    Timeline,
    handover_fields,
    work,
)
from producers.simulator.procedures import CatalogueEntry

CV, LD, VT, TN, CD = "CASE_OFFICER", "LEADER", "CLERK", "RECEPTION_OFFICER", "APPLICANT"


class Segment:
    """A stretch of working time ending in an event; ``kind``: fixed | work | pause | over."""

    __slots__ = ("dur", "emit", "kind", "tag")

    def __init__(self, dur: int, kind: str, emit: Callable[[int], None], tag: str = "") -> None:
        self.dur, self.kind, self.emit, self.tag = dur, kind, emit, tag


class DossierBuilder:
    """Plans and emits the events of one received (or refused) dossier."""

    def __init__(
        self, clock: FastClock, rng: random.Random, entry: CatalogueEntry, cast: Cast, plan: Plan, tl: Timeline
    ) -> None:
        self.clock, self.rng, self.entry, self.cast, self.plan, self.tl = clock, rng, entry, cast, plan, tl
        self.proc = entry.procedure
        self.u = rng.random
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

    def seg(self, dur: int, kind: str, emit: Callable[[int], None], tag: str = "") -> None:
        self.segments.append(Segment(dur, kind, emit, tag))

    def ev(self, event_type: str, status: int, p: int, actor: str, role: str, unit: str = "", **f: Any) -> Raw:
        self.status = status
        return self.tl.add(event_type, status, self.clock.instant(p), actor, role, unit or self.cast.unit, **f)

    def handover(self, event_type: str, p: int, actor: str, role: str, step: str, to: str, unit: str = "", **f: Any):
        to_unit = f.pop("to_unit", unit or self.cast.unit)
        fields = handover_fields(self.clock, p, self.proc.budget(step), step, to_unit, to, P_ROLE[step])
        fields.update(f)
        self.step_start = p
        return self.ev(event_type, 4, p, actor, role, unit, **fields)

    # -- reception -----------------------------------------------------------------------------

    def receive(self, pr: int, due0: int, docs: list[str], convention: str) -> None:
        self.pr, self.due0, self.pdue = pr, due0, self.clock.pos(due0)
        proc, cast, plan = self.proc, self.cast, self.plan
        extra: dict[str, Any] = {}
        if proc.same_day and not plan.phantom:
            extra = handover_fields(self.clock, pr, proc.budget(P.STEP_APPROVE), P.STEP_APPROVE, cast.unit, cast.ld, LD)
        self.ev(
            "DossierReceived",
            2,
            pr,
            cast.tn,
            TN,
            due_at=due0,
            form_code=None if proc.same_day or plan.no_receipt_form else RECEIPT_FORM,
            n_attachments=0 if plan.phantom else len(docs),
            documents=None if plan.phantom else docs,
            time_limit_value=proc.time_limit_value,
            time_limit_unit=proc.time_limit_unit,
            deadline_convention=convention,
            service_level=proc.service_level,
            **extra,
        )

    def counter_extras(self, docs: list[str], paper: bool, fee_at_counter: bool) -> None:
        p = self.pr
        if fee_at_counter:
            method = "CASH" if self.u() < 0.6 else "BANK_TRANSFER"
            self.ev("FeePaid", 2, p + int(self.uniform(1, 2) * MINUTE), "cd", CD, amount_vnd=self.proc.fee_vnd)
            self.tl.events[-1]["actor_id"] = self.tl.base["_applicant"]
            self.tl.events[-1]["payment_channel"] = method
        if paper and not self.plan.skip_digitise and not self.plan.phantom:
            self.ev("DossierDigitized", 2, p + int(self.uniform(2.5, 4) * MINUTE), self.cast.tn, TN, documents=docs)

    # -- processing ----------------------------------------------------------------------------

    def plan_processing(self, requested: list[list[str]]) -> None:
        """Queue the segments from transfer to result issue (or withdrawal/stop)."""
        plan, cast, proc = self.plan, self.cast, self.proc
        g0 = int(self.uniform(1.6, 3) * WD) if plan.slow_transfer else int(self.uniform(5, 45) * MINUTE)
        self.seg(g0, "fixed", lambda p: self.handover("DossierTransferred", p, cast.tn, TN, P.STEP_REVIEW, cast.cv))
        f = self.uniform(0.2, 0.8)
        j = self.u
        d_th = work(proc.budget(P.STEP_REVIEW), f, 0.7 + 0.3 * j())
        if plan.withdraw:
            self.seg(d_th // 2, "work", lambda p: self.ev("WithdrawalRequested", 7, p, self._cd(), CD, reason="Rút"))
            self.seg(int(self.uniform(30, 240) * MINUTE), "fixed", self._stopped_by_request)
            return
        rounds = plan.supplement_rounds
        parts = [d_th] if not rounds else self._split(d_th, rounds + 1)
        if rounds and plan.supplement_at_wd is not None:
            parts[0] = int(plan.supplement_at_wd * WD) - g0
        elif rounds and parts[0] > 2 * WD:  # a normal request comes well within R5's 3 working days
            parts[-1] += parts[0] - 2 * WD
            parts[0] = 2 * WD
        for k in range(rounds):
            self._supplement_round(parts[k], requested[k], first=k == 0)
        self.seg(parts[-1], "work", lambda p: None, tag="TH")
        self.segments[-1].emit = self._after_review
        if proc.inter_agency and plan.inter_agency:
            self.seg(work(proc.budget(P.STEP_PARTNER), f, 0.7 + 0.3 * j()), "work", self._partner_back, tag="LT")
            self.seg(work(proc.budget(P.STEP_CONSOLIDATE), f, 0.7 + 0.3 * j()), "work", self._to_leader_or_fin)
        if plan.financial:
            self.seg(int(self.uniform(10, 120) * MINUTE), "fixed", self._fin_fulfilled)
            self.seg(int(self.uniform(5, 30) * MINUTE), "fixed", self._to_leader)
        if plan.stop:
            self.seg(work(proc.budget(P.STEP_APPROVE), f, 0.5), "work", self._stop)
            return
        if plan.rework and not plan.skip_approval:
            self.seg(work(proc.budget(P.STEP_APPROVE), f, 0.5), "work", self._return_for_rework)
            self.seg(work(proc.budget(P.STEP_REWORK), f, 0.7 + 0.3 * j()), "work", self._to_leader)
        if not plan.skip_approval:
            self.seg(work(proc.budget(P.STEP_APPROVE), f, 0.7 + 0.3 * j()), "work", self._approve)
        self.seg(work(proc.budget(P.STEP_ISSUE), f, 0.7 + 0.3 * j()), "work", self._issue)

    def _split(self, total: int, n: int) -> list[int]:
        cuts = sorted(self.uniform(0.15, 0.85) for _ in range(n - 1))
        bounds = [0.0, *cuts, 1.0]
        return [max(20 * US, int(total * (b - a))) for a, b in itertools.pairwise(bounds)]

    def _cd(self) -> str:
        return str(self.tl.base["_applicant"])

    def _supplement_round(self, d_part: int, requested: list[str], *, first: bool) -> None:
        cast = self.cast

        def request(p: int) -> None:
            self.request_pos = p
            self.ev(
                "SupplementRequested",
                5,
                p,
                cast.cv,
                CV,
                requested_documents=requested,
                reason="Hồ sơ chưa đầy đủ thành phần theo quy định",
                form_code=SUPPLEMENT_FORM,
            )

        def received(p: int) -> None:
            self.ev("SupplementReceived", 4, p, cast.tn, TN, documents=requested)

        def back(p: int) -> None:
            used = self.request_pos - self.step_start
            self.handover("StepHandedOver", p, cast.tn, TN, P.STEP_REVIEW, cast.cv)
            remaining = max(1, -(-(self.proc.budget(P.STEP_REVIEW) * MINUTE - used) // MINUTE))
            self.tl.events[-1]["step_budget_minutes"] = remaining
            self.tl.events[-1]["step_due_at"] = self.clock.instant(p + remaining * MINUTE)

        kind = "forced" if first and self.plan.supplement_at_wd is not None else "work"
        self.seg(d_part, kind, request, tag="SR1" if first else "SR")
        self.seg(int(self.uniform(0.3, 4) * WD), "pause", received)
        self.seg(int(self.uniform(5, 15) * MINUTE), "fixed", back)

    def _after_review(self, p: int) -> None:
        if self.proc.inter_agency and self.plan.inter_agency:
            self.handover(
                "InterAgencyTransferred",
                p,
                self.cast.cv,
                CV,
                P.STEP_PARTNER,
                self.cast.partner_cv,
                to_unit=self.cast.partner_unit,
            )
        else:
            self._to_leader_or_fin(p)

    def _partner_back(self, p: int) -> None:
        c = self.cast
        self.handover("InterAgencyTransferred", p, c.partner_cv, CV, P.STEP_CONSOLIDATE, c.cv, unit=c.partner_unit)
        self.tl.events[-1]["to_unit"] = c.unit

    def _to_leader_or_fin(self, p: int) -> None:
        if self.plan.financial:
            self.ev(
                "FinancialObligationRequested",
                6,
                p,
                self.cast.cv,
                CV,
                amount_vnd=int(self.uniform(1, 60)) * 1_000_000,
                clock_stopped=self.proc.clock_stops_for_financial,
                reason="Thông báo nộp nghĩa vụ tài chính (thuế, lệ phí trước bạ)",
            )
        else:
            self._to_leader(p)

    def _fin_fulfilled(self, p: int) -> None:
        amount = next(e["amount_vnd"] for e in reversed(self.tl.events) if e["event_type"].startswith("Financial"))
        self.ev("FinancialObligationFulfilled", 4, p, self._cd(), CD, amount_vnd=amount, payment_channel="CASH")

    def _to_leader(self, p: int) -> None:
        c = self.cast
        if self.plan.skip_approval:
            self.handover("StepHandedOver", p, c.cv, CV, P.STEP_ISSUE, c.vt)
        else:
            self.handover("StepHandedOver", p, c.cv, CV, P.STEP_APPROVE, c.ld)

    def _return_for_rework(self, p: int) -> None:
        c = self.cast
        self.handover("StepReturned", p, c.ld, LD, P.STEP_REWORK, c.cv, reason="Đề nghị thẩm định lại")

    def _approve(self, p: int) -> None:
        c = self.cast  # the contract gives ResultApproved no step budget: the clerk's step is not timed
        fields = {"to_unit": c.unit, "to_actor": c.vt, "to_role": VT, "step_code": P.STEP_ISSUE}
        self.ev("ResultApproved", self.status if self.status == 2 else 4, p, c.ld, LD, **fields)

    def _issue(self, p: int) -> None:
        self.done_pos = p
        self.ev(
            "ResultIssued",
            9,
            p,
            self.cast.tn if self.plan.phantom else self.cast.vt,
            TN if self.plan.phantom else VT,
            result_ref=f"{self.tl.base['dossier_id']}/KQ",
            result_electronic=not self.plan.paper_result_missing,
        )

    def _stop(self, p: int) -> None:
        self.ev("ProcessingStopped", 8, p, self.cast.ld, LD, reason=self.plan.stop_reason, n_attachments=1)

    def _stopped_by_request(self, p: int) -> None:
        self.ev("ProcessingStopped", 8, p, self.cast.ld, LD, reason="Công dân rút hồ sơ", n_attachments=1)

    # -- same day and phantom ------------------------------------------------------------------

    def plan_same_day(self) -> None:
        f = self.uniform(0.2, 0.8)
        if self.plan.phantom:
            self.seg(int(self.uniform(2, 12) * MINUTE), "fixed", self._issue)
            return
        self.seg(max(int(5 * MINUTE), work(self.proc.budget(P.STEP_APPROVE), f, 1.0)), "work", self._approve)
        self.seg(work(self.proc.budget(P.STEP_ISSUE), f, 1.0), "work", self._issue)

    # -- timing --------------------------------------------------------------------------------

    def fit(self) -> None:
        """Scale work so an on-time dossier ends with a margin; make a late one overrun one step."""
        segs = self.segments
        avail = self.pdue - self.pr - max(10 * MINUTE, (self.pdue - self.pr) // 30)
        fixed = sum(s.dur for s in segs if s.kind in ("fixed", "forced"))
        if self.plan.supplement_near_due:
            self._fit_near_due(avail)
            return
        flexible = sum(s.dur for s in segs if s.kind == "work")
        if flexible and fixed + flexible > avail:
            scale = max(0.0, (avail - fixed) / flexible)
            for s in segs:
                if s.kind == "work":
                    s.dur = max(20 * US, int(s.dur * scale))
        if self.plan.late_by:
            self._overrun()
        elif self.plan.overrun_step:
            self._overrun_on_time(avail)

    def _fit_near_due(self, avail: int) -> None:
        segs = self.segments
        i = next(k for k, s in enumerate(segs) if s.tag == "SR1")
        target = self.pdue - int(self.uniform(60, 420) * MINUTE)
        before = sum(s.dur for s in segs[:i])
        segs[i].dur = target - self.pr - before
        segs[i].kind = "forced"
        after = [s for s in segs[i + 1 :] if s.kind != "pause"]
        room = self.pdue - target - max(10 * MINUTE, (self.pdue - target) // 10)
        total = sum(s.dur for s in after)
        if total > room:
            for s in after:
                s.dur = max(20 * US, int(s.dur * room / total))

    def _overrun(self) -> None:
        segs = self.segments
        tag = "LT" if any(s.tag == "LT" for s in segs) and self.u() < 0.4 else "TH"
        k = next(i for i, s in enumerate(segs) if s.tag == tag)
        total = sum(s.dur for s in segs)
        pauses = sum(s.dur for s in segs if s.kind == "pause")
        target = self.pdue + pauses + self.plan.late_by - self.pr
        segs[k].dur += target - total
        segs[k].kind = "over"
        self.overrun_tag = tag

    def _overrun_on_time(self, avail: int) -> None:
        segs = self.segments
        candidates = [s for s in segs if s.kind == "work"]
        s = self.rng.choice(candidates)
        s.dur = s.dur + int(self.uniform(0.15, 0.6) * s.dur) + 2 * MINUTE
        s.kind = "over"
        total = sum(x.dur for x in segs if x.kind != "pause")
        if total > avail:  # give the time back from the other work
            others = [x for x in segs if x.kind == "work"]
            spare = sum(x.dur for x in others)
            excess = total - avail
            if spare <= excess:
                s.dur -= excess - spare + len(others) * 20 * US
            for x in others:
                x.dur = max(20 * US, x.dur - excess * x.dur // max(1, spare))

    def emit_all(self, start: int) -> int:
        p = start
        for s in self.segments:
            p += max(1, s.dur)
            s.emit(p)
        return p

    # -- after the result ---------------------------------------------------------------------

    def after_done(self, channel: str, paper: bool) -> None:
        if self.done_pos is None:
            return
        plan, u = self.plan, self.uniform
        pd = self.done_pos
        if plan.backdate == "evening":
            pd = self._evening_issue(pd)
        gap = self.pdue - pd if pd < self.pdue else 2 * WD
        r = int(u(0.1, 0.9) * min(gap, 2 * WD)) + 1
        if plan.return_late and pd < self.pdue:
            r = self.pdue - pd + int(u(0.2, 2) * WD)
        if plan.no_notify:
            r = max(r, int(u(1.2, 2) * WD))
        else:
            n = max(1, int(u(0.05, 0.5) * r))
            ret = "ONLINE" if channel == "ONLINE" else "DIRECT"
            self.ev("ApplicantNotified", 9, pd + n, NOTIFY_ACTOR, "SYSTEM", return_channel=ret, reason="Có kết quả")
        ret_channel = "ONLINE" if channel == "ONLINE" and not paper else ("POSTAL" if channel == "POSTAL" else "DIRECT")
        self.ev("ResultReturned", 10, pd + r, self.cast.tn, TN, return_channel=ret_channel)
        extra = pd + r + int(u(1, 30) * MINUTE)
        if ret_channel == "DIRECT" and self.u() < 0.4:
            self.ev("ResultCollected", 10, extra, self._cd(), CD)
        if self.u() < 0.25:
            rating = 5 if self.u() < 0.8 else int(u(1, 5))
            self.ev("CitizenRated", 10, extra + int(u(5, 240) * MINUTE), self._cd(), CD, rating=rating)

    def _evening_issue(self, pd: int) -> int:
        """Move ResultIssued to the evening of its day; later events start the next working day."""
        issued = next(e for e in reversed(self.tl.events) if e["event_type"] == "ResultIssued")
        day = self.clock.local_day(issued["occurred_at"])
        evening = self.clock.day_at(day, 17 * HOUR + int(self.uniform(0.5, 4) * HOUR))
        if self.pdue - self.clock.pos(evening) < WD:  # would end late: back-date by recording instead
            self.plan.backdate = "recorded"
            return pd
        issued["occurred_at"] = evening
        return self.clock.pos(evening)

    # -- apologies -----------------------------------------------------------------------------

    def apologise(self) -> None:
        plan = self.plan
        if not plan.apologies or self.done_pos is None:
            return
        first_handover = next(e for e in self.tl.events if e["event_type"] == "DossierTransferred")
        lo = self.clock.pos(first_handover["occurred_at"]) + MINUTE
        hi = min(self.pdue - WD - MINUTE, self.done_pos - MINUTE)
        done = self.done_pos
        if not plan.apology_timely:
            lo, hi = self.pdue - WD + MINUTE, done - MINUTE
        positions = sorted(int(self.uniform(lo, hi)) for _ in range(plan.apologies))
        for k, a in enumerate(positions):
            last = k == len(positions) - 1
            if plan.apology_date_missed or not last:
                new_due = self.clock.instant(self.pdue + int(self.uniform(0.1, 0.6) * (done - self.pdue)))
            else:
                new_due = self.clock.instant(done + int(self.uniform(0.5, 2) * WD))
            self._apology_at(a, new_due)
        self.tl.events.sort(key=_at)

    def _apology_at(self, a: int, new_due: int) -> None:
        t = self.clock.instant(a)
        before = [e for e in self.tl.events if e["occurred_at"] < t]
        status = before[-1]["status"]
        unit, actor = self.cast.unit, self.cast.cv
        if self.overrun_tag == "LT" and before[-1].get("to_unit") == self.cast.partner_unit:
            unit, actor = self.cast.partner_unit, self.cast.partner_cv
        self.tl.add(
            "ApologyIssued",
            status,
            t,
            actor,
            CV,
            unit,
            new_due_at=new_due,
            reason="Hồ sơ phức tạp, cần thêm thời gian thẩm định",
            form_code=APOLOGY_FORM,
        )

    def admin_override(self, format_ts: Callable[[int], str]) -> None:
        t0 = next(e for e in self.tl.events if e["event_type"] == "DossierTransferred")["occurred_at"]
        t1 = next(e for e in self.tl.events if e["status"] in (8, 9))["occurred_at"]
        t = t0 + int(self.uniform(0.2, 0.8) * (t1 - t0))
        status = [e for e in self.tl.events if e["occurred_at"] < t][-1]["status"]
        new_due = self.clock.instant(self.pdue + 2 * WD)
        self.tl.add(
            "AdminOverride",
            status,
            t,
            self.cast.admin,
            "ADMIN",
            self.cast.unit,
            override_field="due_at",
            override_old=format_ts(self.due0),
            override_new=format_ts(new_due),
            due_at=new_due,
            reason="Đặt lại ngày hẹn trả",
        )
        self.tl.events.sort(key=_at)


def _at(e: Raw) -> int:
    return int(e["occurred_at"])


P_ROLE = {
    P.STEP_REVIEW: CV,
    P.STEP_PARTNER: CV,
    P.STEP_CONSOLIDATE: CV,
    P.STEP_APPROVE: LD,
    P.STEP_ISSUE: VT,
    P.STEP_REWORK: CV,
}
__all__ = ["DAY", "REFUSAL_FORM", "DossierBuilder"]
