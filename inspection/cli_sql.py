"""``dossier inspect sql``: read-only ad-hoc queries with bound parameters."""

from __future__ import annotations

import re
from typing import ClassVar

import click

from dossier_runtime.settings import Settings
from dossier_runtime.sqlguard import MEMORY_RANGE, ROWS_TO_READ_RANGE, TIMEOUT_RANGE, ConsoleLimits
from inspection.adhoc import DEFAULT_MAX_ROWS, AdhocQueryError, parse_params, run_query
from inspection.cliutil import Progress, emit, format_option, pass_settings, provenance, quiet_option, reader


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic in recent click
    """A size such as ``512M`` or ``4G`` (powers of 1024), within bounds."""

    name = "SIZE"
    _UNITS: ClassVar[dict[str, int]] = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            size = value
        else:
            match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", str(value), re.IGNORECASE)
            if match is None:
                self.fail(f"{value!r} is not a size such as 512M or 4G", param, ctx)
            size = int(match.group(1)) * self._UNITS[match.group(2).upper()]
        if not self.low <= size <= self.high:
            self.fail(f"{value} is outside {self.low // 1024**2}M to {self.high // 1024**3}G", param, ctx)
        return size


@click.command("sql")
@click.argument("query")
@click.option(
    "--param",
    "param_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Value of the query's {NAME:Type} placeholder, bound server-side (repeatable).",
)
@click.option(
    "--max-rows", type=click.IntRange(1), default=DEFAULT_MAX_ROWS, show_default=True, help="Stop after this many rows."
)
@click.option(
    "--timeout",
    type=click.IntRange(*TIMEOUT_RANGE),
    default=ConsoleLimits.timeout_s,
    show_default=True,
    help="Seconds the query may run.",
)
@click.option(
    "--max-memory",
    type=ByteSize(*MEMORY_RANGE),
    default="4G",
    show_default=True,
    help="Memory the query may use (64M to 16G).",
)
@click.option(
    "--max-rows-to-read",
    type=click.IntRange(*ROWS_TO_READ_RANGE),
    default=ConsoleLimits.max_rows_to_read,
    show_default=True,
    help="Rows the query may read from the store.",
)
@format_option
@quiet_option
@pass_settings
def sql_cmd(
    settings: Settings,
    query: str,
    param_pairs: tuple[str, ...],
    max_rows: int,
    timeout: int,
    max_memory: int,
    max_rows_to_read: int,
    fmt: str,
    quiet: bool,
) -> None:
    """Run one read-only SQL query over the store.

    Values go in {name:Type} placeholders and come from --param name=value:
    ClickHouse parses each value as the placeholder's type, so a value never
    becomes SQL. Only reading statements run (SELECT/WITH, EXPLAIN, SHOW
    TABLES, SHOW COLUMNS, DESCRIBE), over the store's own tables, with pure
    functions and the generators numbers()/values(); anything else (writes,
    SETTINGS, INTO OUTFILE, file(), url(), system tables …) is refused with
    a sentence naming it (exit 1). Each query runs under --timeout,
    --max-memory and --max-rows-to-read. Tables: events, dossier_state,
    daily_counts_view, units, officials, procedures.

    \b
    Examples:
      dossier inspect sql "SELECT event_type, count() AS n FROM events GROUP BY event_type ORDER BY n DESC"
      dossier inspect sql "SELECT seq, event_type, occurred_at FROM events \\
        WHERE dossier_id = {id:String} ORDER BY seq" --param id=000.00.06.H29-230209-0001 --format csv
    """
    try:
        params = parse_params(param_pairs)
    except AdhocQueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store, dossiers=False)
        progress.step("running the query")
        try:
            limits = ConsoleLimits(timeout, max_memory, max_rows_to_read, max_rows)
            out = run_query(store, query, params, limits=limits)
        except AdhocQueryError as exc:
            raise click.ClickException(str(exc)) from None
    columns = list(out.result.column_names)
    rows = out.result.named()
    computed_on = {**computed_on, "query": query, "params": params, "rows": len(rows)}
    if out.truncated:
        computed_on["truncated_at"] = out.max_rows
        if not quiet:
            click.echo(f"stopped at {out.max_rows:,} rows; raise --max-rows or use `dossier inspect export`", err=True)
    title = f"{len(rows):,} row(s)" + (" (truncated)" if out.truncated else "")
    emit(rows, fmt, columns=columns, computed_on=computed_on, key="rows", title=title, quiet=quiet)
