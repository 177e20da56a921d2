"""``dossier inspect variants`` and ``dossier inspect flow``: process views of the event log."""

from __future__ import annotations

import click

from dossier_runtime.settings import Settings
from inspection.cliutil import (
    Filters,
    Progress,
    emit,
    filter_options,
    listing_options,
    pass_settings,
    provenance,
    quiet_option,
    reader,
    returned,
)
from inspection.process import ProcessQuery, edges, slow_handovers, variants
from inspection.processmap import drawn
from schemas.rendering import FORMATS, output_options


@click.command("variants")
@click.option("--by", type=click.Choice(["procedure,unit", "procedure", "unit", "all"]), default="procedure,unit",
              show_default=True, help="Count variants per procedure and reception unit, or coarser.")  # fmt: skip
@click.option("--top", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Variants per group.")
@click.option("--with-sync", is_flag=True, help="Keep SyncedToNational events in the paths.")
@listing_options
@quiet_option
@filter_options
@pass_settings
def variants_cmd(settings: Settings, by: str, top: int, with_sync: bool, filters: Filters, fmt: str,
                 quiet: bool) -> None:  # fmt: skip
    """Path variants: the sequences of event types, with their frequencies.

    One path per dossier (event types in seq order), counted per procedure and
    reception unit; the most frequent first, with an example dossier.

    \b
    Examples:
      dossier inspect variants --by all --top 5
      dossier inspect variants --procedure 2.009859 --unit 000.00.31.H29 --format csv
    """
    condition, params = filters.dossier_condition()
    progress = Progress(quiet)
    with reader(settings) as store:
        filters.require(store)
        computed_on = provenance(store)
        progress.step("counting path variants")
        rows = variants(store, ProcessQuery(condition, params, by=by, top=top, with_sync=with_sync))
    keys = {"procedure,unit": ["procedure_code", "unit_code"], "procedure": ["procedure_code"],
            "unit": ["unit_code"], "all": []}[by]  # fmt: skip
    computed_on = {**computed_on, **filters.describe(), "by": by, "top": top}
    emit(rows, fmt, columns=[*keys, "rank", "dossiers", "share_pct", "events", "example_dossier", "variant"],
         computed_on=computed_on, key="variants", title="Path variants", quiet=quiet,
         hide_first=["example_dossier", "share_pct", "events"])  # fmt: skip


@click.command("flow")
@click.option("--view", type=click.Choice(["edges", "handovers"]), default="edges", show_default=True,
              help="Directly-follows edges, or the slowest hand-overs per receiving unit.")  # fmt: skip
@click.option("--top", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="Hand-overs per unit (--view handovers).")  # fmt: skip
@click.option("--with-sync", is_flag=True, help="Keep SyncedToNational events.")
@output_options(formats=(*FORMATS, "dot", "svg"), limit=True,
                help="Output; dot or svg: the edges drawn as a process map.")  # fmt: skip
@quiet_option
@filter_options
@pass_settings
def flow_cmd(settings: Settings, view: str, top: int, with_sync: bool, filters: Filters, fmt: str,
             quiet: bool) -> None:  # fmt: skip
    """Directly-follows graph with waiting times in working hours.

    Edges a > b between consecutive events of a dossier, with their count and
    the waiting time (median, p90, mean) in working hours of the calendar.
    --view handovers lists, per receiving unit, the hand-overs after which the
    dossier waited longest, with the replay command for each.

    \b
    Examples:
      dossier inspect flow
      dossier inspect flow --view handovers --top 3 --unit-level district --format json
      dossier inspect flow --format svg > process-map.svg
    """
    if fmt in ("dot", "svg") and view != "edges":
        raise click.UsageError(f"--format {fmt} draws the edges: use it without --view {view}")
    condition, params = filters.dossier_condition()
    progress = Progress(quiet)
    query = ProcessQuery(condition, params, top=top, with_sync=with_sync)
    with reader(settings) as store:
        filters.require(store)
        computed_on = provenance(store)
        progress.step("building the directly-follows graph")
        rows = edges(store, query) if view == "edges" else slow_handovers(store, query)
    computed_on = {**computed_on, **filters.describe(), "view": view}
    columns = (
        ["from_type", "to_type", "count", "median_wh", "p90_wh", "mean_wh"]
        if view == "edges"
        else ["unit_code", "rank", "dossier_id", "handover_seq", "handover", "from_unit", "next_event", "waited_wh",
              "evidence"]
    )  # fmt: skip
    if fmt in ("dot", "svg"):
        click.echo(drawn(rows, computed_on, fmt), nl=False)
        returned(len(rows))
        return
    emit(rows, fmt, columns=columns, computed_on=computed_on, key=view, title=f"Flow: {view}", quiet=quiet)
