"""What follows the result (notification, return, collection, rating), apologies, and admin overrides."""

from __future__ import annotations

from collections.abc import Callable

from producers.simulator.clock import HOUR, MINUTE, WD
from producers.simulator.paths import APOLOGY_FORM, NOTIFY_ACTOR, Raw
from producers.simulator.steps import CD, CV, TN, StepBuilder


class Closing(StepBuilder):
    """The events after the result is issued, and the late dossier's apologies."""

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


__all__ = ["Closing"]
