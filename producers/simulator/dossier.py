"""Build one dossier's raw events from a :class:`~producers.simulator.paths.Plan`."""

from __future__ import annotations

import itertools
from typing import Any

from producers.simulator import procedures as P
from producers.simulator.clock import DAY, MINUTE, US, WD
from producers.simulator.closing import Closing
from producers.simulator.paths import RECEIPT_FORM, REFUSAL_FORM, SUPPLEMENT_FORM, handover_fields, work
from producers.simulator.steps import CD, CV, LD, TN, VT
from producers.simulator.timing import Timing


class DossierBuilder(Timing, Closing):
    """Plans and emits the events of one received (or refused) dossier."""

    # -- reception -----------------------------------------------------------------------------

    def receive(self, pr: int, due0: int, docs: list[str], convention: str) -> None:
        self.pr, self.due0, self.pdue = pr, due0, self.clock.pos(due0)
        proc, cast, plan = self.proc, self.cast, self.plan
        extra: dict[str, Any] = {}
        if proc.same_day and not plan.phantom:
            extra = handover_fields(self.clock, pr, self.budget[P.STEP_APPROVE], P.STEP_APPROVE, cast.unit, cast.ld, LD)
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
            self.tl.events[-1]["actor_id"] = self.tl.applicant
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
        d_th = work(self.budget[P.STEP_REVIEW], f, 0.7 + 0.3 * j())
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
            self.seg(work(self.budget[P.STEP_PARTNER], f, 0.7 + 0.3 * j()), "work", self._partner_back, tag="LT")
            self.seg(work(self.budget[P.STEP_CONSOLIDATE], f, 0.7 + 0.3 * j()), "work", self._to_leader_or_fin)
        if plan.financial:
            self.seg(int(self.uniform(10, 120) * MINUTE), "fixed", self._fin_fulfilled)
            self.seg(int(self.uniform(5, 30) * MINUTE), "fixed", self._to_leader)
        if plan.stop:
            self.seg(work(self.budget[P.STEP_APPROVE], f, 0.5), "work", self._stop)
            return
        if plan.rework and not plan.skip_approval:
            self.seg(work(self.budget[P.STEP_APPROVE], f, 0.5), "work", self._return_for_rework)
            self.seg(work(self.budget[P.STEP_REWORK], f, 0.7 + 0.3 * j()), "work", self._to_leader)
        if not plan.skip_approval:
            self.seg(work(self.budget[P.STEP_APPROVE], f, 0.7 + 0.3 * j()), "work", self._approve)
        self.seg(work(self.budget[P.STEP_ISSUE], f, 0.7 + 0.3 * j()), "work", self._issue)

    def _split(self, total: int, n: int) -> list[int]:
        cuts = sorted(self.uniform(0.15, 0.85) for _ in range(n - 1))
        bounds = [0.0, *cuts, 1.0]
        return [max(20 * US, int(total * (b - a))) for a, b in itertools.pairwise(bounds)]

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
            remaining = max(1, -(-(self.budget[P.STEP_REVIEW] * MINUTE - used) // MINUTE))
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
        self.seg(max(int(5 * MINUTE), work(self.budget[P.STEP_APPROVE], f, 1.0)), "work", self._approve)
        self.seg(work(self.budget[P.STEP_ISSUE], f, 1.0), "work", self._issue)


__all__ = ["DAY", "REFUSAL_FORM", "DossierBuilder"]
