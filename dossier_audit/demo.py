"""``dossier demo``: a guided run of what dossier-audit can do on this machine.

The demo shows the contract at work on one realistic dossier: its due date
from the working-time calendar, its history as contract events, the
lifecycle fold that rebuilds its state, the hash chain that exposes a
tampered field, and the schema compatibility proof. It grows as the
pipeline does (simulate → Kafka → ClickHouse → inspection report).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import click

from dossier_runtime.settings import Settings
from schemas.errors import LifecycleError
from schemas.events import (
    ActorRole,
    ApplicantKind,
    Channel,
    DeadlineConvention,
    DossierEvent,
    EventType,
    ServiceLevel,
    TimeLimitUnit,
)
from schemas.hashchain import seal_chain
from schemas.jsonform import format_timestamp, to_json_line
from schemas.lifecycle import check_history, replay
from schemas.pseudonym import applicant_ref
from schemas.registry import released_schemas
from schemas.schemacheck import check_released
from schemas.workingtime import HCMC_TZ, default_calendar

DEMO_KEY = b"dossier-audit-demo-key-not-secret"
UNIT = "000.00.31.H29"
DOSSIER = f"{UNIT}-240207-0042"


def sample_history() -> list[DossierEvent]:
    """An online land-registration dossier received before Tết 2024, late, with a timely apology."""
    cal = default_calendar()
    received = datetime(2024, 2, 7, 16, 0, tzinfo=HCMC_TZ)
    due = cal.due_at(received, 3, TimeLimitUnit.WORKING_DAYS, DeadlineConvention.WORKING_HOURS)
    new_due = cal.add_working_days(due, 2)
    common = {
        "dossier_id": DOSSIER,
        "procedure_code": "1.001776",
        "rule_set": "ND61-2018",
        "applicant_ref": applicant_ref("079203000123", DEMO_KEY),
        "applicant_kind": ApplicantKind.INDIVIDUAL,
        "channel": Channel.ONLINE,
    }
    steps: list[tuple[EventType, datetime, str, ActorRole, int, dict[str, object]]] = [
        (EventType.DOSSIER_SUBMITTED, received - timedelta(hours=5), "cd-8812", ActorRole.APPLICANT, 1, {}),
        (EventType.DOSSIER_RECEIVED, received, "tn-0101", ActorRole.RECEPTION_OFFICER, 2, {
            "due_at": due, "time_limit_value": 3, "time_limit_unit": TimeLimitUnit.WORKING_DAYS,
            "deadline_convention": DeadlineConvention.WORKING_HOURS, "service_level": ServiceLevel.FULL_ONLINE,
            "form_code": "TT01-2018:01",
        }),
        (EventType.DOSSIER_TRANSFERRED, received + timedelta(minutes=40), "tn-0101", ActorRole.RECEPTION_OFFICER, 4, {
            "due_at": due, "to_unit": UNIT, "to_actor": "cv-0417", "to_role": ActorRole.CASE_OFFICER,
        }),
        (EventType.APOLOGY_ISSUED, cal.add_working_days(due, -2), "ld-0007", ActorRole.LEADER, 4, {
            "due_at": new_due, "new_due_at": new_due, "reason": "Chờ ý kiến cơ quan phối hợp",
        }),
        (EventType.RESULT_ISSUED, new_due - timedelta(hours=3), "vt-0033", ActorRole.CLERK, 9, {
            "due_at": new_due, "result_ref": "KQ-2024-0042", "result_electronic": True,
        }),
        (EventType.RESULT_RETURNED, new_due - timedelta(hours=1), "tn-0101", ActorRole.RECEPTION_OFFICER, 10, {
            "due_at": new_due, "return_channel": Channel.ONLINE,
        }),
    ]  # fmt: skip
    events = [
        DossierEvent(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{DOSSIER}/{seq}")),
            seq=seq,
            event_type=event_type,
            occurred_at=at,
            recorded_at=at + timedelta(seconds=4),
            unit_code=UNIT,
            actor_id=actor,
            actor_role=role,
            status=status,
            **common,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        for seq, (event_type, at, actor, role, status, fields) in enumerate(steps, start=1)
    ]
    return list(seal_chain(events))


def _lines(data_dir: Path) -> Iterator[str]:
    yield "dossier-audit demo: the event contract at work"
    yield ""
    report = check_released()
    for schema in released_schemas():
        yield f"  schema v{schema.version}  fingerprint {schema.fingerprint_hex}"
    status = "FULL_TRANSITIVE holds" if report.ok else f"{len(report.problems)} problems"
    yield f"  compatibility: {status} ({report.payloads_checked} golden payloads)"
    yield ""
    events = sample_history()
    received = events[1]
    explanation = default_calendar().explain_due(received.occurred_at, days=3)
    yield f"Dossier {DOSSIER}, received {format_timestamp(received.occurred_at)}, limit 3 working days"
    skipped = ", ".join(sorted({d.day.isoformat() for d in explanation.skipped if d.kind == "day_off"}))
    yield f"  due {format_timestamp(explanation.due_at)} (Tết days off skipped: {skipped})"
    state = replay(events)
    holder = state.holder
    held_by = f"{holder.actor_id} ({holder.role}, {holder.unit_code})" if holder else "nobody"
    yield f"  {len(events)} events, status {state.status.label}, last held by {held_by}"
    yield f"  original due {format_timestamp(state.original_due_at)}, current due {format_timestamp(state.due_at)}"
    verdict = (
        "late" if state.ended_at and state.original_due_at and state.ended_at > state.original_due_at else "on time"
    )
    yield f"  result ready {format_timestamp(state.done_at)}: {verdict} against the original due date"
    yield f"  apologies: {state.apology_count} (an apology does not turn a late dossier into an on-time one)"
    out = data_dir / "demo" / "sample-dossier.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(to_json_line(e) + "\n" for e in events), encoding="utf-8")
    yield f"  history written as JSON Lines to {out}"
    yield ""
    tampered = [*events[:4], events[4].replace(occurred_at=events[4].occurred_at - timedelta(days=3)), *events[5:]]
    problems: list[LifecycleError] = check_history(tampered)
    yield "Backdating the result by 3 days without re-sealing the chain:"
    for problem in problems:
        yield f"  detected: {problem.kind}: {problem}"
    yield ""
    yield "Next: dossier schema fields --type ApologyIssued | dossier calendar show 2025 | dossier calendar due --help"


@click.command("demo")
@click.pass_obj
def demo_cmd(settings: Settings) -> None:
    """Run the end-to-end demonstration on the embedded stack.

    \b
    Example:
      dossier demo
    """
    for line in _lines(settings.data_dir):
        click.echo(line)
