"""A realistic late dossier (received before Tết 2024, apologised, finished late), for tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

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
from schemas.pseudonym import applicant_ref
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
