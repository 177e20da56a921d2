"""Working-time arithmetic on integer microseconds, for the simulator's hot loop.

The same model as :class:`schemas.workingtime.WorkingCalendar` (and built from
it: same days off, make-up days and working hours), but on plain integers:
an instant is microseconds since the Unix epoch (UTC), a *position* is the
working time from the calendar's origin. Creating ``datetime`` objects costs
more than the whole event otherwise does, so the simulator plans in positions
and converts to instants once; tests check it agrees with the reference.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from schemas.workingtime import WorkingCalendar, default_calendar

US: Final = 1_000_000
MINUTE: Final = 60 * US
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
WD: Final = 480 * MINUTE  # one working day of working time
TZ_OFFSET: Final = 7 * HOUR  # Asia/Ho_Chi_Minh, fixed since 1975
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _tod(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond


class FastClock:
    """Positions and instants as integers; one per process (built in ~50 ms)."""

    def __init__(self, calendar: WorkingCalendar | None = None) -> None:
        cal = calendar or default_calendar()
        years = sorted(cal.data.years)
        first, last = date(years[0], 1, 1), date(years[-1], 12, 31)
        self.first_day = first.toordinal() - _EPOCH_ORDINAL  # local day number (days since 1970-01-01)
        n = last.toordinal() - first.toordinal() + 1
        self.flags = [cal.is_working_day(first + timedelta(days=i)) for i in range(n)]
        cum = [0]
        for flag in self.flags:
            cum.append(cum[-1] + flag)
        self.cum = cum
        self.working = [self.first_day + i for i, flag in enumerate(self.flags) if flag]
        periods = [(_tod(a), _tod(b)) for a, b in cal.hours.periods]
        if len(periods) != 2:
            raise ValueError("the simulator's clock expects two working periods a day (morning, afternoon)")
        (self.s1, self.e1), (self.s2, self.e2) = periods
        self.len1 = self.e1 - self.s1
        self.per_day = self.len1 + self.e2 - self.s2

    # -- positions ---------------------------------------------------------------------------

    def pos(self, t: int) -> int:
        local = t + TZ_OFFSET
        day, tod = divmod(local, DAY)
        i = day - self.first_day
        p = self.cum[i] * self.per_day
        if self.flags[i] and tod > self.s1:
            if tod < self.e1:
                p += tod - self.s1
            else:
                p += self.len1
                if tod > self.s2:
                    p += min(tod, self.e2) - self.s2
        return p

    def instant(self, p: int) -> int:
        """The working instant at position p (a full day's end maps to 07:00 of the next working day)."""
        k, rest = divmod(p, self.per_day)
        day = self.working[k]
        tod = self.s1 + rest if rest < self.len1 else self.s2 + rest - self.len1
        return day * DAY + tod - TZ_OFFSET

    def wt(self, a: int, b: int) -> int:
        return self.pos(b) - self.pos(a)

    # -- days --------------------------------------------------------------------------------

    def local_day(self, t: int) -> int:
        return (t + TZ_OFFSET) // DAY

    def is_working_day(self, day: int) -> bool:
        return self.flags[day - self.first_day]

    def is_working_instant(self, t: int) -> bool:
        day, tod = divmod(t + TZ_OFFSET, DAY)
        if not self.flags[day - self.first_day]:
            return False
        return self.s1 <= tod < self.e1 or self.s2 <= tod < self.e2

    def working_index(self, day: int) -> int:
        """Number of working days strictly before local day ``day``."""
        return self.cum[day - self.first_day]

    def day_at(self, day: int, tod: int) -> int:
        """The instant at local time-of-day ``tod`` (µs) on local day ``day``."""
        return day * DAY + tod - TZ_OFFSET

    def day_end(self, day: int) -> int:
        return self.day_at(day, self.e2)

    def next_working_day(self, day: int) -> int:
        """The first working day strictly after ``day``."""
        return self.working[self.cum[day - self.first_day + 1]]

    def working_day_start_pos(self, k: int) -> int:
        return k * self.per_day

    # -- deadlines ---------------------------------------------------------------------------

    def due_working_hours(self, received: int, minutes: int) -> int:
        return self.instant(self.pos(received) + minutes * MINUTE)

    def due_end_of_day(self, received: int, days: int) -> int:
        """Civil Code convention: the reception day is not counted; 17:00 of the days-th working day after it."""
        day = self.local_day(received)
        i = day - self.first_day
        k = self.cum[i] + self.flags[i] + days - 1
        return self.day_end(self.working[k])

    def same_day_due(self, received: int, cutoff_tod: int = 15 * HOUR) -> int:
        day, tod = divmod(received + TZ_OFFSET, DAY)
        if self.is_working_day(day) and tod <= cutoff_tod:
            return self.day_end(day)
        return self.day_end(self.next_working_day(day))


def to_datetime(t: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)


def from_datetime(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds
