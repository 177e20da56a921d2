"""``dossier inspect report --html``: the inspector's pictures, gathered from the commands' own functions.

Every section is computed by the library function behind a command, called
as that command calls it with its default options, and carries the
``computed_on`` record that command would print:

* the city scorecard and the units' one (``scorecard`` and ``scorecard --level``),
* the findings of every rule (``audit``), counted by rule and by unit,
* the process map (``flow``: the directly-follows edges),
* one late dossier's control sheet (``replay``).

So a number in the report is the number the command gives; the browser test
compares them. :mod:`inspection.report_html` writes the page.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from dossier_runtime.store import Store
from inspection.audit import AuditReport, audit, select_rules
from inspection.controlsheet import ControlSheet, build_control_sheet
from inspection.history import load_history
from inspection.process import ProcessQuery, edges
from inspection.scorecard import ScorecardQuery, compute_scorecard
from schemas.rulebook import RULE_IDS

#: How many dossiers with an apology and a pause are tried for one that finished late (one query each).
LATE_CANDIDATES: Final = 30


@dataclasses.dataclass(frozen=True)
class ReportQuery:
    level: str = "district"  # the units of the per-unit charts (scorecard --level)
    dossier: str | None = None  # the control sheet to draw [default: a late dossier with an apology and a pause]
    now: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


@dataclasses.dataclass(frozen=True)
class Section:
    """A report section's rows and what they were computed on (as its command states it)."""

    rows: list[dict[str, Any]]
    computed_on: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Report:
    provenance: dict[str, Any]
    city: Section
    units: Section
    findings_by_rule: Section
    findings_by_unit: Section
    flow: Section
    sheet: ControlSheet | None
    sheet_computed_on: dict[str, Any]
    generated_at: datetime
    level: str


def _scorecard(store: Store, provenance: dict[str, Any], level: str) -> Section:
    """What ``scorecard --level LEVEL --format json`` prints (without the indicators' legend)."""
    card = compute_scorecard(store, ScorecardQuery(level=level))  # type: ignore[arg-type]
    computed_on = {
        **provenance,
        "as_of": card.as_of.isoformat() if card.as_of else None,
        "level": level,
        "apology_lead_wd": card.query.apology_lead_wd,
        "units_scored": card.groups,
        "coverage": card.coverage(),
    }
    return Section(card.rows, computed_on)


def _audit(store: Store, provenance: dict[str, Any]) -> tuple[AuditReport, dict[str, Any]]:
    """Every rule, as ``audit --format json`` runs them (as of the latest event)."""
    report = audit(lambda sql, p: store.query(sql, p).rows, select_rules(()))
    computed_on = {
        **provenance,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "filters": {},
        "rules": {run.rule: run.version for run in report.runs},
        "params": dict(report.params),
        **({"integrity": dict(report.integrity)} if report.integrity else {}),
        "coverage": {rule: reach.describe() for rule, reach in report.coverage.items()},
    }
    return report, computed_on


def unit_names(store: Store) -> dict[str, str]:
    rows = store.query("SELECT unit_code, argMax(name, valid_from) FROM units FINAL GROUP BY unit_code").rows
    return {str(code): str(name) for code, name in rows}


def _findings(report: AuditReport, computed_on: dict[str, Any], names: dict[str, str]) -> tuple[Section, Section]:
    by_rule = Counter(f.rule for f in report.findings)
    dossiers: dict[str, set[str]] = {}
    for f in report.findings:
        dossiers.setdefault(f.rule, set()).add(f.dossier_id)
    order = {rule: i for i, rule in enumerate(RULE_IDS)}
    rule_rows = [
        {
            "rule": run.rule,
            "version": run.version,
            "findings": by_rule[run.rule],
            "dossiers": len(dossiers.get(run.rule, ())),
        }
        for run in sorted(report.runs, key=lambda r: (order.get(r.rule, len(order)), r.rule))
    ]
    by_unit = Counter(f.unit_code for f in report.findings)
    unit_rows = [
        {"unit_code": unit, "unit_name": names.get(unit, ""), "findings": n}
        for unit, n in sorted(by_unit.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return Section(rule_rows, computed_on), Section(unit_rows, computed_on)


def _flow(store: Store, provenance: dict[str, Any]) -> Section:
    """What ``flow --format json`` prints: the directly-follows edges with their waiting times."""
    return Section(edges(store, ProcessQuery()), {**provenance, "view": "edges"})


#: Dossiers whose result was issued after the due date given at reception (wall clock; the control sheet then
#: judges in working time, pauses excluded), those with an apology and a pause first.
_LATE_SQL: Final = """
SELECT dossier_id FROM events
WHERE event_type IN ('DossierReceived', 'ResultIssued', 'ApologyIssued', 'SupplementRequested',
    'FinancialObligationRequested')
GROUP BY dossier_id
HAVING countIf(event_type = 'ResultIssued') > 0
    AND maxIf(occurred_at, event_type = 'ResultIssued') > minIf(due_at, event_type = 'DossierReceived')
ORDER BY countIf(event_type = 'ApologyIssued') > 0 DESC,
    countIf(event_type IN ('SupplementRequested', 'FinancialObligationRequested')) > 0 DESC, dossier_id
LIMIT {n:UInt32}
"""


def late_dossier(store: Store, now: datetime) -> str | None:
    """A dossier that finished late, with an apology and a pause where one exists: the kind replayed first."""
    first = None
    for (dossier_id,) in store.query(_LATE_SQL, {"n": LATE_CANDIDATES}).rows:
        sheet = build_control_sheet(load_history(store, str(dossier_id)), now=now)
        if sheet.verdict.outcome == "late":
            return str(dossier_id)
        first = first or str(dossier_id)
    return first


def build_report(
    store: Store, query: ReportQuery, provenance: dict[str, Any], step: Callable[[str], None] = lambda _: None
) -> Report:
    """Everything the page shows; ``provenance`` is :func:`inspection.cliutil.provenance` of ``store``."""
    step("scoring the city and its units")
    city = _scorecard(store, provenance, "city")
    units = _scorecard(store, provenance, query.level)
    step("running every audit rule")
    report, audit_on = _audit(store, provenance)
    by_rule, by_unit = _findings(report, audit_on, unit_names(store))
    step("building the process map")
    flow = _flow(store, provenance)
    step("replaying a late dossier")
    dossier = query.dossier or late_dossier(store, query.now)
    sheet = None
    if dossier is not None:
        events = load_history(store, dossier)
        if not events:
            raise LookupError(f"no events of dossier {dossier!r} in the store ({store.location})")
        sheet = build_control_sheet(events, now=query.now)
    sheet_on = {**provenance, "dossier_id": dossier}
    return Report(provenance, city, units, by_rule, by_unit, flow, sheet, sheet_on, query.now, query.level)
