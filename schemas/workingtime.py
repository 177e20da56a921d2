"""Working-time arithmetic for dossier deadlines, in Asia/Ho_Chi_Minh (domain.md §b).

Model: every working day has the same working periods (07:00–11:30, 13:30–17:00
by default: 8 h). A *working instant* lies inside a period (half-open, so 17:00
itself is not one). Each instant ``t`` has a *position*: the working time
elapsed from the start of the calendar to ``t``. Position is flat across nights,
lunch, weekends and holidays, so

* working time between two instants is a difference of positions (additive,
  negative when reversed);
* adding working time maps a position back to the unique working instant that
  has it. A deadline that uses up a day exactly therefore lands on the start of
  the next working period (07:00 + 1 day → 07:00 the next working day), which
  is the "same clock time N working days later" rule of deployed software.

Positions come from a per-day prefix sum built once, so every operation is O(1)
in the span, whatever its length (the simulator calls these millions of times).

Asia/Ho_Chi_Minh has had a fixed +07:00 offset since 1975, so wall-clock
arithmetic on local datetimes is exact for every year the calendar covers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.errors import CalendarError
from schemas.events import DeadlineConvention, TimeLimitUnit
from schemas.workingcalendar_data import (
    CalendarCoverageError,
    CalendarData,
    load_vietnam_calendar,
)

__all__ = [
    "DEFAULT_WORKING_HOURS",
    "HCMC_TZ",
    "SAME_DAY_CUTOFF",
    "CalendarCoverageError",
    "CalendarData",
    "DueExplanation",
    "Granularity",
    "NamedDay",
    "Outcome",
    "WorkingCalendar",
    "WorkingHours",
    "default_calendar",
    "load_vietnam_calendar",
]

HCMC_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SAME_DAY_CUTOFF = time(15)
_US = 1_000_000
_ONE_US = timedelta(microseconds=1)
_HOURS_SPEC_EXAMPLE = "07:00-11:30,13:30-17:00"


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US + t.microsecond


def _to_local(t: datetime, what: str = "time") -> datetime:
    """Refuse naive datetimes: guessing their zone would shift deadlines by hours without a trace."""
    if not isinstance(t, datetime):
        raise CalendarError(f"{what} must be a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise CalendarError(f"{what} {t.isoformat()} has no UTC offset; give one, e.g. {t.isoformat()}+07:00")
    return t.astimezone(HCMC_TZ)


@dataclass(frozen=True)
class WorkingHours:
    """The daily working periods of an office; the same on every working day (make-up Saturdays too)."""

    periods: tuple[tuple[time, time], ...] = ((time(7), time(11, 30)), (time(13, 30), time(17)))

    def __post_init__(self) -> None:
        if not self.periods:
            raise CalendarError("working hours need at least one period, e.g. " + _HOURS_SPEC_EXAMPLE)
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise CalendarError("working-hour periods are local wall-clock times; drop the tzinfo")
            if start >= end:
                raise CalendarError(f"working-hour period {start:%H:%M}-{end:%H:%M} ends before it starts")
            if previous_end is not None and start < previous_end:
                raise CalendarError("working-hour periods must be in order and must not overlap")
            previous_end = end

    @classmethod
    def parse(cls, spec: str) -> WorkingHours:
        """Parse ``"07:00-11:30,13:30-17:00"`` (comma-separated ``HH:MM-HH:MM`` periods)."""
        periods: list[tuple[time, time]] = []
        for part in spec.split(","):
            bounds = part.strip().split("-")
            if len(bounds) != 2:
                raise CalendarError(
                    f"working hours {spec!r}: {part.strip()!r} is not HH:MM-HH:MM; "
                    f"expected e.g. {_HOURS_SPEC_EXAMPLE!r}"
                )
            try:
                periods.append((time.fromisoformat(bounds[0].strip()), time.fromisoformat(bounds[1].strip())))
            except ValueError as exc:
                raise CalendarError(f"working hours {spec!r}: {exc}; expected e.g. {_HOURS_SPEC_EXAMPLE!r}") from exc
        return cls(tuple(periods))

    @property
    def per_day(self) -> timedelta:
        return sum((_period_length(a, b) for a, b in self.periods), timedelta())

    def __str__(self) -> str:
        return ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in self.periods)


def _period_length(start: time, end: time) -> timedelta:
    return timedelta(microseconds=_time_us(end) - _time_us(start))


DEFAULT_WORKING_HOURS = WorkingHours()


class Outcome(StrEnum):
    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"


class Granularity(StrEnum):
    """What "on time" means: the same minute as the due instant, or the same calendar day in HCMC."""

    MINUTE = "minute"
    DAY = "day"


@dataclass(frozen=True)
class NamedDay:
    day: date
    kind: str  # weekend | day_off | makeup
    name: str


@dataclass(frozen=True)
class DueExplanation:
    """A due date with what went into it, for people checking a NgayHenTra by hand."""

    received_at: datetime
    counting_from: datetime
    due_at: datetime
    days: int
    hours: float
    convention: DeadlineConvention
    skipped: tuple[NamedDay, ...]  # non-working days between reception and due date
    makeup_days_worked: tuple[NamedDay, ...]


_WEEKEND_NAMES = {5: "Thứ Bảy (Saturday)", 6: "Chủ nhật (Sunday)"}


class WorkingCalendar:
    """Working-time questions against one calendar table and one set of working hours."""

    def __init__(self, data: CalendarData | None = None, hours: WorkingHours = DEFAULT_WORKING_HOURS) -> None:
        self.data = data if data is not None else load_vietnam_calendar()
        self.hours = hours
        if not self.data.years:
            raise CalendarError("the calendar data covers no year")
        self._periods = tuple((_time_us(a), _time_us(b)) for a, b in hours.periods)
        offsets, acc = [], 0
        for start, end in self._periods:
            offsets.append(acc)
            acc += end - start
        self._offsets = tuple(offsets)
        self._per_day = acc
        first, last = min(self.data.years), max(self.data.years)
        self._origin = date(first, 1, 1).toordinal()
        self._gap_years = frozenset(range(first, last + 1)) - self.data.years
        flags = [
            self._rule_is_working(date.fromordinal(o)) for o in range(self._origin, date(last, 12, 31).toordinal() + 1)
        ]
        self._flags = flags
        self._cum = [0]  # _cum[i]: working days strictly before day index i
        for flag in flags:
            self._cum.append(self._cum[-1] + flag)
        self._working = [self._origin + i for i, flag in enumerate(flags) if flag]

    # -- days -------------------------------------------------------------------------------

    def _rule_is_working(self, d: date) -> bool:
        if d in self.data.days_off:
            return False
        if d in self.data.makeup_days:
            return True
        return d.weekday() < 5

    def _index(self, d: date) -> int:
        i = d.toordinal() - self._origin
        if not 0 <= i < len(self._flags) or d.year in self._gap_years:
            raise CalendarCoverageError(d.year, self.data.years)
        return i

    def _check_span(self, a: date, b: date) -> None:
        if self._gap_years:
            for year in range(min(a, b).year, max(a, b).year + 1):
                if year in self._gap_years:
                    raise CalendarCoverageError(year, self.data.years)

    def _working_day(self, k: int, year_hint: int) -> date:
        """The k-th working day of the table (0-based), or a coverage error past either end."""
        if k < 0:
            raise CalendarCoverageError(min(self.data.years) - 1, self.data.years)
        if k >= len(self._working):
            raise CalendarCoverageError(max(self.data.years) + 1, self.data.years)
        d = date.fromordinal(self._working[k])
        self._check_span(date(year_hint, 1, 1), d)
        return d

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = _to_local(d).date()
        return self._flags[self._index(d)]

    def next_working_day(self, d: date, *, include_self: bool = True) -> date:
        i = self._index(d)
        k = self._cum[i] + (0 if include_self or not self._flags[i] else 1)
        return self._working_day(k, d.year)

    def _nth_working_day(self, d: date, n: int) -> date:
        """n > 0: the n-th working day after d; n < 0: before d; n == 0: d itself or the next one."""
        i = self._index(d)
        before = self._cum[i]
        if n > 0:
            return self._working_day(before + self._flags[i] + n - 1, d.year)
        if n < 0:
            return self._working_day(before + n, d.year)
        return self._working_day(before, d.year)

    def day_start(self, d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=HCMC_TZ) + timedelta(microseconds=self._periods[0][0])

    def day_end(self, d: date) -> datetime:
        """End of working hours (17:00): where END_OF_DAY limits and same-day procedures end."""
        return datetime(d.year, d.month, d.day, tzinfo=HCMC_TZ) + timedelta(microseconds=self._periods[-1][1])

    def named_days(self, first: date, last: date) -> tuple[tuple[NamedDay, ...], tuple[NamedDay, ...]]:
        """(non-working days, make-up working days) from first to last inclusive, with their names."""
        skipped: list[NamedDay] = []
        worked: list[NamedDay] = []
        for o in range(first.toordinal(), last.toordinal() + 1):
            d = date.fromordinal(o)
            if not self.is_working_day(d):
                name = self.data.days_off.get(d)
                skipped.append(
                    NamedDay(d, "day_off", name) if name else NamedDay(d, "weekend", _WEEKEND_NAMES[d.weekday()])
                )
            elif d in self.data.makeup_days:
                worked.append(NamedDay(d, "makeup", self.data.makeup_days[d]))
        return tuple(skipped), tuple(worked)

    # -- positions ----------------------------------------------------------------------------

    def _position(self, t: datetime, what: str = "time") -> int:
        local = _to_local(t, what)
        i = self._index(local.date())
        position = self._cum[i] * self._per_day
        if self._flags[i]:
            tod = _time_us(local.time())
            for start, end in self._periods:
                if tod <= start:
                    break
                position += min(tod, end) - start
        return position

    def _instant(self, position: int, year_hint: int) -> datetime:
        k, rest = divmod(position, self._per_day)
        d = self._working_day(k, year_hint)
        for (start, end), offset in zip(self._periods, self._offsets, strict=True):
            if rest < offset + end - start:
                return datetime(d.year, d.month, d.day, tzinfo=HCMC_TZ) + timedelta(microseconds=start + rest - offset)
        raise AssertionError("unreachable: rest < per_day")  # pragma: no cover

    # -- public arithmetic ---------------------------------------------------------------------

    def next_working_instant(self, t: datetime) -> datetime:
        """Where the clock starts for t: before 07:00 → 07:00, lunch → 13:30, after 17:00 or a day off → next 07:00."""
        return self._instant(self._position(t), _to_local(t).year)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        a, b = self._position(start, "start"), self._position(end, "end")
        self._check_span(_to_local(start).date(), _to_local(end).date())
        return timedelta(microseconds=b - a)

    def working_time_between_excluding(
        self, start: datetime, end: datetime, pauses: Iterable[tuple[datetime, datetime]]
    ) -> timedelta:
        """Working time minus the parts of pauses (e.g. supplement requests, §b.6) inside [start, end].

        Overlapping pauses are merged so a pause recorded twice is not subtracted twice.
        """
        if end < start:
            return -self.working_time_between_excluding(end, start, pauses)
        clipped: list[tuple[datetime, datetime]] = []
        for pause_start, pause_end in pauses:
            _to_local(pause_start, "pause start")
            _to_local(pause_end, "pause end")
            if pause_end < pause_start:
                raise CalendarError(f"pause {pause_start.isoformat()} – {pause_end.isoformat()} ends before it starts")
            a, b = max(pause_start, start), min(pause_end, end)
            if a < b:
                clipped.append((a, b))
        clipped.sort()
        merged: list[tuple[datetime, datetime]] = []
        for a, b in clipped:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        total = self.working_time_between(start, end)
        for a, b in merged:
            total -= self.working_time_between(a, b)
        return total

    def add_working_time(self, t: datetime, delta: timedelta) -> datetime:
        """The working instant delta of working time after t (before t when delta < 0)."""
        return self._instant(self._position(t) + delta // _ONE_US, _to_local(t).year)

    def add_working_hours(self, t: datetime, hours: float) -> datetime:
        if not math.isfinite(hours):
            raise CalendarError(f"working hours to add must be a finite number, got {hours}")
        return self.add_working_time(t, timedelta(hours=hours))

    def add_working_days(
        self, t: datetime, days: int, convention: DeadlineConvention = DeadlineConvention.WORKING_HOURS
    ) -> datetime:
        """N working days from t.

        WORKING_HOURS (deployed practice): N x per_day of working time, i.e. the same clock time N
        working days later, counted from the normalised reception instant.
        END_OF_DAY (Civil Code art. 147-148): the reception day is not counted; the limit ends at the
        end of working hours of the N-th working day after it (before it for negative N, which is how
        the audit asks for "1 working day before the due date").
        """
        if convention is DeadlineConvention.WORKING_HOURS:
            return self.add_working_time(t, days * self.hours.per_day)
        if convention is DeadlineConvention.END_OF_DAY:
            return self.day_end(self._nth_working_day(_to_local(t).date(), days))
        raise CalendarError(f"cannot count working days with deadline convention {convention}")

    def due_at(
        self, received_at: datetime, value: int, unit: TimeLimitUnit, convention: DeadlineConvention
    ) -> datetime:
        """NgayHenTra for a limit of ``value`` ``unit``s.

        Calendar-day and month limits add calendar time; a result on a non-working day rolls forward
        to the next working day (Civil Code art. 148), at the same clock time under WORKING_HOURS and
        at the end of working hours under END_OF_DAY. Working-hour limits are working time under either
        convention (the Civil Code's day rule has nothing to say about hours).
        """
        if convention not in (DeadlineConvention.WORKING_HOURS, DeadlineConvention.END_OF_DAY):
            raise CalendarError(f"cannot compute a due date with deadline convention {convention}")
        if unit is TimeLimitUnit.WORKING_HOURS:
            return self.add_working_hours(received_at, value)
        if unit is TimeLimitUnit.WORKING_DAYS:
            return self.add_working_days(received_at, value, convention)
        if unit not in (TimeLimitUnit.CALENDAR_DAYS, TimeLimitUnit.MONTHS):
            raise CalendarError(f"cannot compute a due date for time-limit unit {unit}")
        if convention is DeadlineConvention.END_OF_DAY:
            start = _to_local(received_at, "received_at")
        else:
            start = self.next_working_instant(received_at)
        if unit is TimeLimitUnit.CALENDAR_DAYS:
            target = start.date() + timedelta(days=value)
        else:
            target = _add_months(start.date(), value)
        day = self.next_working_day(target)
        if convention is DeadlineConvention.END_OF_DAY:
            return self.day_end(day)
        return datetime.combine(day, start.timetz())

    def same_day_due(self, received_at: datetime, cutoff: time = SAME_DAY_CUTOFF) -> datetime:
        """Same-day procedures (NĐ 23/2015, NĐ 61 Đ19): done within the day, or the next working day
        when received after the cut-off. Exactly at the cut-off is not "after" it.
        """
        local = _to_local(received_at, "received_at")
        d = local.date()
        if self.is_working_day(d) and local.time() <= cutoff:
            return self.day_end(d)
        return self.day_end(self.next_working_day(d, include_self=False))

    def outcome(self, end: datetime, due: datetime, granularity: Granularity = Granularity.MINUTE) -> Outcome:
        """Early / on time / late (§b.8); the granularity of "on time" is unconfirmed, hence a parameter."""
        e, d = _to_local(end, "end"), _to_local(due, "due")
        if granularity is Granularity.DAY:
            a, b = e.date(), d.date()
            return Outcome.EARLY if a < b else Outcome.ON_TIME if a == b else Outcome.LATE
        x, y = e.replace(second=0, microsecond=0), d.replace(second=0, microsecond=0)
        return Outcome.EARLY if x < y else Outcome.ON_TIME if x == y else Outcome.LATE

    def explain_due(
        self,
        received_at: datetime,
        *,
        days: int = 0,
        hours: float = 0.0,
        convention: DeadlineConvention = DeadlineConvention.WORKING_HOURS,
    ) -> DueExplanation:
        """The due date plus the start of counting and the days skipped (what `dossier calendar due` shows)."""
        local = _to_local(received_at, "received_at")
        if convention is DeadlineConvention.END_OF_DAY:
            if hours:
                raise CalendarError("working hours can only be added under the working-hours convention")
            counting_from = self.day_start(self.next_working_day(local.date(), include_self=False))
            due = self.add_working_days(local, days, convention)
        else:
            counting_from = self.next_working_instant(local)
            if not math.isfinite(hours):
                raise CalendarError(f"working hours to add must be a finite number, got {hours}")
            due = self.add_working_time(local, days * self.hours.per_day + timedelta(hours=hours))
        first, last = sorted((local.date(), due.date()))
        skipped, worked = self.named_days(first, last)
        return DueExplanation(local, counting_from, due, days, hours, convention, skipped, worked)


def _add_months(d: date, months: int) -> date:
    """Same day-of-month, clamped to the month's end (Civil Code art. 147: 31/1 + 1 month → 28/2 or 29/2)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(d.day, (next_month - timedelta(days=1)).day))


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    """The Vietnamese calendar with the default 07:00–11:30, 13:30–17:00 hours (cached)."""
    return WorkingCalendar()
