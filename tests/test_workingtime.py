"""Working-time arithmetic against real Vietnamese dates (schemas/data/vn_working_calendar.json)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import CalendarError
from schemas.events import DeadlineConvention, TimeLimitUnit
from schemas.workingcalendar_data import CalendarData, calendar_entries, describe_years
from schemas.workingtime import (
    HCMC_TZ,
    Granularity,
    Outcome,
    WorkingCalendar,
    WorkingHours,
    default_calendar,
    load_vietnam_calendar,
)

EOD = DeadlineConvention.END_OF_DAY
WH = DeadlineConvention.WORKING_HOURS
H = timedelta(hours=1)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=HCMC_TZ)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return default_calendar()


# -- the data ---------------------------------------------------------------------------------


def test_tet_2024_and_the_three_day_example(cal: WorkingCalendar) -> None:
    for day in range(8, 15):
        assert not cal.is_working_day(date(2024, 2, day))
    assert cal.is_working_day(date(2024, 2, 7)) and cal.is_working_day(date(2024, 2, 15))
    assert cal.add_working_days(at(2024, 2, 7, 16), 3) == at(2024, 2, 19, 16)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # 2019: Mon 29/4 swapped off, made up on Sat 4/5
        (at(2019, 4, 26, 10), at(2019, 5, 2, 10)),
        (at(2019, 5, 3, 10), at(2019, 5, 4, 10)),
        (at(2019, 8, 30, 10), at(2019, 9, 3, 10)),  # 2/9/2019 a Monday, one day only (Labour Code 2012)
        # 2021: 1/5 a Saturday -> Mon 3/5 compensatory; National Day 2+3/9
        (at(2021, 4, 29, 10), at(2021, 5, 4, 10)),
        (at(2021, 9, 1, 10), at(2021, 9, 6, 10)),
        # 2023: Hùng Kings 29/4 (Sat) and 30/4 (Sun) -> 2/5, 3/5; 2/9 (Sat) -> Mon 4/9, plus Fri 1/9
        (at(2023, 4, 28, 10), at(2023, 5, 4, 10)),
        (at(2023, 8, 31, 10), at(2023, 9, 5, 10)),
        # 2024: Mon 29/4 swapped off, Sat 4/5 worked; National Day 2+3/9
        (at(2024, 4, 26, 16), at(2024, 5, 2, 16)),
        (at(2024, 5, 3, 10), at(2024, 5, 4, 10)),
        (at(2024, 8, 30, 9), at(2024, 9, 4, 9)),
        # 2025: Fri 2/5 swapped off, Sat 26/4 worked; National Day 1+2/9
        (at(2025, 4, 25, 10), at(2025, 4, 26, 10)),
        (at(2025, 4, 29, 10), at(2025, 5, 5, 10)),
        (at(2025, 8, 29, 10), at(2025, 9, 3, 10)),
    ],
)
def test_one_working_day_across_april_may_and_national_day(
    cal: WorkingCalendar, received: datetime, due: datetime
) -> None:
    assert cal.add_working_days(received, 1) == due


def test_make_up_saturday_counts_as_a_working_day(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(date(2024, 5, 4))
    assert cal.working_time_between(at(2024, 5, 3, 17), at(2024, 5, 6, 7)) == 8 * H
    assert cal.working_time_between(at(2024, 5, 10, 17), at(2024, 5, 13, 7)) == timedelta(0)  # ordinary weekend


def test_new_year_2019_swap(cal: WorkingCalendar) -> None:
    assert not cal.is_working_day(date(2018, 12, 31))
    assert cal.is_working_day(date(2019, 1, 5))
    assert cal.add_working_days(at(2018, 12, 28, 10), 1) == at(2019, 1, 2, 10)
    assert cal.add_working_days(at(2019, 1, 4, 10), 1) == at(2019, 1, 5, 10)


def test_new_year_2026_swap_and_tet_2025_without_make_up_saturday(cal: WorkingCalendar) -> None:
    assert not cal.is_working_day(date(2026, 1, 2))
    assert cal.is_working_day(date(2026, 1, 10))
    assert [d for d in range(25, 32) if cal.is_working_day(date(2025, 1, d))] == []
    assert not cal.is_working_day(date(2025, 2, 8))  # no source announced a make-up Saturday for Tết 2025
    assert cal.is_working_day(date(2025, 2, 3))


def test_json_entries_are_well_formed() -> None:
    doc = json.loads(files("schemas").joinpath("data", "vn_working_calendar.json").read_text(encoding="utf-8"))
    covered = {y["year"] for y in doc["years"] if y["covered"]}
    assert covered == set(range(2018, 2027))
    assert {y["year"]: y["covered"] for y in doc["years"]}[2027] is False
    kinds = Counter(e["kind"] for e in doc["entries"])
    assert kinds["swap_off"] == kinds["makeup_workday"] == 6
    for entry in doc["entries"]:
        assert entry["source"] and entry["name_vi"] and entry["name_en"]
        assert entry["confidence"] in {"confirmed", "recalled"}
    for year in covered:
        days = {e["date"] for e in doc["entries"] if e["kind"] == "holiday"}
        for fixed in ("01-01", "04-30", "05-01", "09-02"):
            assert f"{year}-{fixed}" in days
        national_days = [
            e for e in doc["entries"] if e["date"].startswith(str(year)) and "National Day" in e["name_en"]
        ]
        assert len([e for e in national_days if e["kind"] == "holiday"]) == (2 if year >= 2021 else 1)


def test_each_year_has_the_statutory_number_of_days_off() -> None:
    """10 statutory days a year (Labour Code 2012), 11 from 2021; a statutory day on a weekend is
    replaced by a compensatory weekday, and swaps only move days, so weekdays off minus swaps is fixed."""
    data = load_vietnam_calendar()
    for year in range(2018, 2027):
        swapped = [e for e in calendar_entries(year) if e.kind == "swap_off"]
        weekday_off = [d for d in data.days_off if d.year == year]
        assert len(weekday_off) - len(swapped) == (11 if year >= 2021 else 10), year


def test_describe_years() -> None:
    assert describe_years([2018, 2019, 2020, 2023]) == "2018–2020, 2023"


# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (at(2024, 3, 5, 6, 0), at(2024, 3, 5, 7, 0)),
        (at(2024, 3, 5, 9, 15), at(2024, 3, 5, 9, 15)),
        (at(2024, 3, 5, 11, 30), at(2024, 3, 5, 13, 30)),
        (at(2024, 3, 5, 12, 10), at(2024, 3, 5, 13, 30)),
        (at(2024, 3, 5, 17, 0), at(2024, 3, 6, 7, 0)),
        (at(2024, 3, 8, 18, 0), at(2024, 3, 11, 7, 0)),  # Friday evening -> Monday
        (at(2024, 3, 9, 10, 0), at(2024, 3, 11, 7, 0)),  # Saturday
        (at(2024, 2, 7, 17, 30), at(2024, 2, 15, 7, 0)),  # into Tết
        (datetime(2024, 3, 5, 2, 0, tzinfo=UTC), at(2024, 3, 5, 9, 0)),  # UTC in, HCMC out
    ],
)
def test_next_working_instant(cal: WorkingCalendar, t: datetime, expected: datetime) -> None:
    result = cal.next_working_instant(t)
    assert result == expected
    assert result.tzinfo == HCMC_TZ


def test_reception_after_hours_counts_from_next_morning(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(at(2024, 3, 5, 18), 1) == at(2024, 3, 7, 7)
    assert cal.add_working_days(at(2024, 3, 5, 12), 1) == at(2024, 3, 6, 13, 30)
    assert cal.add_working_days(at(2024, 3, 5, 7), 1) == at(2024, 3, 6, 7)  # same clock time, not 17:00
    assert cal.add_working_hours(at(2024, 3, 5, 16), 4) == at(2024, 3, 6, 10)


# -- negative and paused arithmetic ---------------------------------------------------------------


def test_negative_add(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(at(2024, 2, 19, 16), -1) == at(2024, 2, 16, 16)
    assert cal.add_working_days(at(2024, 2, 15, 9), -1) == at(2024, 2, 7, 9)  # back across Tết
    assert cal.add_working_time(at(2024, 3, 5, 13, 45), -30 * timedelta(minutes=1)) == at(2024, 3, 5, 11, 15)
    assert cal.add_working_days(at(2024, 2, 19, 17), -1, EOD) == at(2024, 2, 16, 17)
    assert cal.working_time_between(at(2024, 2, 19, 16), at(2024, 2, 7, 16)) == -24 * H


def test_working_time_between_excluding_pauses(cal: WorkingCalendar) -> None:
    start, end = at(2024, 3, 4, 9), at(2024, 3, 8, 9)
    assert cal.working_time_between(start, end) == 32 * H
    pause = (at(2024, 3, 5, 10), at(2024, 3, 6, 10))
    assert cal.working_time_between_excluding(start, end, [pause]) == 24 * H
    overlapping = [pause, (at(2024, 3, 5, 15), at(2024, 3, 6, 9)), (at(2024, 3, 1, 8), at(2024, 3, 4, 10))]
    assert cal.working_time_between_excluding(start, end, overlapping) == 23 * H  # merged, clipped at start
    assert cal.working_time_between_excluding(end, start, [pause]) == -24 * H
    with pytest.raises(CalendarError, match="ends before it starts"):
        cal.working_time_between_excluding(start, end, [(pause[1], pause[0])])


# -- conventions and limits ---------------------------------------------------------------------


def test_end_of_day_convention(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(at(2024, 2, 7, 16), 3, EOD) == at(2024, 2, 19, 17)
    assert cal.add_working_days(at(2024, 2, 7, 8), 3, EOD) == at(2024, 2, 19, 17)  # first day never counted
    assert cal.add_working_days(at(2024, 3, 9, 10), 1, EOD) == at(2024, 3, 11, 17)  # received on a Saturday
    assert cal.add_working_days(at(2024, 3, 5, 10), 0, EOD) == at(2024, 3, 5, 17)
    with pytest.raises(CalendarError, match="UNKNOWN"):
        cal.add_working_days(at(2024, 3, 5, 10), 1, DeadlineConvention.UNKNOWN)


def test_calendar_day_and_month_limits_roll_forward(cal: WorkingCalendar) -> None:
    days = TimeLimitUnit.CALENDAR_DAYS
    assert cal.due_at(at(2024, 2, 1, 10), 10, days, WH) == at(2024, 2, 15, 10)  # 11/2 is Tết
    assert cal.due_at(at(2024, 2, 1, 10), 10, days, EOD) == at(2024, 2, 15, 17)
    assert cal.due_at(at(2024, 3, 4, 10), 3, days, WH) == at(2024, 3, 7, 10)  # no roll needed
    assert cal.due_at(at(2024, 3, 8, 18), 1, days, WH) == at(2024, 3, 12, 7)  # counted from Mon 07:00
    months = TimeLimitUnit.MONTHS
    assert cal.due_at(at(2024, 1, 31, 10), 1, months, EOD) == at(2024, 2, 29, 17)  # clamped to month end
    assert cal.due_at(at(2025, 3, 31, 10), 1, months, EOD) == at(2025, 5, 5, 17)  # 30/4-4/5 off
    assert cal.due_at(at(2025, 3, 31, 10), 1, months, WH) == at(2025, 5, 5, 10)


def test_due_at_in_working_units(cal: WorkingCalendar) -> None:
    t = at(2024, 2, 7, 16)
    assert cal.due_at(t, 3, TimeLimitUnit.WORKING_DAYS, WH) == at(2024, 2, 19, 16)
    assert cal.due_at(t, 3, TimeLimitUnit.WORKING_DAYS, EOD) == at(2024, 2, 19, 17)
    assert cal.due_at(t, 4, TimeLimitUnit.WORKING_HOURS, WH) == at(2024, 2, 15, 10)
    with pytest.raises(CalendarError):
        cal.due_at(t, 3, TimeLimitUnit.UNKNOWN, WH)
    with pytest.raises(CalendarError):
        cal.due_at(t, 3, TimeLimitUnit.WORKING_DAYS, DeadlineConvention.UNKNOWN)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (at(2024, 3, 5, 8), at(2024, 3, 5, 17)),
        (at(2024, 3, 5, 14, 59), at(2024, 3, 5, 17)),
        (at(2024, 3, 5, 15, 0), at(2024, 3, 5, 17)),  # "after 15:00" only past it
        (at(2024, 3, 5, 15, 0, 1), at(2024, 3, 6, 17)),
        (at(2024, 3, 8, 16), at(2024, 3, 11, 17)),  # Friday afternoon -> Monday
        (at(2024, 5, 3, 15, 30), at(2024, 5, 4, 17)),  # -> make-up Saturday
        (at(2024, 3, 9, 9), at(2024, 3, 11, 17)),  # Saturday
        (at(2024, 2, 7, 15, 30), at(2024, 2, 15, 17)),  # eve of Tết
    ],
)
def test_same_day_cut_off(cal: WorkingCalendar, received: datetime, due: datetime) -> None:
    assert cal.same_day_due(received) == due


def test_outcome_classes(cal: WorkingCalendar) -> None:
    due = at(2024, 2, 19, 16)
    assert cal.outcome(at(2024, 2, 19, 15, 59), due) is Outcome.EARLY
    assert cal.outcome(at(2024, 2, 19, 16, 0, 40), due) is Outcome.ON_TIME
    assert cal.outcome(datetime(2024, 2, 19, 9, 0, tzinfo=UTC), due) is Outcome.ON_TIME  # 16:00 in HCMC
    assert cal.outcome(at(2024, 2, 19, 16, 1), due) is Outcome.LATE
    assert cal.outcome(at(2024, 2, 19, 16, 45), due, Granularity.DAY) is Outcome.ON_TIME
    assert cal.outcome(at(2024, 2, 16, 16), due, Granularity.DAY) is Outcome.EARLY
    assert cal.outcome(at(2024, 2, 20, 8), due, Granularity.DAY) is Outcome.LATE


# -- refusals -----------------------------------------------------------------------------------


def test_uncovered_years_are_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match=r"2027.*2018–2026"):
        cal.is_working_day(date(2027, 1, 4))
    with pytest.raises(CalendarError, match="2027"):
        cal.add_working_days(at(2026, 12, 30, 9), 5)
    with pytest.raises(CalendarError, match="2017"):
        cal.working_time_between(at(2017, 12, 29, 9), at(2018, 1, 3, 9))
    with pytest.raises(CalendarError, match="2017"):
        cal.add_working_days(at(2018, 1, 2, 9), -3)


def test_gap_years_in_custom_data_are_refused() -> None:
    data = CalendarData(days_off=MappingProxyType({}), makeup_days=MappingProxyType({}), years=frozenset({2020, 2022}))
    gappy = WorkingCalendar(data)
    assert gappy.add_working_days(at(2020, 3, 2, 9), 1) == at(2020, 3, 3, 9)
    with pytest.raises(CalendarError, match="2021"):
        gappy.working_time_between(at(2020, 12, 1, 9), at(2022, 1, 3, 9))
    with pytest.raises(CalendarError, match="2021"):
        gappy.add_working_days(at(2020, 12, 30, 9), 300)


def test_naive_datetimes_are_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="no UTC offset"):
        cal.next_working_instant(datetime(2024, 3, 5, 9))  # noqa: DTZ001 - the point of the test
    with pytest.raises(CalendarError, match="no UTC offset"):
        cal.outcome(at(2024, 3, 5, 9), datetime(2024, 3, 5, 9))  # noqa: DTZ001


# -- working hours ------------------------------------------------------------------------------


def test_working_hours_parse_and_custom_calendar() -> None:
    hours = WorkingHours.parse("08:00-12:00, 13:00-17:30")
    assert hours.periods == ((time(8), time(12)), (time(13), time(17, 30)))
    assert hours.per_day == timedelta(hours=8, minutes=30)
    assert str(hours) == "08:00-12:00,13:00-17:30"
    assert WorkingHours().per_day == 8 * H
    custom = WorkingCalendar(hours=hours)
    assert custom.next_working_instant(at(2024, 3, 5, 12, 30)) == at(2024, 3, 5, 13)
    assert custom.add_working_days(at(2024, 3, 5, 9), 1) == at(2024, 3, 6, 9)
    assert custom.add_working_days(at(2024, 3, 5, 9), 1, EOD) == at(2024, 3, 6, 17, 30)


@pytest.mark.parametrize(
    "spec", ["", "abc", "7-11", "11:00-07:00", "07:00-12:00,11:00-17:00", "07:00-11:30;13:30-17:00"]
)
def test_working_hours_parse_rejects_nonsense(spec: str) -> None:
    with pytest.raises(CalendarError, match="working"):
        WorkingHours.parse(spec)


# -- properties -----------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2018, 1, 2), max_value=datetime(2026, 12, 20), timezones=st.just(HCMC_TZ))  # noqa: DTZ001


@settings(max_examples=300, deadline=None)
@given(t=instants, u=instants)
def test_add_between_lands_on_normalised_end(t: datetime, u: datetime) -> None:
    cal = default_calendar()
    assert cal.add_working_time(t, cal.working_time_between(t, u)) == cal.next_working_instant(u)


@settings(max_examples=300, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_between_is_additive(a: datetime, b: datetime, c: datetime) -> None:
    cal = default_calendar()
    assert cal.working_time_between(a, b) + cal.working_time_between(b, c) == cal.working_time_between(a, c)


# far enough from the covered range's ends that ±100 working days stay inside it
middle_instants = st.datetimes(
    min_value=datetime(2018, 8, 1),  # noqa: DTZ001
    max_value=datetime(2026, 6, 30),  # noqa: DTZ001
    timezones=st.just(HCMC_TZ),
)


@settings(max_examples=300, deadline=None)
@given(t=middle_instants, minutes=st.integers(min_value=-60 * 8 * 100, max_value=60 * 8 * 100))
def test_between_inverts_add(t: datetime, minutes: int) -> None:
    cal = default_calendar()
    delta = timedelta(minutes=minutes)
    result = cal.add_working_time(t, delta)
    assert cal.working_time_between(t, result) == delta
    assert cal.is_working_day(result.date())
    assert any(start <= result.time() < end for start, end in cal.hours.periods)


@settings(max_examples=300, deadline=None)
@given(t=middle_instants, days=st.integers(min_value=-100, max_value=100))
def test_end_of_day_lands_at_close_of_a_working_day(t: datetime, days: int) -> None:
    cal = default_calendar()
    due = cal.add_working_days(t, days, EOD)
    assert cal.is_working_day(due.date()) and due.time() == time(17)
    if days > 0:
        assert due.date() > t.date()
    elif days < 0:
        assert due.date() < t.date()
