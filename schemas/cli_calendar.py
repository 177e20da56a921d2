"""``dossier calendar …``: working-time questions (due dates, elapsed working time, days off).

Commands parse, call :mod:`schemas.workingtime` and render. Exit codes: 0 ok,
1 a year the calendar has no data for, 2 bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from schemas.errors import CalendarError
from schemas.events import DeadlineConvention
from schemas.rendering import output_options, render_table, table_view, wrapped
from schemas.workingcalendar_data import CalendarEntry, calendar_entries, year_coverage
from schemas.workingtime import (
    DEFAULT_WORKING_HOURS,
    HCMC_TZ,
    CalendarCoverageError,
    NamedDay,
    WorkingCalendar,
    WorkingHours,
    default_calendar,
)

F = TypeVar("F", bound=Callable[..., Any])
CONVENTIONS = {"working-hours": DeadlineConvention.WORKING_HOURS, "end-of-day": DeadlineConvention.END_OF_DAY}
TIME_HELP = "ISO 8601; without an offset the time is Asia/Ho_Chi_Minh local time."


class InstantType(click.ParamType):  # type: ignore[type-arg]  # generic in recent click
    """An ISO 8601 time; a time without an offset is read as Ho Chi Minh City local time."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2024-02-07T16:00 or 2024-02-07T09:00Z)", param, ctx)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=HCMC_TZ)


class WorkingHoursType(click.ParamType):  # type: ignore[type-arg]
    name = "PERIODS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> WorkingHours:
        if isinstance(value, WorkingHours):
            return value
        try:
            return WorkingHours.parse(str(value))
        except CalendarError as exc:
            self.fail(str(exc), param, ctx)


INSTANT = InstantType()

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)


def working_hours_option(f: F) -> F:
    return click.option(
        "--working-hours",
        "working_hours",
        type=WorkingHoursType(),
        envvar="DOSSIER_WORKING_HOURS",
        default=None,
        help=f"Daily working periods [default: {DEFAULT_WORKING_HOURS}] [env DOSSIER_WORKING_HOURS].",
    )(f)


def _calendar(hours: WorkingHours | None) -> WorkingCalendar:
    """The default calendar unless hours were given here or to the umbrella `dossier --working-hours`."""
    if hours is None:
        ctx = click.get_current_context(silent=True)
        spec = getattr(ctx.find_root().obj, "working_hours", None) if ctx else None
        if isinstance(spec, str) and spec:
            hours = WorkingHoursType().convert(spec, None, ctx)
    if hours is None or hours == DEFAULT_WORKING_HOURS:
        return default_calendar()
    return WorkingCalendar(hours=hours)


@contextmanager
def _calendar_errors() -> Iterator[None]:
    """Uncovered years are an operational error (exit 1); anything else the calendar refuses is bad input."""
    try:
        yield
    except CalendarCoverageError as exc:
        raise click.ClickException(str(exc)[0].upper() + str(exc)[1:]) from exc
    except CalendarError as exc:
        raise click.UsageError(str(exc)) from exc


def _iso(t: datetime) -> str:
    return t.astimezone(HCMC_TZ).isoformat()


def _day_row(d: NamedDay) -> dict[str, str]:
    return {"date": d.day.isoformat(), "weekday": f"{d.day:%a}", "kind": d.kind, "name": d.name}


def _emit(fmt: str, payload: Mapping[str, Any], text: Callable[[], str]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2) if fmt == "json" else text())


def _hours_text(delta: timedelta) -> str:
    minutes = round(delta / timedelta(minutes=1))
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    return f"{sign}{minutes // 60} h {minutes % 60:02d} min"


@click.group("calendar")
def calendar_group() -> None:
    """Working time in Asia/Ho_Chi_Minh: due dates, elapsed working time, days off.

    Working days are Monday–Friday minus holidays, compensatory days and swapped
    days off, plus announced make-up Saturdays (schemas/data/vn_working_calendar.json).

    \b
    Examples:
      dossier calendar due 2024-02-07T16:00 --days 3
      dossier calendar between 2024-02-07T16:00 2024-02-19T16:00
      dossier calendar show 2025
    """


