"""The Vietnamese civil-service calendar as data: holidays, compensatory days, swaps.

Why data and not rules: the days off of công chức are not derivable from the
Labour Code alone. Each year the government announces the Tết break, the
compensatory days (nghỉ bù) and working-day swaps (hoán đổi, with a make-up
Saturday, "làm bù"), so the calendar is a table that must be extended every
year (``schemas/data/vn_working_calendar.json``). A year that is not in the
table is refused rather than guessed: a guessed calendar silently moves due
dates, which is worse for an audit than an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

from schemas.errors import CalendarError

CALENDAR_RESOURCE = ("data", "vn_working_calendar.json")
ENTRY_KINDS = frozenset({"holiday", "compensatory", "swap_off", "makeup_workday"})


class CalendarCoverageError(CalendarError):
    """A date in a year the calendar has no holiday data for."""

    def __init__(self, year: int, covered: Iterable[int]) -> None:
        self.year = year
        self.covered = frozenset(covered)
        super().__init__(
            f"the working calendar has no holiday data for {year}; "
            f"it covers {describe_years(self.covered)}. Add the year's announced days off to "
            "schemas/data/vn_working_calendar.json to use it."
        )


@dataclass(frozen=True)
class CalendarData:
    """What the arithmetic needs: exceptions to the Monday–Friday week, per covered year."""

    days_off: Mapping[date, str]  # weekdays that are not worked (holidays, compensatory, swapped-off)
    makeup_days: Mapping[date, str]  # weekend days that ARE worked
    years: frozenset[int]  # years the data covers


@dataclass(frozen=True)
class CalendarEntry:
    """One row of the published table, with where it comes from (for `dossier calendar show`)."""

    day: date
    kind: str  # holiday | compensatory | swap_off | makeup_workday
    name_vi: str
    name_en: str
    source: str
    confidence: str  # confirmed | recalled
    note: str | None = None

    @property
    def name(self) -> str:
        return f"{self.name_vi} / {self.name_en}"

    @property
    def on_weekend(self) -> bool:
        return self.day.weekday() >= 5


@dataclass(frozen=True)
class YearCoverage:
    year: int
    covered: bool
    sources: tuple[str, ...]
    note: str | None


def describe_years(years: Iterable[int]) -> str:
    """'2018–2026' or '2018–2020, 2023' — for messages that tell the user what is available."""
    ordered = sorted(set(years))
    if not ordered:
        return "no years"
    runs: list[tuple[int, int]] = []
    for y in ordered:
        if runs and y == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], y)
        else:
            runs.append((y, y))
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def _read_document() -> dict[str, Any]:
    resource = files("schemas").joinpath(*CALENDAR_RESOURCE)
    document: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return document


def _parse_entry(raw: Mapping[str, Any]) -> CalendarEntry:
    kind = str(raw["kind"])
    if kind not in ENTRY_KINDS:
        raise CalendarError(f"calendar entry {raw.get('date')}: unknown kind {kind!r}")
    entry = CalendarEntry(
        day=date.fromisoformat(str(raw["date"])),
        kind=kind,
        name_vi=str(raw["name_vi"]),
        name_en=str(raw["name_en"]),
        source=str(raw["source"]),
        confidence=str(raw["confidence"]),
        note=None if raw.get("note") is None else str(raw["note"]),
    )
    if kind == "makeup_workday" and not entry.on_weekend:
        raise CalendarError(f"calendar entry {entry.day}: a make-up working day must be a Saturday or Sunday")
    if kind in ("compensatory", "swap_off") and entry.on_weekend:
        raise CalendarError(f"calendar entry {entry.day}: a {kind} day must be a weekday")
    return entry


@lru_cache(maxsize=1)
def load_calendar_entries() -> tuple[CalendarEntry, ...]:
    """Every published entry, sorted by date (including holidays that fell on a weekend)."""
    entries = sorted((_parse_entry(raw) for raw in _read_document()["entries"]), key=lambda e: e.day)
    return tuple(entries)


@lru_cache(maxsize=1)
def load_year_coverage() -> tuple[YearCoverage, ...]:
    return tuple(
        YearCoverage(
            year=int(raw["year"]),
            covered=bool(raw["covered"]),
            sources=tuple(str(s) for s in raw.get("sources", ())),
            note=None if raw.get("note") is None else str(raw["note"]),
        )
        for raw in _read_document()["years"]
    )


@lru_cache(maxsize=1)
def load_vietnam_calendar() -> CalendarData:
    """The Vietnamese civil-service calendar (cached; the JSON is read once per process)."""
    return calendar_data_from_entries(load_calendar_entries(), (c.year for c in load_year_coverage() if c.covered))


def calendar_data_from_entries(entries: Iterable[CalendarEntry], years: Iterable[int]) -> CalendarData:
    """Reduce entries to the two exception tables; a holiday on a weekend changes nothing by itself."""
    days_off: dict[date, str] = {}
    makeup: dict[date, str] = {}
    for entry in entries:
        if entry.kind == "makeup_workday":
            makeup[entry.day] = entry.name
        elif not entry.on_weekend:
            days_off[entry.day] = entry.name
    return CalendarData(
        days_off=MappingProxyType(days_off),
        makeup_days=MappingProxyType(makeup),
        years=frozenset(years),
    )


def calendar_entries(year: int) -> tuple[CalendarEntry, ...]:
    """The published entries of one covered year; CalendarCoverageError otherwise."""
    covered = load_vietnam_calendar().years
    if year not in covered:
        raise CalendarCoverageError(year, covered)
    return tuple(e for e in load_calendar_entries() if e.day.year == year)


def year_coverage(year: int) -> YearCoverage | None:
    return next((c for c in load_year_coverage() if c.year == year), None)
