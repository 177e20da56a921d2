"""Rendering rows for every ``dossier`` command: one table on a terminal, JSON/JSONL/CSV for machines.

Every command that prints data uses :func:`render` with the ``--format`` the
user chose, so output options behave the same everywhere. Data goes to
stdout; progress and warnings to stderr (the commands' business).

The table is for people, so it fits the screen: :func:`table_width` is
``COLUMNS`` when set, else the width of the terminal stdout is, else
:data:`DEFAULT_WIDTH` (a pipe, a file, a test). Prose columns (cells with
spaces, or wider than :data:`LONG`) are cut with ``…``; identifiers, codes, times and numbers never are; when
even that is too wide, the columns a command names (else the rightmost) are
left out and named under the table. ``--wide`` prints every column in full.
A listing shows its first :data:`DEFAULT_LIMIT` rows in the table format and
says how many more there are (``--limit N``, ``--limit 0`` for all). Machine
formats are never fitted, and limited only by an explicit ``--limit``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, TypeVar

import click

FORMATS: Final = ("table", "json", "jsonl", "csv")
#: Width of a table when stdout is no terminal and ``COLUMNS`` is not set.
DEFAULT_WIDTH: Final = 100
#: Rows of a listing in the table format unless ``--limit`` says otherwise.
DEFAULT_LIMIT: Final = 50
#: A prose column is never cut narrower than this (nor than its header).
MIN_CUT: Final = 30
#: A column of single words is cut only when wider than this (identifiers, codes and times are narrower).
LONG: Final = 40
ELLIPSIS: Final = "…"
_VIEW_KEY: Final = "dossier.output"

F = TypeVar("F", bound=Callable[..., Any])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def table_width() -> int:
    """``COLUMNS`` if set, else the terminal's width when stdout is one, else :data:`DEFAULT_WIDTH`."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return max(int(env), 20)
    try:
        if sys.stdout.isatty():
            return max(os.get_terminal_size(sys.stdout.fileno()).columns, 20)
    except (AttributeError, ValueError, OSError):  # a replaced stdout without a descriptor: not a terminal
        pass
    return DEFAULT_WIDTH


