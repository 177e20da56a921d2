"""``dossier inspect report --html FILE``: the scorecards, findings, process map and a control sheet as pictures."""

from __future__ import annotations

from pathlib import Path

import click

from dossier_runtime.settings import Settings
from inspection.cliutil import UNIT_LEVELS, Progress, pass_settings, provenance, quiet_option, reader
from inspection.report import ReportQuery, build_report
from inspection.report_html import render_html, write_page


@click.command("report")
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to this HTML file (replaced if it exists).")  # fmt: skip
@click.option("--level", type=click.Choice([lv for lv in UNIT_LEVELS if lv != "city"]), default="district",
              show_default=True, help="Units of the per-unit charts.")  # fmt: skip
@click.option("--dossier", help="Draw this dossier's control sheet [default: a late one with an apology and a pause].")
@quiet_option
@pass_settings
def report_cmd(settings: Settings, html_path: Path, level: str, dossier: str | None, quiet: bool) -> None:
    """Write one self-contained HTML page of pictures: scorecards, findings, process map, a control sheet.

    The city scorecard and the units' (on-time rate, late dossiers, apologies)
    as charts, the findings of every rule by rule and by unit, the process map
    with the waiting times between steps (Graphviz's `dot` draws it; without
    it the page keeps the edges as a table and says so) and a late dossier's
    control sheet as a timeline with its pauses and deadlines. Every figure
    states what it was computed on and the command that gives the same
    numbers. The page loads nothing from the network and runs no script.

    \b
    Examples:
      dossier inspect report --html report.html
      dossier inspect report --html units.html --level department --dossier 000.00.06.H29-231121-0001
    """
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        try:
            report = build_report(store, ReportQuery(level=level, dossier=dossier), computed_on, progress.step)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    page, warnings = render_html(report)
    for warning in warnings if not quiet else ():
        click.echo(f"warning: {warning}", err=True)
    try:
        write_page(page, html_path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {html_path}: {exc.strerror or exc}") from None
    progress.step(f"wrote {html_path} ({len(page.encode()) / 1024:,.0f} KiB)")
