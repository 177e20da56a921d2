"""``dossier inspect accountability``: steps, time held and delay per official, unit, or pair of units."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import click

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection.accountability import AccountabilityQuery, compute_accountability
from inspection.cliutil import (
    Filters,
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

HOLDER_COLUMNS = [
    "rank", "steps", "in_progress", "held_wh", "late_steps", "late_pct", "delay_wh", "late_dossiers",
    "findings", "findings_by_rule", "worst_delay_wh", "evidence",
]  # fmt: skip
COLUMNS = {
    "official": ["actor_id", "role", "unit_code", *HOLDER_COLUMNS],
    "unit": ["unit_code", *HOLDER_COLUMNS],
    "pair": ["rank", "from_unit", "to_unit", "handovers", "first_action_median_wh", "first_action_p90_wh",
             "in_unit_median_wh", "in_unit_p90_wh", "late_stays", "late_pct", "worst_delay_wh", "evidence"],
}  # fmt: skip
#: Left out first when a table must fit a terminal (every column is in --wide and the machine formats).
HIDE_FIRST = {
    "official": ["in_progress", "late_steps", "late_dossiers", "findings", "worst_delay_wh", "role", "evidence"],
    "unit": ["in_progress", "late_steps", "late_dossiers", "findings", "worst_delay_wh", "evidence"],
    "pair": ["first_action_p90_wh", "in_unit_p90_wh", "worst_delay_wh", "evidence"],
}


def _findings(store: Store, filters: Filters) -> Any:
    """The audit's findings over the same selection, as (rule, unit_code, actor_id)."""
    from inspection.audit import audit, select_rules  # the audit library (another module's concern)

    condition, params = filters.dossier_condition()

    def run() -> Iterable[tuple[str, str, str | None]]:
        report = audit(lambda sql, p: store.query(sql, p).rows, select_rules([]), scope=condition, scope_params=params)
        return [(f.rule, f.unit_code, f.actor_id) for f in report.findings]

    return run


@click.command("accountability")
@click.option("--by", type=click.Choice(["official", "unit", "pair"]), default="official", show_default=True,
              help="Rows per official, per unit, or per pair of units (coordination).")  # fmt: skip
@click.option("--unit", help="Only steps held in this unit (pairs: to or from it).")
@click.option("--procedure", help="Only dossiers of this procedure (MaTTHC).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="Steps handed over on or after.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Steps handed over on or before.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="Steps still open are counted up to this instant [default: the latest event].")  # fmt: skip
@click.option("--findings/--no-findings", default=True, show_default=True,
              help="Count the audit's findings by rule per official or unit (runs every rule).")  # fmt: skip
@listing_options
@quiet_option
@pass_settings
def accountability_cmd(settings: Settings, by: str, unit: str | None, procedure: str | None,
                       date_from: datetime | None, date_to: datetime | None, as_of: datetime | None, findings: bool,
                       fmt: str, quiet: bool) -> None:  # fmt: skip
    """Who held the dossiers, for how long, and who made them late.

    Steps are the control sheet's (replay): held by the receiver from the
    hand-over until the next hand-over or the result, pauses excluded. A late
    step's delay (working time past its budget) is charged to whoever held the
    dossier then, not to the last one in a chain. --by pair shows coordination
    between units: hand-overs, working time to the receiving unit's first
    action and in the receiving unit (median, p90), share of stays with a late
    step. Ranked by delay; `evidence` is the replay command for the worst case.

    \b
    Examples:
      dossier inspect accountability --from 2023-01-01 --to 2023-03-31 --limit 20
      dossier inspect accountability --by unit --no-findings
      dossier inspect accountability --by pair --unit 000.00.05.H29 --format csv
    """
    first, last = date_range(date_from, date_to)
    query = AccountabilityQuery(
        by=by,  # type: ignore[arg-type]
        unit=unit or None,
        procedure=procedure or None,
        date_from=first,
        date_to=last,
        as_of=aware(as_of),
    )
    progress = Progress(quiet)
    with reader(settings) as store:
        computed_on = provenance(store)
        progress.step(f"attributing the steps of {computed_on['dossiers']:,} dossiers")
        scope = Filters(procedure=query.procedure)
        hook = _findings(store, scope) if findings and by != "pair" else None
        report = compute_accountability(store, query, hook)
    progress.step("done")
    selection = {k: v for k, v in {"by": by, "unit": unit, "procedure": procedure, "from": query.date_from,
                 "to": query.date_to}.items() if v}  # fmt: skip
    computed_on = {**computed_on, "as_of": report.as_of.isoformat() if report.as_of else None, **selection,
                   "findings_from": report.findings_hook}  # fmt: skip
    if not report.rows:
        nothing_matched(selection)
    columns = [c for c in COLUMNS[by] if findings or not c.startswith("findings")]
    emit(report.rows, fmt, columns=columns, computed_on=computed_on, key="rows", title=f"Accountability by {by}",
         quiet=quiet, hide_first=HIDE_FIRST[by])  # fmt: skip
