"""Working-time arithmetic inside ClickHouse, exactly as :mod:`schemas.workingtime` does it in Python.

Audit rules, scorecards and flow statistics measure durations in working
time over millions of events, so the arithmetic must run in SQL. The trick
is a *position*: the number of working microseconds since the start of the
calendar. ``pos(t)`` is ``(working days before t's day) × day length`` plus
the working time already elapsed on t's day; then

* working time between a and b  = ``pos(b) - pos(a)``;
* t plus d of working time      = ``instant(pos(t) + d)``.

The calendar travels as bound array parameters (working-day flags, running
counts, the working days themselves, about 3,300 entries for 2018-2026), so
the expressions need no table, no join and no dictionary, and are identical
on embedded chDB and a ClickHouse server. ``params()`` must be merged into
the query parameters of any SQL that uses these expressions.

Timestamps outside the calendar's years are not covered; callers restrict
their data to :func:`covered_sql`.
"""

from __future__ import annotations

import functools
from datetime import date, time
from typing import Any, Final

from schemas.workingtime import WorkingCalendar, default_calendar

US: Final = 1_000_000
DAY_US: Final = 86_400 * US
TZ_OFFSET_US: Final = 7 * 3_600 * US  # Asia/Ho_Chi_Minh has no DST: UTC+7 all year
_EPOCH: Final = date(1970, 1, 1).toordinal()


def _us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond


@functools.cache
def _calendar_arrays(cal: WorkingCalendar) -> dict[str, Any]:
    years = sorted(cal.data.years)
    first, last = date(years[0], 1, 1), date(years[-1], 12, 31)
    flags: list[int] = []
    cum: list[int] = []
    working: list[int] = []
    count = 0
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        flag = cal.is_working_day(day)
        cum.append(count)
        flags.append(int(flag))
        if flag:
            working.append(ordinal - _EPOCH)
            count += 1
    return {
        "wt_first_day": first.toordinal() - _EPOCH,
        "wt_last_day": last.toordinal() - _EPOCH,
        "wt_flags": flags,
        "wt_cum": cum,
        "wt_working": working,
    }


def params(cal: WorkingCalendar | None = None) -> dict[str, Any]:
    """The bound parameters every working-time expression refers to."""
    return dict(_calendar_arrays(cal or default_calendar()))


def _periods(cal: WorkingCalendar) -> list[tuple[int, int]]:
    return [(_us(a), _us(b)) for a, b in cal.hours.periods]


def day_length_us(cal: WorkingCalendar | None = None) -> int:
    return sum(b - a for a, b in _periods(cal or default_calendar()))


def _local(expr: str) -> str:
    return f"(toUnixTimestamp64Micro({expr}) + {TZ_OFFSET_US})"


def pos_sql(expr: str, cal: WorkingCalendar | None = None) -> str:
    """Working microseconds from the calendar's start to the instant ``expr`` (a DateTime64)."""
    cal = cal or default_calendar()
    local = _local(expr)
    index = f"(intDiv({local}, {DAY_US}) - {{wt_first_day:Int64}} + 1)"
    tod = f"({local} % {DAY_US})"
    elapsed = " + ".join(f"least(greatest({tod} - {a}, 0), {b - a})" for a, b in _periods(cal))
    return (
        f"(toInt64(arrayElement({{wt_cum:Array(UInt32)}}, {index})) * {day_length_us(cal)}"
        f" + if(arrayElement({{wt_flags:Array(UInt8)}}, {index}) = 1, {elapsed}, 0))"
    )


def instant_sql(pos_expr: str, cal: WorkingCalendar | None = None) -> str:
    """The instant (DateTime64(6,'UTC')) at working position ``pos_expr``.

    A position on a day boundary maps to the start of the next working day,
    as :meth:`WorkingCalendar.add_working_time` does.
    """
    cal = cal or default_calendar()
    per_day = day_length_us(cal)
    k = f"intDiv({pos_expr}, {per_day})"
    rest = f"({pos_expr} % {per_day})"
    branches, offset = [], 0
    periods = _periods(cal)
    for a, b in periods[:-1]:
        branches.append(f"{rest} < {offset + b - a}, {a} + {rest} - {offset}")
        offset += b - a
    last_start = periods[-1][0]
    tod = (
        f"multiIf({', '.join(branches)}, {last_start} + {rest} - {offset})" if branches else f"({last_start} + {rest})"
    )
    day = f"toInt64(arrayElement({{wt_working:Array(Int32)}}, {k} + 1))"
    return f"fromUnixTimestamp64Micro({day} * {DAY_US} + {tod} - {TZ_OFFSET_US}, 'UTC')"


def working_us_sql(a: str, b: str, cal: WorkingCalendar | None = None) -> str:
    """Working microseconds from ``a`` to ``b`` (negative when b < a)."""
    return f"({pos_sql(b, cal)} - {pos_sql(a, cal)})"


def add_working_us_sql(expr: str, delta_us: str, cal: WorkingCalendar | None = None) -> str:
    """``expr`` plus ``delta_us`` working microseconds (may be negative)."""
    return instant_sql(f"({pos_sql(expr, cal)} + ({delta_us}))", cal)


def add_working_days_sql(expr: str, days: str, cal: WorkingCalendar | None = None) -> str:
    """``expr`` plus ``days`` working days of the deployed convention (days x 8 working hours)."""
    return add_working_us_sql(expr, f"({days}) * {day_length_us(cal)}", cal)


def covered_sql(expr: str) -> str:
    """True when ``expr`` lies in a year the calendar covers."""
    day = f"intDiv({_local(expr)}, {DAY_US})"
    return f"({day} BETWEEN {{wt_first_day:Int64}} AND {{wt_last_day:Int64}})"
