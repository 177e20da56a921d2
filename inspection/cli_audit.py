"""``dossier inspect audit`` and ``dossier inspect rules``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import click

from dossier_runtime.settings import Settings
from inspection.audit import AuditUsageError, RuleRun, as_of_in_calendar, audit, parse_params, select_rules
from inspection.cliutil import (
    Filters,
    Progress,
    emit,
    exit_with_findings,
    filter_options,
    format_option,
    listing_options,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)
from inspection.coverage import NO_CATALOGUE, RuleCoverage, catalogue_blind, catalogue_warning
from schemas.rendering import render, render_records, table_view
from schemas.rulebook import RULES, boundaries, needs
from schemas.workingtime import HCMC_TZ

FINDING_COLUMNS = ("rule", "version", "dossier_id", "unit_code", "actor_id", "evidence_seqs", "explanation")


@click.command("audit")
@click.argument("rule_ids", nargs=-1, metavar="[RULE]...")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A rule parameter (see `rules`).")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="Judge what has not happened yet at this local time [default: the latest event in the selection].",
)
@click.option("--no-fail", is_flag=True, help="Exit 0 even when something is found.")
@listing_options
@quiet_option
@pass_settings
@filter_options
def audit_cmd(
    settings: Settings,
    rule_ids: tuple[str, ...],
    params: tuple[str, ...],
    as_of: datetime | None,
    filters: Filters,
    no_fail: bool,
    fmt: str,
    quiet: bool,
) -> None:
    """Run audit rules (all, or the RULEs named) over the store; one finding per rule and dossier.

    Each finding names the rule and its version, the dossier, its unit, the
    official answering for it (when one person does), the evidence (the seqs
    of the events that prove it: `replay` shows them) and a one-line
    explanation. Rules run in ClickHouse over the whole store; `dossier
    inspect rules` lists them with their legal basis and parameters.
    Exit code 3 when anything is found (0 with --no-fail).

    \b
    Examples:
      dossier inspect audit   # exit 3: findings
      dossier inspect audit R1 R5 --unit 000.00.31.H29 --from 2023-01-01 --to 2023-03-31
      dossier inspect audit R1 --param apology_lead_wd=0 --format json   # exit 3: findings
      dossier inspect audit INTEGRITY-HASH --param full_recompute=1   # exit 3 on the demo's faults
    """
    try:
        rules = select_rules(rule_ids)
        values = parse_params(params)
    except AuditUsageError as exc:
        raise click.UsageError(str(exc)) from None
    as_of_local = as_of.replace(tzinfo=HCMC_TZ) if as_of is not None else None
    if as_of_local is not None and not as_of_in_calendar(as_of_local):
        raise click.BadParameter("the working calendar does not cover that year", param_hint="--as-of")
    progress = Progress(quiet)
    scope, scope_params = filters.dossier_condition()

    def done(run: RuleRun) -> None:
        progress.step(f"{run.rule}: {run.findings:,} finding(s) in {run.seconds:.2f}s")

    with reader(settings) as store:
        filters.require(store)
        computed_on = provenance(store)
        progress.step(f"auditing {computed_on['events']:,} events of {computed_on['dossiers']:,} dossiers")
        report = audit(
            lambda sql, p: store.query(sql, p).rows,
            rules,
            params=values,
            scope=scope,
            scope_params=scope_params,
            as_of=as_of_local,
            on_rule=done,
        )
    computed_on = {
        **computed_on,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "filters": filters.describe(),
        "rules": {run.rule: run.version for run in report.runs},
        "params": dict(report.params),
        **({"integrity": dict(report.integrity)} if report.integrity else {}),
        "coverage": {rule: reach.describe() for rule, reach in report.coverage.items()},
    }
    if fmt == "table":  # the coverage goes to stderr as lines of its own, the header names only the --param given
        del computed_on["coverage"]
        given = {pair.partition("=")[0].strip() for pair in params}
        computed_on["params"] = {name: value for name, value in values.items() if name in given}
        if not quiet:
            _tell_coverage(report.coverage)
    rows = [f.row() for f in report.findings]
    dossiers = len({f.dossier_id for f in report.findings})
    counts = Counter(f.rule for f in report.findings)
    title = (
        f"Audit: {len(rows)} finding(s) in {dossiers} dossier(s): " + ", ".join(f"{r} {n}" for r, n in counts.items())
        if rows
        else f"Audit: no finding ({len(rules)} rule(s))"
    )
    emit(rows, fmt, columns=FINDING_COLUMNS, computed_on=computed_on, key="findings", title=title, quiet=quiet,
         hide_first=("version", "unit_code", "evidence_seqs", "actor_id"))  # fmt: skip
    exit_with_findings(bool(rows), no_fail)


def _tell_coverage(reach: Mapping[str, RuleCoverage]) -> None:
    """On stderr: one line per rule that could not judge every dossier, one warning when no catalogue is loaded."""
    blind = catalogue_blind(reach)
    if blind:
        click.echo(catalogue_warning(blind), err=True)
    for c in reach.values():
        if any(not reason.startswith(NO_CATALOGUE) for reason in c.reasons):
            click.echo(c.line(), err=True)


@click.command("rules")
@click.argument("rule_ids", nargs=-1, metavar="[RULE]...")
@click.option(
    "--full", is_flag=True, help="Also the exact predicate and evidence, the facts needed and the boundary readings."
)
@format_option
def rules_cmd(rule_ids: tuple[str, ...], full: bool, fmt: str) -> None:
    """List the audit rules: id, title, legal basis, version, parameters, and what events cannot express.

    `expressible` is full, partial (the part events cannot carry is named,
    with the reason) or none. `boundaries` (with --full) says how a rule
    reads a limit domain.md states differently or leaves open. Parameters
    are set with `dossier inspect audit --param NAME=VALUE`.

    \b
    Examples:
      dossier inspect rules
      dossier inspect rules R5 R9 --full --format json
    """
    try:
        selected = select_rules(rule_ids)
    except AuditUsageError as exc:
        raise click.UsageError(str(exc)) from None
    rows = []
    for r in (RULES[s.id] for s in selected):
        row = {
            "id": r.id,
            "version": r.version,
            "title": r.title,
            "legal_basis": r.legal_basis,
            "parameters": ", ".join(f"{p.name}={p.default} ({p.unit})" for p in r.params),
            "expressible": r.expressible,
            "not_expressed": r.not_expressed,
        }
        if full or fmt != "table":
            row["predicate"] = r.predicate
            row["evidence"] = r.evidence
            row["parameter_docs"] = {p.name: p.doc for p in r.params}
            row["needs"] = _needs_text(r.id, r.needs_catalogue)
            row["boundaries"] = boundaries(r.id)
        rows.append(row)
    columns = ["id", "version", "title", "legal_basis", "parameters", "expressible", "not_expressed"]
    if full or fmt != "table":
        columns += ["predicate", "evidence", "parameter_docs", "needs", "boundaries"]
    width = table_view(fmt).width
    if fmt == "table" and full:  # prose: a block per rule, wrapped to the terminal
        click.echo(render_records(rows, columns, width))
        return
    click.echo(render(rows, fmt, columns, width=width, hide_first=["version", "parameters", "not_expressed"]))


def _needs_text(rule_id: str, catalogue: bool) -> str:
    """What the rule must know to judge a dossier (it reports the dossiers where it cannot)."""
    parts = [f"{n.fact} on {'/'.join(n.events)}" for n in needs(rule_id)]
    if catalogue:
        parts.append("the procedure's version in force at reception in the catalogue")
    return "; ".join(parts) if parts else "nothing that can be unknown"
