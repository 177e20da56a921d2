"""The report as one self-contained HTML page: inline SVG figures, inline CSS, no script, nothing fetched.

Each figure carries a caption saying what it was computed on (the short
version) and, folded, the full ``computed_on`` record of the command that
gives the same numbers. Beside each chart its data sit in a table whose
cells keep the command's JSON value in ``data-value``, so the numbers on
the page can be checked against the command's output.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Final

from dossier_runtime.store import Store
from inspection import charts
from inspection.cliutil import provenance
from inspection.controlsheet import ControlSheet
from inspection.controlsheet_view import to_dict
from inspection.processmap import GraphvizMissingError, caption, inline_svg, to_svg
from inspection.report import Report, ReportQuery, Section, build_report
from schemas.workingtime import HCMC_TZ

UNIT_COLUMNS: Final = (
    "unit_code",
    "unit_name",
    "received",
    "on_time_pct",
    "late",
    "apology_pct",
    "apology_timely_pct",
    "avg_handling_wd",
)
CITY_TILES: Final = (
    ("received", "dossiers received"),
    ("on_time_pct", "2.1 handled early or on time, %"),
    ("late", "late dossiers"),
    ("apology_pct", "late dossiers with an apology, %"),
    ("apology_timely_pct", "of which timely, %"),
    ("avg_handling_wd", "2.2 average handling, working days"),
    ("points", "points (confirmed indicators)"),
)
TOP_UNITS: Final = 15


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _short_name(name: str) -> str:
    return name.replace("Ủy ban nhân dân ", "UBND ")


def _local(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(HCMC_TZ).strftime("%Y-%m-%d %H:%M")


def provenance_text(computed_on: Mapping[str, Any]) -> str:
    """The short human version: how much data, where, up to when, and the selection."""
    parts = [
        f"{computed_on.get('events', 0):,} events of {computed_on.get('dossiers', 0):,} dossiers in "
        f"{computed_on.get('store', '?')}"
    ]
    parts.append(f"last event recorded {_local(computed_on.get('last_recorded_at'))} (+07:00)")
    if computed_on.get("as_of"):
        parts.append(f"dossiers in progress judged as of {_local(computed_on['as_of'])}")
    for key in ("level", "view", "dossier_id"):
        if computed_on.get(key):
            parts.append(f"{key.replace('_', ' ')} {computed_on[key]}")
    if computed_on.get("rules"):
        versions = sorted(set(computed_on["rules"].values()))
        parts.append(f"{len(computed_on['rules'])} rules (version {', '.join(map(str, versions))})")
    if computed_on.get("kafka_offsets"):
        parts.append(f"Kafka offsets up to {max(computed_on['kafka_offsets'].values()):,}")
    return "; ".join(parts)


def _caption(computed_on: Mapping[str, Any], command: str) -> str:
    record = json.dumps(computed_on, ensure_ascii=False, indent=1, default=str)
    return (
        f'<figcaption data-computed-on="{_e(json.dumps(computed_on, ensure_ascii=False, default=str))}">'
        f"Computed on {_e(provenance_text(computed_on))}. Same numbers: <code>{_e(command)}</code>"
        f"<details><summary>full record (computed_on)</summary><pre>{_e(record)}</pre></details></figcaption>"
    )


def _cell(column: str, value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    shown = "—" if value is None else (f"{value:,}" if isinstance(value, int) and numeric else str(value))
    data = json.dumps(value, ensure_ascii=False, default=str)
    return f'<td data-col="{_e(column)}" data-value="{_e(data)}"{" class=n" if numeric else ""}>{_e(shown)}</td>'


def table(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, folded: str | None = None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, r.get(c)) for c in columns) + "</tr>" for r in rows)
    out = f'<table data-table="{_e(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f"<details><summary>{_e(folded)}</summary>{out}</details>" if folded else out


def _figure(fid: str, content: str, computed_on: Mapping[str, Any], command: str) -> str:
    return f'<figure id="{_e(fid)}" data-figure="{_e(fid)}">{content}{_caption(computed_on, command)}</figure>'


def _city(section: Section) -> str:
    row = section.rows[0] if section.rows else {}
    tiles = "".join(
        f'<div class="tile" data-tile="{_e(col)}" data-value="{_e(json.dumps(row.get(col)))}">'
        f'<div class="v">{_e("—" if row.get(col) is None else f"{row[col]:,}")}</div>'
        f'<div class="k">{_e(label)}</div></div>'
        for col, label in CITY_TILES
    )
    body = f'<div class="tiles">{tiles}</div>' if row else '<p class="note">No dossier in the store.</p>'
    return "<h2 id=city>City scorecard (Index 766-style)</h2>" + _figure(
        "city", body, section.computed_on, "dossier inspect scorecard --format json"
    )


def _units(section: Section, level: str) -> str:
    command = f"dossier inspect scorecard --level {level} --format json"
    rows = section.rows
    if not rows:
        return (
            f'<h2 id=units>Units ({_e(level)})</h2><p class="note">No unit of level {_e(level)} received a dossier.</p>'
        )
    label = {r["unit_code"]: f"{_short_name(str(r['unit_name'] or r['unit_code']))}" for r in rows}
    worst = sorted(rows, key=lambda r: (r["on_time_pct"] if r["on_time_pct"] is not None else 101, r["unit_code"]))
    worst = worst[:TOP_UNITS][::-1]  # pygal draws the first label at the bottom
    on_time = charts.hbar(
        f"2.1 handled early or on time, % (the {len(worst)} lowest)",
        [label[r["unit_code"]] for r in worst],
        {"on time %": [r["on_time_pct"] for r in worst]},
        unit=" %",
        max_value=100,
    )
    late_rows = sorted((r for r in rows if r["late"]), key=lambda r: (-int(r["late"]), r["unit_code"]))[:TOP_UNITS][
        ::-1
    ]
    late = charts.hbar(
        "Late dossiers by unit",
        [label[r["unit_code"]] for r in late_rows],
        {"late dossiers": [r["late"] for r in late_rows]},
        colours=["#d73027"],
    )
    apologies = charts.hbar(
        "Apologies (Mẫu 04) for late dossiers, %",
        [label[r["unit_code"]] for r in late_rows],
        {
            "with an apology": [r["apology_pct"] for r in late_rows],
            "with a timely apology": [r["apology_timely_pct"] for r in late_rows],
        },
        unit=" %",
        max_value=100,
        colours=["#4a6fa5", "#1a9850"],
    )
    if not late_rows:
        late = apologies = '<p class="note">No unit has a late dossier.</p>'
    data = table("units", rows, UNIT_COLUMNS, folded=f"data: all {len(rows)} units of level {level}")
    return (
        f"<h2 id=units>Units ({_e(level)}): on-time rate, lateness, apologies</h2>"
        + _figure("units-on-time", on_time, section.computed_on, command)
        + _figure("units-late", late, section.computed_on, command)
        + _figure("units-apologies", apologies + data, section.computed_on, command)
    )


def _findings(by_rule: Section, by_unit: Section) -> str:
    command = "dossier inspect audit --format json --no-fail"
    total = sum(r["findings"] for r in by_rule.rows)
    rules = charts.hbar(
        f"Findings by rule ({total:,} in all)",
        [r["rule"] for r in by_rule.rows][::-1],
        {"findings": [r["findings"] for r in by_rule.rows][::-1]},
        colours=["#7b1fa2"],
    )
    top = by_unit.rows[:TOP_UNITS]
    units = charts.hbar(
        f"Findings by unit (the {len(top)} with most, of {len(by_unit.rows)})",
        [f"{_short_name(r['unit_name'] or r['unit_code'])} ({r['unit_code']})" for r in top][::-1],
        {"findings": [r["findings"] for r in top][::-1]},
        colours=["#7b1fa2"],
    )
    if not by_unit.rows:
        units = '<p class="note">No finding.</p>'
    return (
        "<h2 id=findings>Findings by rule and by unit</h2>"
        + _figure(
            "findings-by-rule",
            rules
            + table(
                "findings_by_rule",
                by_rule.rows,
                ["rule", "version", "findings", "dossiers"],
                folded="data: findings per rule",
            ),
            by_rule.computed_on,
            command,
        )
        + _figure(
            "findings-by-unit",
            units
            + table(
                "findings_by_unit",
                by_unit.rows,
                ["unit_code", "unit_name", "findings"],
                folded=f"data: all {len(by_unit.rows)} units",
            ),
            by_unit.computed_on,
            command,
        )
    )


def _flow(section: Section) -> tuple[str, str | None]:
    """The process map section, and a warning when Graphviz is missing (the edges are then a table only)."""
    warning = None
    try:
        drawing = inline_svg(to_svg(section.rows, section.computed_on))
    except GraphvizMissingError as exc:
        warning = str(exc)
        drawing = f'<p class="note">{_e(warning)}. The edges are in the table below.</p>'
    legend = (
        "Edges: how often one event directly followed another, and the median (p90) waiting time in working "
        "hours; thicker for more, green to red for short to long waits. " + caption(section.computed_on)
    )
    data = table(
        "flow",
        section.rows,
        ["from_type", "to_type", "count", "median_wh", "p90_wh", "mean_wh"],
        folded=f"data: {len(section.rows)} edges",
    )
    body = f"<p><small>{_e(legend)}</small></p>{drawing}{data}"
    return (
        "<h2 id=flow>Process map with waiting times</h2>"
        + _figure("flow", body, section.computed_on, "dossier inspect flow --format json"),
        warning,
    )


def _sheet(sheet: ControlSheet | None, computed_on: Mapping[str, Any], now: datetime) -> str:
    if sheet is None:
        return "<h2 id=sheet>Control sheet</h2><p class=note>No dossier with an apology or a pause in the store.</p>"
    doc = to_dict(sheet)
    v = sheet.verdict
    end_default = v.ended_at or max((e.occurred_at for e in sheet.events), default=now)
    rows = [
        (
            f"#{r.number} {r.action.value} → {r.receiver.actor_id or r.receiver.unit_code}",
            r.handed_over_at,
            r.ended_at or end_default,
            r.outcome,
            r.step_due_at,
        )
        for r in sheet.steps
    ]
    pauses = [(str(p.kind), p.started_at, p.ended_at or end_default) for p in sheet.pauses]
    deadlines = [("original due date", v.original_due_at, "due")] if v.original_due_at else []
    deadlines += [
        (f"new date (apology, seq {a.seq})", a.new_due_at, "apology") for a in sheet.apologies if a.new_due_at
    ]
    minutes = int(v.late_by.total_seconds() // 60)
    title = f"{sheet.dossier_id}: {v.outcome}" + (
        f" by {minutes // 60}h{minutes % 60:02d} of working time" if minutes else ""
    )
    drawing = charts.timeline(title, rows, pauses, deadlines)
    verdict = {
        k: doc["verdict"][k] for k in ("outcome", "original_due_at", "ended_at", "late_by_minutes", "paused_minutes")
    }
    steps = table(
        "sheet_steps",
        doc["steps"],
        [
            "number",
            "seq",
            "action",
            "from",
            "to",
            "handed_over_at",
            "ended_at",
            "budget_minutes",
            "spent_minutes",
            "paused_minutes",
            "result",
        ],
        folded="data: the control sheet's steps",
    )
    body = (
        "<p><small>One bar per control-sheet step, from hand-over to the next, coloured by its result against the "
        "step's budget (green early or on time, red late, grey no budget); dots mark each step's deadline, the "
        "solid line the original due date, dashed lines the new dates of apologies, the orange bar the time the "
        "clock stood still (supplement, financial obligation).</small></p>"
        + drawing
        + table("sheet_verdict", [verdict], list(verdict))
        + (
            table("sheet_pauses", doc["pauses"], ["kind", "started_seq", "started_at", "ended_seq", "ended_at"])
            if doc["pauses"]
            else "<p><small>No pause: the clock never stopped.</small></p>"
        )
        + steps
    )
    heading = "Control sheet of a late dossier" if v.outcome == "late" else f"Control sheet of a dossier ({v.outcome})"
    return f"<h2 id=sheet>{_e(heading)}</h2>" + _figure(
        "sheet", body, computed_on, f"dossier inspect replay {sheet.dossier_id} --format json"
    )


def render_html(report: Report) -> tuple[str, list[str]]:
    """The page, and the warnings to tell the user (a figure that could not be drawn)."""
    flow, warning = _flow(report.flow)
    sections = [
        _city(report.city),
        _units(report.units, report.level),
        _findings(report.findings_by_rule, report.findings_by_unit),
        flow,
        _sheet(report.sheet, report.sheet_computed_on, report.generated_at),
    ]
    nav = " ".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("city", "City"),
            ("units", "Units"),
            ("findings", "Findings"),
            ("flow", "Process map"),
            ("sheet", "Control sheet"),
        )
    )
    template = Template(resources.files("inspection").joinpath("templates/report.html").read_text(encoding="utf-8"))
    page = template.substitute(
        title="dossier-audit: inspection report",
        subtitle=_e("Computed on " + provenance_text(report.provenance) + "."),
        nav=nav,
        sections="\n".join(sections),
        generated=_e(report.generated_at.astimezone(HCMC_TZ).strftime("%Y-%m-%d %H:%M %z")),
    )
    return page, [warning] if warning else []


def write_page(page: str, path: Path) -> None:
    """Replace ``path`` with ``page`` at once (a reader never sees half a report)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_report(store: Store, path: Path, query: ReportQuery | None = None) -> list[str]:
    """Build the report of ``store`` and write it to ``path``; the warnings to tell (the demo's entry point)."""
    page, warnings = render_html(build_report(store, query or ReportQuery(), provenance(store)))
    write_page(page, path)
    return warnings