@calendar_group.command("due")
@click.argument("received_at", type=INSTANT)
@click.option("--days", type=int, default=None, help="Working days in the time limit (may be negative).")
@click.option("--hours", type=float, default=None, help="Working hours, added to --days (working-hours convention).")
@click.option(
    "--convention",
    type=click.Choice(list(CONVENTIONS)),
    default="working-hours",
    show_default=True,
    help="working-hours: same clock time N working days later (deployed software); "
    "end-of-day: reception day not counted, ends at the end of working hours of the N-th working day "
    "(Civil Code art. 147-148).",
)
@working_hours_option
@format_option
def due_cmd(
    received_at: datetime,
    days: int | None,
    hours: float | None,
    convention: str,
    working_hours: WorkingHours | None,
    fmt: str,
) -> None:
    """The due date (NgayHenTra) of a limit in working days/hours from RECEIVED_AT.

    RECEIVED_AT is ISO 8601; without an offset it is Asia/Ho_Chi_Minh local time.

    \b
    Example:
      dossier calendar due 2024-02-07T16:00 --days 3
      # -> 2024-02-19T16:00:00+07:00 (Tết 8-14/2/2024 skipped)
    """
    if days is None and hours is None:
        raise click.UsageError("give the limit with --days N and/or --hours H")
    calendar = _calendar(working_hours)
    with _calendar_errors():
        result = calendar.explain_due(
            received_at, days=days or 0, hours=hours or 0.0, convention=CONVENTIONS[convention]
        )
    payload = {
        "due_at": _iso(result.due_at),
        "received_at": _iso(result.received_at),
        "counting_from": _iso(result.counting_from),
        "days": result.days,
        "hours": result.hours,
        "convention": convention,
        "working_hours": str(calendar.hours),
        "skipped_days": [_day_row(d) for d in result.skipped],
        "makeup_days_worked": [_day_row(d) for d in result.makeup_days_worked],
    }

    def text() -> str:
        lines = [
            f"Due at:         {payload['due_at']} ({result.due_at:%a})",
            f"Received at:    {payload['received_at']} ({result.received_at:%a})",
            f"Counting from:  {payload['counting_from']}",
            f"Limit:          {result.days} working day(s) + {result.hours:g} working hour(s), {convention} "
            f"convention, working hours {calendar.hours}",
        ]
        for label, rows in (("Skipped:", result.skipped), ("Make-up days:", result.makeup_days_worked)):
            for i, d in enumerate(rows):
                lines.append(f"{label if i == 0 else '':<15} {d.day} {d.day:%a}  {d.name}")
        return "\n".join(lines)

    _emit(fmt, payload, text)


@calendar_group.command("between")
@click.argument("start", type=INSTANT)
@click.argument("end", type=INSTANT)
@working_hours_option
@format_option
def between_cmd(start: datetime, end: datetime, working_hours: WorkingHours | None, fmt: str) -> None:
    """Working time from START to END (negative when END is before START).

    Times are ISO 8601; without an offset they are Asia/Ho_Chi_Minh local time.

    \b
    Example:
      dossier calendar between 2024-02-07T16:00 2024-02-19T16:00
      # -> 24 h 00 min (1440 min; 3 working days of 8 h)
    """
    calendar = _calendar(working_hours)
    with _calendar_errors():
        worked = calendar.working_time_between(start, end)
    per_day = calendar.hours.per_day
    payload = {
        "start": _iso(start),
        "end": _iso(end),
        "working_time": _hours_text(worked),
        "hours": worked / timedelta(hours=1),
        "minutes": worked / timedelta(minutes=1),
        "working_days": worked / per_day,
        "hours_per_working_day": per_day / timedelta(hours=1),
    }
    _emit(
        fmt,
        payload,
        lambda: (
            f"Working time from {payload['start']} to {payload['end']}: {payload['working_time']} "
            f"({payload['minutes']:g} min; {payload['working_days']:g} working days "
            f"of {payload['hours_per_working_day']:g} h)"
        ),
    )


def _entry_row(entry: CalendarEntry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "date": entry.day.isoformat(),
        "weekday": f"{entry.day:%a}",
        "kind": entry.kind,
        "name_vi": entry.name_vi,
        "name_en": entry.name_en,
        "on_weekend": entry.on_weekend,
        "confidence": entry.confidence,
        "source": entry.source,
    }
    if entry.note:
        row["note"] = entry.note
    return row


@calendar_group.command("show")
@click.argument("year", type=click.IntRange(1, 9999))
@output_options(formats=("text", "json"))
def show_cmd(year: int, fmt: str) -> None:
    """A year's days off and make-up working days, with names and sources.

    Holidays that fell on a weekend are listed too (on_weekend); the weekday off
    that replaces them is the following "compensatory" entry.

    \b
    Example:
      dossier calendar show 2024 --format json
    """
    with _calendar_errors():
        entries = calendar_entries(year)
    coverage = year_coverage(year)
    days_off = [_entry_row(e) for e in entries if e.kind != "makeup_workday"]
    makeup = [_entry_row(e) for e in entries if e.kind == "makeup_workday"]
    payload: dict[str, Any] = {"year": year, "days_off": days_off, "makeup_workdays": makeup}
    payload["sources"] = list(coverage.sources) if coverage else []
    if coverage and coverage.note:
        payload["note"] = coverage.note

    def text() -> str:
        width = table_view().width
        # Sources are long: the table names each by number and lists them under it.
        numbered = list(dict.fromkeys(str(r["source"]) for r in [*days_off, *makeup] if r.get("source")))
        for row in [*days_off, *makeup]:
            row["src"] = f"[{numbered.index(str(row['source'])) + 1}]" if row.get("source") else ""
        columns = ["date", "weekday", "kind", "name_vi", "name_en", "confidence", "src"]
        hide = ["name_en", "confidence"]
        parts = [f"Days off in {year}:", render_table(days_off, columns, width, hide_first=hide)]
        made_up = render_table(makeup, columns, width, hide_first=hide) if makeup else "(none)"
        parts += [f"\nMake-up working days in {year}:", made_up, "\nSources:"]
        parts += [wrapped(f"  [{i}] {source}", width) for i, source in enumerate(numbered, 1)]
        parts += [f"  {source}" for source in payload["sources"] if source not in numbered]
        if coverage and coverage.note:
            parts.append(wrapped(f"\nNote: {coverage.note}", width))
        return "\n".join(parts)

    _emit(fmt, payload, text)
