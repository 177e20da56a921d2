"""Golden payloads: the exact bytes of one event of every type, per released schema.

``schemas/golden/v<N>/<EventType>.bin`` holds the single-object encoding of a
sample event written with schema version N, and ``<EventType>.json`` its JSON
form. They are written once, when a version is released
(``python -m schemas.golden --write``, which never overwrites), and then
prove compatibility on real bytes: every golden payload of every version must
decode with the current reader (``dossier schema check``), and the current
version's payloads pin the encoder byte for byte.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final

from schemas.codec import encode
from schemas.events import (
    EVENT_FIELDS,
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
from schemas.hashchain import seal
from schemas.jsonform import to_json
from schemas.registry import current_schema

_T0: Final = datetime(2024, 2, 7, 9, 0, tzinfo=UTC)
_PREV: Final = bytes(range(32))

#: Status after a sample event of each type (one legal target per type).
_STATUS_AFTER: Final = {
    EventType.DOSSIER_SUBMITTED: 1,
    EventType.RECEPTION_GUIDANCE_ISSUED: 1,
    EventType.DOSSIER_RECEIVED: 2,
    EventType.RECEPTION_REFUSED: 3,
    EventType.SUPPLEMENT_REQUESTED: 5,
    EventType.FINANCIAL_OBLIGATION_REQUESTED: 6,
    EventType.WITHDRAWAL_REQUESTED: 7,
    EventType.PROCESSING_STOPPED: 8,
    EventType.RESULT_ISSUED: 9,
    EventType.RESULT_RETURNED: 10,
    EventType.RESULT_COLLECTED: 10,
    EventType.CITIZEN_RATED: 10,
}

#: A value for every payload field; a sample carries every field its type allows.
_PAYLOAD: Final[dict[str, Any]] = {
    "to_unit": "000.20.31.H29",
    "to_actor": "cv-0007",
    "to_role": ActorRole.CASE_OFFICER,
    "step_due_at": _T0 + timedelta(days=2),
    "step_budget_minutes": 960,
    "reason": "Thiếu bản sao giấy chứng nhận; lý do: hồ sơ chưa đầy đủ",
    "new_due_at": _T0 + timedelta(days=9, hours=3),
    "requested_documents": ("TP-02", "TP-05"),
    "documents": ("TP-01", "TP-03"),
    "time_limit_value": 15,
    "time_limit_unit": TimeLimitUnit.WORKING_DAYS,
    "deadline_convention": DeadlineConvention.WORKING_HOURS,
    "service_level": ServiceLevel.FULL_ONLINE,
    "amount_vnd": 1_250_000,
    "payment_channel": PaymentChannel.NATIONAL_PORTAL,
    "clock_stopped": True,
    "result_ref": "https://dichvucong.hochiminhcity.gov.vn/ketqua/2024/0001.pdf",
    "result_electronic": True,
    "return_channel": Channel.POSTAL,
    "rating": 4,
    "override_field": "due_at",
    "override_old": "2024-02-19T16:00:00.000000+07:00",
    "override_new": "2024-02-21T16:00:00.000000+07:00",
    "ref_seq": 3,
}


#: Samples whose source did not say some facts (schema v2's ``unknown_facts``): those fields are left empty.
_UNKNOWN: Final[dict[EventType, tuple[str, ...]]] = {
    EventType.PROCESSING_STOPPED: ("n_attachments",),
    EventType.RESULT_ISSUED: ("result_electronic",),
    EventType.DOSSIER_RECEIVED: ("form_code",),
}
_EMPTY: Final[dict[str, Any]] = {"n_attachments": 0, "requested_documents": (), "documents": ()}


def sample_event(event_type: EventType) -> DossierEvent:
    """A deterministic, valid, sealed event of ``event_type`` with every allowed field set (but its unknowns)."""
    index = list(EventType).index(event_type)
    allowed = EVENT_FIELDS[event_type].allowed
    unknown = _UNKNOWN.get(event_type, ())
    payload = {name: value for name, value in _PAYLOAD.items() if name in allowed}
    payload.update({name: _EMPTY.get(name) for name in unknown})
    event = DossierEvent(
        event_id=str(uuid.UUID(int=0x1D0551E5_0000_4000_8000_000000000000 + index)),
        dossier_id="000.00.31.H29-240207-0001",
        seq=7,
        event_type=event_type,
        occurred_at=_T0 + timedelta(minutes=index, microseconds=123456),
        recorded_at=_T0 + timedelta(minutes=index, seconds=2, microseconds=654321),
        unit_code="000.00.31.H29",
        actor_id="tn-0001",
        actor_role=ActorRole.RECEPTION_OFFICER,
        procedure_code="1.001776",
        rule_set="ND61-2018",
        applicant_ref="5f1c3a9e0b7d4e2a8c6b1d0e9f8a7b6c",
        applicant_kind=ApplicantKind.INDIVIDUAL,
        channel=Channel.ONLINE,
        status=_STATUS_AFTER.get(event_type, 4),
        procedure_version="QD-1234-2023",
        step_code="THAM_DINH",
        due_at=_T0 + timedelta(days=12),
        **{"form_code": "TT01-2018:01", "n_attachments": 2, **payload},
        unknown_facts=unknown,
    )
    return seal(event, _PREV)


@dataclasses.dataclass(frozen=True)
class GoldenPayload:
    version: int
    event_type: str
    payload: bytes
    json_form: dict[str, Any]


def golden_payloads() -> Iterator[GoldenPayload]:
    """Every golden payload of every released version shipped with the package."""
    root = resources.files("schemas") / "golden"
    for version_dir in sorted(root.iterdir(), key=lambda p: p.name):
        if not version_dir.name.startswith("v") or not version_dir.is_dir():
            continue
        version = int(version_dir.name[1:])
        for entry in sorted(version_dir.iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".bin"):
                stem = entry.name[: -len(".bin")]
                json_form = json.loads((version_dir / f"{stem}.json").read_text(encoding="utf-8"))
                yield GoldenPayload(version, stem, entry.read_bytes(), json_form)


def write_golden(directory: Path) -> list[Path]:
    """Write the current version's golden files; refuses to overwrite any."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in EventType:
        if event_type is EventType.UNKNOWN:
            continue
        event = sample_event(event_type)
        for suffix, content in (
            (".bin", encode(event)),
            (".json", (json.dumps(to_json(event), ensure_ascii=False, indent=2) + "\n").encode()),
        ):
            path = directory / f"{event_type.value}{suffix}"
            if path.exists():
                continue
            path.write_bytes(content)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write golden payloads for the current schema version.")
    parser.add_argument("--write", action="store_true", help="write missing golden files (never overwrites)")
    args = parser.parse_args(argv)
    target = Path(__file__).parent / "golden" / f"v{current_schema().version}"
    if not args.write:
        print(f"would write to {target}; pass --write")
        return 0
    for path in write_golden(target):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
