"""Benchmark data: many distinct, contract-valid events, fast (hash chains not sealed: loaders do not check them)."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.events import ActorRole, Channel, DeadlineConvention, PaymentChannel, ServiceLevel, TimeLimitUnit

_T0 = datetime(2024, 1, 15, 1, 0, tzinfo=UTC)
_BASE: dict[str, Any] = {
    "unit_code": "000.00.31.H29",
    "procedure_code": "1.001612",
    "rule_set": "ND61-2018",
    "applicant_ref": "a" * 64,
    "applicant_kind": "INDIVIDUAL",
    "channel": Channel.ONLINE.value,
    "prev_hash": bytes(32),
    "hash": bytes(32),
    "n_attachments": 1,
}
_STEPS: list[tuple[str, int, str, str, dict[str, Any]]] = [
    ("DossierSubmitted", 1, "cd-0001", ActorRole.APPLICANT.value, {}),
    (
        "DossierReceived",
        2,
        "tn-01",
        ActorRole.RECEPTION_OFFICER.value,
        {
            "time_limit_value": 3,
            "time_limit_unit": TimeLimitUnit.WORKING_DAYS.value,
            "deadline_convention": DeadlineConvention.WORKING_HOURS.value,
            "service_level": ServiceLevel.FULL_ONLINE.value,
        },
    ),
    (
        "FeePaid",
        2,
        "cd-0001",
        ActorRole.APPLICANT.value,
        {"amount_vnd": 50_000, "payment_channel": PaymentChannel.NATIONAL_PORTAL.value},
    ),
    (
        "DossierTransferred",
        4,
        "tn-01",
        ActorRole.RECEPTION_OFFICER.value,
        {"to_unit": "000.00.31.H29", "to_actor": "cv-01", "to_role": ActorRole.CASE_OFFICER.value},
    ),
    (
        "StepHandedOver",
        4,
        "cv-01",
        ActorRole.CASE_OFFICER.value,
        {"to_unit": "000.00.31.H29", "to_actor": "ld-01", "to_role": ActorRole.LEADER.value},
    ),
    ("ResultApproved", 4, "ld-01", ActorRole.LEADER.value, {}),
    ("ResultIssued", 9, "vt-01", ActorRole.CLERK.value, {"result_ref": "123/GCN", "result_electronic": True}),
    ("ResultReturned", 10, "tn-01", ActorRole.RECEPTION_OFFICER.value, {"return_channel": Channel.ONLINE.value}),
]


def records(n_events: int) -> Iterator[dict[str, Any]]:
    """``n_events`` record dicts (8 per dossier), ready for the Avro codec."""
    for i in range(n_events):
        d, k = divmod(i, len(_STEPS))
        at = _T0 + timedelta(days=d % 60, minutes=10 * k)
        event_type, status, actor, role, extra = _STEPS[k]
        yield {
            **_BASE,
            **extra,
            "event_id": str(uuid.UUID(int=i + 1)),
            "dossier_id": f"000.00.31.H29-{at:%y%m%d}-{d // 60 % 10000:04d}",
            "unit_code": f"000.00.{31 + d // 600000:02d}.H29",
            "seq": k + 1,
            "event_type": event_type,
            "occurred_at": at,
            "recorded_at": at,
            "actor_id": actor,
            "actor_role": role,
            "status": status,
        }


@contextlib.contextmanager
def fresh_store() -> Iterator[Store]:
    """A new embedded store with the released migrations, in a temporary directory removed afterwards."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        opened_store(Settings(data_dir=Path(tmp) / "data"), role="writer", serve=False) as store,
    ):
        migrate(store)
        yield store
