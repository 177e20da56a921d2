"""Build valid, sealed dossier histories for tests.

``make_event`` fills a valid envelope and the fields the event type requires
(domain-plausible values: a Hồ Chí Minh City ward dossier handled by one
reception officer, one case officer, one leader and one clerk), so a test
names only what it is about::

    events = history(
        (EventType.DOSSIER_SUBMITTED, 1),
        (EventType.DOSSIER_RECEIVED, 2, {"due_at": T0 + timedelta(days=3)}),
        (EventType.DOSSIER_TRANSFERRED, 4),
    )

Events are deterministic (event_id derives from dossier and seq), so hashes
are stable across runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import (
    ActorRole,
    ApplicantKind,
    Channel,
    DeadlineConvention,
    DossierEvent,
    EventType,
    PaymentChannel,
    ServiceLevel,
    TimeLimitUnit,
)
from schemas.hashchain import seal_chain

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DOSSIER_ID = "000.00.31.H29-240115-0001"
UNIT = "000.00.31.H29"
OTHER_UNIT = "000.00.32.H29"
#: Default time of seq 1; seq n defaults to T0 + 10 minutes x (n - 1).
T0 = datetime(2024, 1, 15, 8, 0, tzinfo=VN)

_NAMESPACE = uuid.UUID("6f1c1d2e-5a4b-4c3d-9e8f-7a6b5c4d3e2f")

E = EventType

#: Default actor per event type (actor_id, role): who normally does it (domain.md §a).
ACTORS: Mapping[EventType, tuple[str, ActorRole]] = {
    **dict.fromkeys(
        (E.DOSSIER_SUBMITTED, E.FEE_PAID, E.FINANCIAL_OBLIGATION_FULFILLED, E.WITHDRAWAL_REQUESTED),
        ("cd-0001", ActorRole.APPLICANT),
    ),
    **dict.fromkeys((E.RESULT_COLLECTED, E.CITIZEN_RATED, E.FEEDBACK_FILED), ("cd-0001", ActorRole.APPLICANT)),
    **dict.fromkeys(
        (
            E.RECEPTION_GUIDANCE_ISSUED,
            E.DOSSIER_RECEIVED,
            E.RECEPTION_REFUSED,
            E.DOSSIER_DIGITIZED,
            E.DOSSIER_TRANSFERRED,
            E.SUPPLEMENT_RECEIVED,
            E.APPLICANT_NOTIFIED,
            E.RESULT_RETURNED,
        ),
        ("tn-01", ActorRole.RECEPTION_OFFICER),
    ),
    **dict.fromkeys(
        (
            E.STEP_HANDED_OVER,
            E.STEP_RETURNED,
            E.INTER_AGENCY_TRANSFERRED,
            E.SUPPLEMENT_REQUESTED,
            E.FINANCIAL_OBLIGATION_REQUESTED,
            E.APOLOGY_ISSUED,
            E.WITHDRAWAL_DECLINED,
        ),
        ("cv-01", ActorRole.CASE_OFFICER),
    ),
    **dict.fromkeys((E.PROCESSING_STOPPED, E.RESULT_APPROVED), ("ld-01", ActorRole.LEADER)),
    E.RESULT_ISSUED: ("vt-01", ActorRole.CLERK),
    **dict.fromkeys((E.RESULT_RECALLED, E.ADMIN_OVERRIDE), ("admin-01", ActorRole.ADMIN)),
    E.SYNCED_TO_NATIONAL: ("dvcqg-sync", ActorRole.SYSTEM),
}

_HANDOVER_TO_CV = {"to_unit": UNIT, "to_actor": "cv-01", "to_role": ActorRole.CASE_OFFICER}

#: The fields each type requires (EVENT_FIELDS), with plausible values.
REQUIRED: Mapping[EventType, Mapping[str, Any]] = {
    E.RECEPTION_GUIDANCE_ISSUED: {"requested_documents": ("Bản sao CCCD",)},
    E.DOSSIER_RECEIVED: {
        "time_limit_value": 3,
        "time_limit_unit": TimeLimitUnit.WORKING_DAYS,
        "deadline_convention": DeadlineConvention.WORKING_HOURS,
        "service_level": ServiceLevel.FULL_ONLINE,
    },
    E.RECEPTION_REFUSED: {"reason": "Hồ sơ không thuộc thẩm quyền giải quyết"},
    E.DOSSIER_DIGITIZED: {"documents": ("don-de-nghi.pdf",)},
    E.FEE_PAID: {"amount_vnd": 50_000, "payment_channel": PaymentChannel.NATIONAL_PORTAL},
    E.DOSSIER_TRANSFERRED: _HANDOVER_TO_CV,
    E.STEP_HANDED_OVER: {"to_unit": UNIT, "to_actor": "ld-01", "to_role": ActorRole.LEADER},
    E.STEP_RETURNED: {**_HANDOVER_TO_CV, "reason": "Cần thẩm tra lại"},
    E.INTER_AGENCY_TRANSFERRED: {"to_unit": OTHER_UNIT},
    E.SUPPLEMENT_REQUESTED: {"requested_documents": ("Giấy xác nhận cư trú",), "reason": "Thiếu giấy tờ"},
    E.FINANCIAL_OBLIGATION_REQUESTED: {"amount_vnd": 1_200_000, "clock_stopped": True},
    E.FINANCIAL_OBLIGATION_FULFILLED: {"amount_vnd": 1_200_000},
    E.APOLOGY_ISSUED: {"reason": "Chờ ý kiến cơ quan phối hợp"},  # new_due_at: at + 2 days
    E.WITHDRAWAL_DECLINED: {"reason": "Đã có kết quả thẩm định"},
    E.PROCESSING_STOPPED: {"reason": "Công dân rút hồ sơ"},
    E.RESULT_ISSUED: {"result_ref": "123/GCN-UBND", "result_electronic": True},
    E.APPLICANT_NOTIFIED: {"return_channel": Channel.ONLINE, "reason": "Kết quả đã sẵn sàng"},
    E.RESULT_RETURNED: {"return_channel": Channel.ONLINE},
    E.RESULT_RECALLED: {"reason": "Kết quả ghi sai thông tin"},
    E.ADMIN_OVERRIDE: {"override_field": "due_at", "reason": "Đặt lại ngày hẹn trả"},
    E.CITIZEN_RATED: {"rating": 5},
    E.FEEDBACK_FILED: {"reason": "Thái độ phục vụ tốt"},
}

#: A step of :func:`history`: (type, status), (type, status, fields) or a ready event.
Step = tuple[EventType, int] | tuple[EventType, int, Mapping[str, Any]] | DossierEvent


def make_event(
    event_type: EventType,
    *,
    seq: int,
    status: int,
    dossier_id: str = DOSSIER_ID,
    at: datetime | None = None,
    **fields: Any,
) -> DossierEvent:
    """A valid, unsealed event (hashes zero). ``fields`` override any default; None removes one."""
    occurred = at if at is not None else T0 + timedelta(minutes=10 * (seq - 1))
    actor_id, role = ACTORS.get(event_type, ("admin-01", ActorRole.ADMIN))
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{dossier_id}/{seq}")),
        "dossier_id": dossier_id,
        "seq": seq,
        "event_type": event_type,
        "occurred_at": occurred,
        "recorded_at": occurred,
        "unit_code": UNIT,
        "actor_id": actor_id,
        "actor_role": role,
        "procedure_code": "1.001612",
        "rule_set": "ND61-2018",
        "applicant_ref": "CCCD-079090000001",
        "applicant_kind": ApplicantKind.INDIVIDUAL,
        "channel": Channel.ONLINE,
        "status": status,
        **REQUIRED.get(event_type, {}),
    }
    if event_type is E.APOLOGY_ISSUED:
        values["new_due_at"] = occurred + timedelta(days=2)
    if event_type is E.SYNCED_TO_NATIONAL and seq > 1:
        values["ref_seq"] = seq - 1
    values.update(fields)
    values = {name: value for name, value in values.items() if value is not None}
    return DossierEvent(**values)


def history(*steps: Step, dossier_id: str = DOSSIER_ID) -> list[DossierEvent]:
    """Number the steps seq 1.. and seal them into a valid hash chain.

    A ready :class:`DossierEvent` step keeps its content but gets its seq and
    hashes from its position.
    """
    events = []
    for seq, step in enumerate(steps, start=1):
        if isinstance(step, DossierEvent):
            events.append(step.replace(seq=seq, dossier_id=dossier_id))
            continue
        event_type, status, *rest = step
        fields = dict(rest[0]) if rest else {}
        events.append(make_event(event_type, seq=seq, status=status, dossier_id=dossier_id, **fields))
    return list(seal_chain(events))
