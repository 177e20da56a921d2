"""How a control sheet reads: as text for an inspector at a terminal, as a dict for machines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from inspection.controlsheet import ControlSheet, StepRow
from schemas.jsonform import format_timestamp
from schemas.rendering import render_table, wrapped
from schemas.textnorm import normalise
from schemas.transitions import status_label
from schemas.workingtime import HCMC_TZ


def _t(value: datetime | None) -> str:
    return value.astimezone(HCMC_TZ).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _wt(value: timedelta | None) -> str:
    """Working time as hours and minutes (8 working hours make a working day)."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    return f"{sign}{minutes // 60}h{minutes % 60:02d}"


def _step_cells(row: StepRow) -> dict[str, Any]:
    return {
        "#": row.number,
        "seq": f"{row.seq}-{row.ended_seq}" if row.ended_seq else f"{row.seq}-",
        "action": row.action.value,
        "from": str(row.giver) if row.giver else "",
        "to": str(row.receiver),
        "handed over": _t(row.handed_over_at),
        "ended": _t(row.ended_at),
        "budget": _wt(row.budget),
        "spent": _wt(row.spent),
        "paused": _wt(row.paused) if row.paused else "",
        "result": row.outcome,
    }


def render_text(sheet: ControlSheet, width: int | None = None) -> str:
    """The sheet for people; the steps' table fits ``width`` (None: every column in full)."""
    first = sheet.events[0] if sheet.events else None
    state = sheet.state
    lines = [f"Phiếu kiểm soát quá trình giải quyết hồ sơ — {sheet.dossier_id}"]
    if first is not None:
        lines.append(
            f"procedure {first.procedure_code}  unit {first.unit_code}  channel {first.channel.value}  "
            f"applicant {first.applicant_ref} ({first.applicant_kind.value})"
        )
    if sheet.as_of or sheet.known_at:
        lines.append(f"view: as of {_t(sheet.as_of) or 'now'}, known at {_t(sheet.known_at) or 'now'}")
    if state is not None:
        lines.append(
            f"status {status_label(state.status)}  received {_t(state.received_at)}  "
            f"due {_t(state.original_due_at)}  current due {_t(state.due_at)}  events {state.events}"
        )
    lines += ["", "Steps (working time, pauses excluded):"]
    columns = list(_step_cells(sheet.steps[0])) if sheet.steps else ["#"]
    # Who handed over is the row above's receiver, when a step ended the next one's hand-over: those go first.
    hide = ["from", "ended", "paused", "seq", "handed over"]
    lines.append(render_table([_step_cells(r) for r in sheet.steps], columns, width, hide_first=hide))
    if sheet.pauses:
        lines += ["", "Pauses (clock stopped):"]
        for pause in sheet.pauses:
            until = f"seq {pause.ended_seq} {_t(pause.ended_at)}" if pause.ended_at else "still open"
            lines.append(f"  {pause.kind}: seq {pause.started_seq} {_t(pause.started_at)} → {until}")
    if sheet.apologies:
        lines += ["", "Apologies (Mẫu 04):"]
        for apology in sheet.apologies:
            timely = (
                "timely" if apology.timely_national else ("by the due date only" if apology.timely_hcmc else "LATE")
            )
            reason = normalise(apology.reason or "") or "no reason given"  # a reason of only NBSPs is none
            lines.append(
                f"  seq {apology.seq} {_t(apology.at)} by {apology.actor}: new date {_t(apology.new_due_at)} "
                f"({timely}); {reason}"
            )
    v = sheet.verdict
    lines += ["", f"Verdict against the original due date: {v.outcome.upper()}"]
    if v.ended_at:
        lines.append(
            f"  ended {_t(v.ended_at)}, adjusted {_t(v.adjusted_end)} (paused {_wt(v.paused)}), "
            f"due {_t(v.original_due_at)}"
        )
    if v.late_by:
        lines.append(f"  late by {_wt(v.late_by)} of working time")
    if v.note:
        lines.append(f"  {v.note}")
    lines += [
        "",
        "Integrity: " + ("seq and hash chain intact" if sheet.chain_intact else f"{len(sheet.problems)} problem(s)"),
    ]
    lines += [f"  {p.kind}: {p}" for p in sheet.problems]
    for event in sheet.backdated:
        lines.append(f"  recorded late: seq {event.seq} {event.event_type.value} happened {_t(event.occurred_at)}, "
                     f"recorded {_t(event.recorded_at)}")  # fmt: skip
    for event in sheet.hidden_by_known_at:
        lines.append(
            f"  not yet known at {_t(sheet.known_at)}: seq {event.seq} {event.event_type.value} "
            f"(recorded {_t(event.recorded_at)})"
        )
    return wrapped("\n".join(lines), width)


def to_dict(sheet: ControlSheet) -> dict[str, Any]:
    """The control sheet as plain JSON-ready data (times ISO 8601 +07:00, durations in minutes)."""

    def ts(value: datetime | None) -> str | None:
        return format_timestamp(value) if value is not None else None

    def minutes(value: timedelta | None) -> int | None:
        return int(value.total_seconds() // 60) if value is not None else None

    v = sheet.verdict
    return {
        "dossier_id": sheet.dossier_id,
        "as_of": ts(sheet.as_of),
        "known_at": ts(sheet.known_at),
        "status": int(sheet.state.status) if sheet.state else None,
        "steps": [
            {
                "number": r.number,
                "seq": r.seq,
                "ended_seq": r.ended_seq,
                "action": r.action.value,
                "from": str(r.giver) if r.giver else None,
                "to": str(r.receiver),
                "handed_over_at": ts(r.handed_over_at),
                "ended_at": ts(r.ended_at),
                "budget_minutes": minutes(r.budget),
                "spent_minutes": minutes(r.spent),
                "paused_minutes": minutes(r.paused),
                "result": r.outcome,
            }
            for r in sheet.steps
        ],
        "pauses": [
            {
                "kind": p.kind,
                "started_seq": p.started_seq,
                "started_at": ts(p.started_at),
                "ended_seq": p.ended_seq,
                "ended_at": ts(p.ended_at),
            }
            for p in sheet.pauses
        ],
        "apologies": [
            {
                "seq": a.seq,
                "at": ts(a.at),
                "new_due_at": ts(a.new_due_at),
                "timely_national": a.timely_national,
                "timely_hcmc": a.timely_hcmc,
                "reason": a.reason,
            }
            for a in sheet.apologies
        ],
        "verdict": {
            "outcome": v.outcome,
            "ended_at": ts(v.ended_at),
            "adjusted_end": ts(v.adjusted_end),
            "original_due_at": ts(v.original_due_at),
            "current_due_at": ts(v.current_due_at),
            "paused_minutes": minutes(v.paused),
            "late_by_minutes": minutes(v.late_by),
            "note": v.note,
        },
        "integrity": {
            "intact": sheet.chain_intact,
            "problems": [{"kind": p.kind, "seq": p.seq, "message": str(p)} for p in sheet.problems],
        },
        "backdated_seqs": [e.seq for e in sheet.backdated],
        "hidden_by_known_at_seqs": [e.seq for e in sheet.hidden_by_known_at],
    }
