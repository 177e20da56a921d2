"""``dossier inspect scorecard``: Index-766-style indicators per unit and period, ranked."""

from __future__ import annotations

from datetime import datetime

import click

from dossier_runtime.settings import Settings
from inspection.cliutil import (
    Progress,
    aware,
    date_range,
    emit,
    listing_options,
    nothing_matched,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)
from inspection.scorecard import INDICATORS, LEVELS, PERIODS, ScorecardQuery, compute_scorecard, max_points
from schemas.rendering import table_view

COLUMNS = [
    "period", "rank", "unit_code", "unit_name", "received", "on_time_pct", "late", "apology_pct",
    "apology_timely_pct", "avg_handling_wd", "online_pct", "online_full_pct", "online_partial_pct", "digitised_pct",
    "paid_online_pct", "satisfaction_pct", "avg_rating", "pts_2.1", "pts_3.6", "pts_5.4", "points",
]  # fmt: skip


#: Left out first when the table must fit a terminal (--wide and the machine formats have them all).
HIDE_FIRST = [
    "online_full_pct", "online_partial_pct", "pts_2.1", "pts_3.6", "pts_5.4", "avg_rating", "apology_timely_pct",
    "paid_online_pct", "digitised_pct", "satisfaction_pct", "online_pct", "avg_handling_wd", "apology_pct",
    "unit_name", "period",
]  # fmt: skip


def _legend(width: int | None) -> str:
    """One line per indicator, cut to ``width`` (None: whole); ``--format json`` has every note in full."""
    lines = [f"Indicators (points of {max_points():g} computable; full at ≥ τ, else ratio × max / τ):"]
    for ind in INDICATORS:
        mark = "" if ind.confirmed else "  [UNCONFIRMED]"
        tau = f" τ {ind.tau:.0%}" if ind.tau else ""
        pts = f" max {ind.max_points:g}" if ind.max_points else ""
        line = f"  {ind.id:<14} {ind.column:<20}{tau}{pts}{mark}  {ind.note}"
        lines.append(line if width is None or len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)


@click.command("scorecard")
@click.option("--level", type=click.Choice(LEVELS), default="city", show_default=True, help="Units to score.")
@click.option("--unit", help="Score one unit (with every unit below it), e.g. 000.00.31.H29.")
@click.option("--period", type=click.Choice(PERIODS), help="One row per unit and month, quarter or year.")
@click.option("--procedure", help="Only dossiers of this procedure (MaTTHC).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="Received on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Received on or before (YYYY-MM-DD).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="Judge dossiers still in progress at this instant [default: the latest event].")  # fmt: skip
@click.option("--apology-lead-wd", type=click.IntRange(0, 30), default=1, show_default=True,
              help="A timely apology comes this many working days before the due date (0: HCMC rule).")  # fmt: skip
@listing_options
@quiet_option
@pass_settings
def scorecard_cmd(settings: Settings, level: str, unit: str | None, period: str | None, procedure: str | None,
                  date_from: datetime | None, date_to: datetime | None, as_of: datetime | None,
                  apology_lead_wd: int, fmt: str, quiet: bool) -> None:  # fmt: skip
    """Score units on the Index 766 indicators the events support, ranked.

    A dossier counts for the unit that received it (rolled up to --level) and
    the period of its reception date. 2.1 on time uses the rulebook's exact
    definition (supplement pauses excluded, more than one supplement request
    counts late, dossiers in progress judged at --as-of). Points: full when
    the ratio reaches the threshold τ, otherwise ratio × max / τ. Indicators
    resting on an assumption are marked UNCONFIRMED in the legend.

    \b
    Examples:
      dossier inspect scorecard
      dossier inspect scorecard --level district --period quarter
      dossier inspect scorecard --unit 000.00.31.H29 --period month --format csv
    """
    first, last = date_range(date_from, date_to)
    query = ScorecardQuery(
        level=level,  # type: ignore[arg-type]
        unit=unit or None,
        period=period or "all",  # type: ignore[arg-type]
        procedure=procedure or None,
        date_from=first,
        date_to=last,
        as_of=aware(as_of),
        apology_lead_wd=apology_lead_wd,
    )
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        progress.step(f"scoring {computed_on['dossiers']:,} dossiers")
        card = compute_scorecard(store, query)
    progress.step("done")
    selection = {k: v for k, v in {"level": level if not unit else None, "unit": unit, "period": period,
                 "procedure": procedure, "from": query.date_from, "to": query.date_to}.items() if v}  # fmt: skip
    computed_on = {**computed_on, "as_of": card.as_of.isoformat() if card.as_of else None, **selection,
                   "apology_lead_wd": apology_lead_wd, "units_scored": card.groups}  # fmt: skip
    if not card.rows:
        nothing_matched(selection)
    reach = card.coverage()
    if fmt == "json":
        computed_on["indicators"] = [i.describe() for i in INDICATORS]
    if fmt != "table":
        computed_on["coverage"] = reach
    elif not quiet:
        received = sum(int(r["received"]) for r in card.rows)
        for ind, c in reach.items():
            for why, n in c["not_assessable"].items():
                click.echo(
                    f"{ind}: computed on {c['assessed']:,} of {received:,} dossier(s); {n:,} with {why}", err=True
                )
    width = table_view(fmt).width
    title = f"Scorecard ({unit or level}, {period or 'whole range'})\n{_legend(width)}" if fmt == "table" else None
    columns = COLUMNS if fmt == "table" else [*COLUMNS, "on_time_of", "digitised_of"]  # machines get the bases
    emit(card.rows, fmt, columns=columns, computed_on=computed_on, key="units", title=title, quiet=quiet,
         hide_first=HIDE_FIRST)  # fmt: skip
