"""Fitting a dossier's segments to its due date: on time with a margin, or late by plan."""

from __future__ import annotations

from producers.simulator.clock import MINUTE, US
from producers.simulator.steps import StepBuilder


class Timing(StepBuilder):
    """Scale, stretch and emit the segments (see :meth:`fit`)."""

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


__all__ = ["Timing"]
