"""``dossier inspect export``: the events of a selection as CSV, JSON Lines, Parquet, XES or OCEL 2.0."""

from __future__ import annotations

from pathlib import Path

import click

from dossier_runtime.outfile import OutputFileError
from dossier_runtime.settings import Settings
from inspection.cliutil import (
    Filters,
    Progress,
    describe_provenance,
    filter_options,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)
from inspection.export import FORMATS, export, opened_output


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="File to write [default: stdout]."
)
@quiet_option
@filter_options
@pass_settings
def export_cmd(settings: Settings, fmt: str, out_path: Path | None, filters: Filters, quiet: bool) -> None:
    """Export the events of a selection, streamed batch by batch.

    csv, jsonl and parquet carry every contract field (hashes as hex). xes is
    an IEEE 1849 log (one trace per dossier; concept:name, time:timestamp,
    org:resource, org:role, org:group, lifecycle:transition). ocel is OCEL 2.0
    JSON with dossiers, units and officials as objects. Parquet needs --out or
    a redirected stdout. Provenance goes to stderr.

    \b
    Examples:
      dossier inspect export --format xes --unit 000.00.31.H29 --out unit31.xes
      dossier inspect export --format ocel --from 2023-01-01 --to 2023-01-31 --out jan.ocel.json
      dossier inspect export --format parquet --out events.parquet
    """
    condition, params = filters.dossier_condition()
    progress = Progress(quiet)
    with reader(settings) as store:
        filters.require(store)
        computed_on = {**provenance(store), **filters.describe()}
        if not quiet:
            click.echo(describe_provenance(computed_on), err=True)
        try:
            with opened_output(out_path, fmt) as out, progress.phase("exporting") as done:
                result = export(store, fmt, out, condition=condition, params=params, source=computed_on,
                                on_batch=done.reach)  # fmt: skip
        except OutputFileError as exc:
            raise click.ClickException(str(exc)) from None
    objects = f", {result.objects:,} objects" if result.objects is not None else ""
    progress.step(f"exported {result.events:,} events{objects} as {fmt}" + (f" to {out_path}" if out_path else ""))