@dataclasses.dataclass(frozen=True)
class TableView:
    """How the table format is cut for people: ``width`` None is ``--wide``, ``limit`` None is every row."""

    width: int | None
    limit: int | None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def _fit(
    columns: Sequence[str], natural: Sequence[int], prose: Sequence[bool], width: int, hide_first: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Which columns to show (indexes) and their widths, so a line is at most ``width`` characters.

    Prose columns share a common cap (water-filling): narrow ones keep their width, the widest are cut. When
    even every prose column at its floor is too wide, columns are left out: ``hide_first`` ones, then the rightmost.
    """
    floor = [min(n, max(MIN_CUT, len(c))) if p else n for c, n, p in zip(columns, natural, prose, strict=True)]
    shown = list(range(len(columns)))
    order = [columns.index(c) for c in hide_first if c in columns] + list(reversed(shown))

    def total(cap: int) -> int:
        widths = [max(floor[i], min(natural[i], cap)) if prose[i] else natural[i] for i in shown]
        return sum(widths) + 2 * (len(widths) - 1)

    hidden: list[int] = []
    for victim in order:
        if total(0) <= width or len(shown) == 1:
            break
        if victim in shown:
            shown.remove(victim)
            hidden.append(victim)
    for back in reversed(hidden):  # the most important of those left out, again, where one still fits
        shown = sorted([*shown, back])
        if total(0) > width:
            shown.remove(back)
    low, high = 0, max(natural)
    while low < high:  # the widest cap that fits
        mid = (low + high + 1) // 2
        low, high = (mid, high) if total(mid) <= width else (low, mid - 1)
    return shown, [max(floor[i], min(natural[i], low)) if prose[i] else natural[i] for i in shown]


def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    width: int | None = None,
    *,
    hide_first: Sequence[str] = (),
) -> str:
    """A plain aligned text table; numbers right-aligned; at most ``width`` characters a line when given."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    natural = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), int | float) for row in rows if row.get(c) is not None) for c in columns]
    shown = list(range(len(columns)))
    widths = natural
    if width is not None and sum(natural) + 2 * (len(columns) - 1) > width:
        prose = [not numeric[i] and (natural[i] > LONG or any(" " in r[i] for r in cells)) for i in range(len(columns))]
        shown, widths = _fit(columns, natural, prose, width, hide_first)

    def line(values: Sequence[str]) -> str:
        parts = [
            _cut(values[i], w).rjust(w) if numeric[i] else _cut(values[i], w).ljust(w)
            for i, w in zip(shown, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    hidden = [c for i, c in enumerate(columns) if i not in shown]
    if hidden:
        out.append(wrapped(f"({len(hidden)} more column(s): {', '.join(hidden)}; --wide shows every column)", width))
    return "\n".join(out)


def _human(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_human(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_human(v) for v in value)
    return "" if value is None else str(value)


def render_records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int | None = None) -> str:
    """One block per row, a ``name  value`` line per column, long values wrapped to ``width``: prose for people."""
    label = max((len(c) for c in columns), default=0) + 2
    blocks = []
    for row in rows:
        lines = []
        for c in columns:
            text = _human(row.get(c))
            if not text:
                continue
            if width is None:
                lines.append(f"{c:<{label}}{text}")
                continue
            wrapped = textwrap.wrap(text, max(width - label, 20), break_on_hyphens=False) or [""]
            lines.append(f"{c:<{label}}{wrapped[0]}")
            lines.extend(" " * label + more for more in wrapped[1:])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def wrapped(text: str, width: int | None) -> str:
    """``text`` with each line wrapped to ``width`` (None: as is), continuation lines indented under the first."""
    if width is None:
        return text
    out = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        out.extend(textwrap.wrap(line, max(width, 20), subsequent_indent=lead + "  ", break_on_hyphens=False) or [line])
    return "\n".join(out)


def limited(rows: Sequence[Mapping[str, Any]], limit: int | None) -> tuple[Sequence[Mapping[str, Any]], str | None]:
    """The first ``limit`` rows and the line that says how many more there are (None when none are left out)."""
    if limit is None or len(rows) <= limit:
        return rows, None
    return rows[:limit], f"({len(rows) - limit:,} more; use --limit 0 for all)"


def render(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[str] | None = None,
    *,
    width: int | None = None,
    hide_first: Sequence[str] = (),
) -> str:
    """Rows in ``fmt`` (one of :data:`FORMATS`), with a stable column order; a table at most ``width`` wide."""
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    if fmt == "json":
        return json.dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], ensure_ascii=False, indent=2)
    if fmt == "jsonl":
        return "\n".join(json.dumps({c: _plain(r.get(c)) for c in columns}, ensure_ascii=False) for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(r.get(c)) for c in columns] for r in rows])
        return buf.getvalue().rstrip("\n")
    if fmt == "table":
        return render_table(rows, columns, width, hide_first=hide_first)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault(_VIEW_KEY, {})[name] = value
        return value

    return callback


def output_options(
    *, formats: Sequence[str] = FORMATS, limit: bool = False, help: str | None = None
) -> Callable[[F], F]:
    """``--format`` (the command receives ``fmt``), ``--wide`` and, for listings, ``--limit``: one set everywhere.

    ``--wide`` and ``--limit`` reach the rendering through the click context (:func:`table_view`), so a command's
    signature only carries ``fmt``.
    """

    def decorate(func: F) -> F:
        if limit:
            func = click.option(
                "--limit",
                type=click.IntRange(0),
                expose_value=False,
                callback=_remember("limit"),
                help=f"At most N rows (0: all) [default: {DEFAULT_LIMIT} in a table, all in other formats].",
            )(func)
        func = click.option(
            "--wide",
            is_flag=True,
            expose_value=False,
            callback=_remember("wide"),
            help="A table with every column in full, however wide (default: fit the terminal, or COLUMNS).",
        )(func)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(list(formats)),
            default=formats[0],
            show_default=True,
            help=help or f"Output: {formats[0]} for people; {', '.join(formats[1:])} for machines.",
        )(func)

    return decorate


def table_view(fmt: str = "table") -> TableView:
    """The current command's ``--wide``/``--limit`` for ``fmt`` (outside a command: every column, every row)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return TableView(width=None, limit=None)
    chosen = ctx.meta.get(_VIEW_KEY, {})
    width = None if chosen.get("wide") or fmt != "table" else table_width()
    limit = chosen.get("limit")
    if limit is None:
        limit = DEFAULT_LIMIT if "limit" in chosen and fmt == "table" else 0
    return TableView(width=width, limit=limit or None)
