"""``dossier inspect sql``: read-only ad-hoc queries with bound parameters."""

from __future__ import annotations

import click

from dossier_runtime.settings import Settings
from inspection.adhoc import DEFAULT_MAX_ROWS, AdhocQueryError, parse_params, run_query
from inspection.cliutil import Progress, emit, format_option, pass_settings, provenance, quiet_option, reader


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
@format_option
@quiet_option
@pass_settings
def sql_cmd(settings: Settings, query: str, param_pairs: tuple[str, ...], max_rows: int, fmt: str, quiet: bool) -> None:
    """Run one read-only SQL query over the store.

    Values go in {name:Type} placeholders and come from --param name=value:
    ClickHouse parses each value as the placeholder's type, so a value never
    becomes SQL. The session is read-only: a statement that would change the
    store is refused (exit 1), as are INTO OUTFILE and table functions that
    read files or the network. Tables: events, dossier_state,
    daily_counts_view, units, officials, procedures.

    \b
    Examples:
      dossier inspect sql "SELECT event_type, count() AS n FROM events GROUP BY event_type ORDER BY n DESC"
      dossier inspect sql "SELECT seq, event_type, occurred_at FROM events
        WHERE dossier_id = {id:String} ORDER BY seq" --param id=000.00.31.H29-240207-0042 --format csv
    """
    try:
        params = parse_params(param_pairs)
    except AdhocQueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        progress.step("running the query")
        try:
            out = run_query(store, query, params, max_rows=max_rows)
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
