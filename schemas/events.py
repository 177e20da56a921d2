"""The dossier event: one immutable record per state change of a dossier.

One flat record serves every event type. The envelope (who, what, when,
which dossier, which status after) is always present; type-specific fields
are nullable (arrays default to empty) and :data:`EVENT_FIELDS` says, per
event type, which of them are required and which are allowed. A flat record
maps one-to-one onto ClickHouse columns (``[null, T]`` becomes
``Nullable(T)``), so the store can decode Avro natively, while a union of
per-type payload records cannot be mapped onto typed columns.

Field names are the public data contract; README.md maps each to the
national field names (HoSoDongBoDVC, QuaTrinhXuLy).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from schemas.errors import EventValidationError
from schemas.textnorm import is_blank


class EventType(StrEnum):
    """Past-tense names of everything that can happen to a dossier."""

    UNKNOWN = "Unknown"  # reader default for types added by a later schema version
    DOSSIER_SUBMITTED = "DossierSubmitted"
    RECEPTION_GUIDANCE_ISSUED = "ReceptionGuidanceIssued"
    DOSSIER_RECEIVED = "DossierReceived"
    RECEPTION_REFUSED = "ReceptionRefused"
    DOSSIER_DIGITIZED = "DossierDigitized"
    FEE_PAID = "FeePaid"
    DOSSIER_TRANSFERRED = "DossierTransferred"
    STEP_HANDED_OVER = "StepHandedOver"
    STEP_RETURNED = "StepReturned"
    INTER_AGENCY_TRANSFERRED = "InterAgencyTransferred"
    SUPPLEMENT_REQUESTED = "SupplementRequested"
    SUPPLEMENT_RECEIVED = "SupplementReceived"
    FINANCIAL_OBLIGATION_REQUESTED = "FinancialObligationRequested"
    FINANCIAL_OBLIGATION_FULFILLED = "FinancialObligationFulfilled"
    APOLOGY_ISSUED = "ApologyIssued"
    WITHDRAWAL_REQUESTED = "WithdrawalRequested"
    WITHDRAWAL_DECLINED = "WithdrawalDeclined"
    PROCESSING_STOPPED = "ProcessingStopped"
    RESULT_APPROVED = "ResultApproved"
    RESULT_ISSUED = "ResultIssued"
    APPLICANT_NOTIFIED = "ApplicantNotified"
    RESULT_RETURNED = "ResultReturned"
    RESULT_COLLECTED = "ResultCollected"
    RESULT_RECALLED = "ResultRecalled"
    ADMIN_OVERRIDE = "AdminOverride"
    CITIZEN_RATED = "CitizenRated"
    FEEDBACK_FILED = "FeedbackFiled"
    SYNCED_TO_NATIONAL = "SyncedToNational"


class ActorRole(StrEnum):
    UNKNOWN = "UNKNOWN"
    APPLICANT = "APPLICANT"
    RECEPTION_OFFICER = "RECEPTION_OFFICER"
    CASE_OFFICER = "CASE_OFFICER"
    LEADER = "LEADER"
    CLERK = "CLERK"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class ApplicantKind(StrEnum):
    """LoaiDoiTuong: 1 individual, 2 organisation."""

    UNKNOWN = "UNKNOWN"
    INDIVIDUAL = "INDIVIDUAL"
    ORGANISATION = "ORGANISATION"


class Channel(StrEnum):
    """KenhThucHien: 1 direct, 2 online, 3 public postal (BCCI)."""

    UNKNOWN = "UNKNOWN"
    DIRECT = "DIRECT"
    ONLINE = "ONLINE"
    POSTAL = "POSTAL"


class TimeLimitUnit(StrEnum):
    """LoaiThoiGianThucHien: the unit of a procedure's time limit."""

    UNKNOWN = "UNKNOWN"
    WORKING_HOURS = "WORKING_HOURS"
    WORKING_DAYS = "WORKING_DAYS"
    CALENDAR_DAYS = "CALENDAR_DAYS"
    MONTHS = "MONTHS"


class DeadlineConvention(StrEnum):
    """How a unit turns a time limit into NgayHenTra (domain.md §b.3)."""

    UNKNOWN = "UNKNOWN"
    WORKING_HOURS = "WORKING_HOURS"  # receipt time + N x 8 working hours (deployed practice)
    END_OF_DAY = "END_OF_DAY"  # Civil Code art. 147-148: first day not counted, ends at end of day


class ServiceLevel(StrEnum):
    """Online public-service level of the procedure at reception (NĐ 42/2022)."""

    UNKNOWN = "UNKNOWN"
    OFFLINE = "OFFLINE"
    PARTIAL_ONLINE = "PARTIAL_ONLINE"
    FULL_ONLINE = "FULL_ONLINE"


class PaymentChannel(StrEnum):
    """DuocThanhToanTrucTuyen: 1 national portal, 2 local gateway; otherwise offline."""

    UNKNOWN = "UNKNOWN"
    CASH = "CASH"
    BANK_TRANSFER = "BANK_TRANSFER"
    NATIONAL_PORTAL = "NATIONAL_PORTAL"
    LOCAL_GATEWAY = "LOCAL_GATEWAY"


ZERO_HASH: Final = bytes(32)

#: Envelope fields: present (non-null) on every event. ``due_at`` is envelope
#: too but nullable (null before reception).
ENVELOPE_FIELDS: Final = (
    "event_id",
    "dossier_id",
    "seq",
    "event_type",
    "occurred_at",
    "recorded_at",
    "unit_code",
    "actor_id",
    "actor_role",
    "procedure_code",
    "rule_set",
    "applicant_ref",
    "applicant_kind",
    "channel",
    "status",
    "prev_hash",
    "hash",
)

#: Envelope context, allowed on every event type (nullable, or empty by default).
CONTEXT_FIELDS: Final = ("procedure_version", "step_code", "due_at", "form_code", "n_attachments", "unknown_facts")

#: Type-specific fields (nullable, arrays default to empty).
PAYLOAD_FIELDS: Final = (
    "to_unit",
    "to_actor",
    "to_role",
    "step_due_at",
    "step_budget_minutes",
    "reason",
    "new_due_at",
    "requested_documents",
    "documents",
    "time_limit_value",
    "time_limit_unit",
    "deadline_convention",
    "service_level",
    "amount_vnd",
    "payment_channel",
    "clock_stopped",
    "result_ref",
    "result_electronic",
    "return_channel",
    "rating",
    "override_field",
    "override_old",
    "override_new",
    "ref_seq",
)

ARRAY_FIELDS: Final = frozenset({"requested_documents", "documents", "unknown_facts"})

#: Facts a source may not carry, and what each is. Listed in an event's ``unknown_facts`` (schema v2), the
#: field holds its empty value (null, 0, no items), which then means "not said", never "none": a rule that
#: reads the fact does not judge the event on it (it reports the dossier as not assessable instead).
#: ``procedure_version``, ``step_budget_minutes`` and ``step_due_at`` are null when not said anyway (no
#: rule reads their null as "none"); they are listed so a source can say so explicitly.
UNKNOWABLE_FACTS: Final[Mapping[str, str]] = {
    "documents": "the component codes received or digitised (MaThanhPhanHoSo)",
    "due_at": "the appointment date (NgayHenTra)",
    "form_code": "the form issued (Mẫu 01 receipt, Mẫu 02 …)",
    "n_attachments": "how many files were attached (DinhKem)",
    "procedure_version": "the version of the procedure (QĐ công bố)",
    "reason": "the reason given",
    "requested_documents": "the component codes requested",
    "result_electronic": "whether the result was issued electronically",
    "result_ref": "the result document's number or link",
    "step_budget_minutes": "the step's time budget",
    "step_due_at": "the step's deadline",
    "to_actor": "the officer the dossier went to",
}


@dataclasses.dataclass(frozen=True, slots=True)
class FieldRule:
    """Which payload fields an event type requires and which it may carry."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


def _rule(required: str = "", optional: str = "") -> FieldRule:
    return FieldRule(frozenset(required.split()), frozenset(optional.split()))


_HANDOVER = "to_unit to_actor to_role"
_STEP = "step_due_at step_budget_minutes"

#: The per-type field contract. Emptiness of a *present* ``reason`` ("", or only
#: spaces and invisible characters: :func:`schemas.textnorm.is_blank`) is not a
#: contract violation but an audit finding (R17), so it is checked there.
EVENT_FIELDS: Final[Mapping[EventType, FieldRule]] = {
    EventType.DOSSIER_SUBMITTED: _rule(optional="documents service_level"),
    EventType.RECEPTION_GUIDANCE_ISSUED: _rule("requested_documents", "reason"),
    EventType.DOSSIER_RECEIVED: _rule(
        "time_limit_value time_limit_unit deadline_convention service_level",
        f"documents {_HANDOVER} {_STEP}",
    ),
    EventType.RECEPTION_REFUSED: _rule("reason"),
    EventType.DOSSIER_DIGITIZED: _rule("documents", "result_electronic"),
    EventType.FEE_PAID: _rule("amount_vnd payment_channel"),
    EventType.DOSSIER_TRANSFERRED: _rule(_HANDOVER, _STEP),
    EventType.STEP_HANDED_OVER: _rule(_HANDOVER, _STEP),
    EventType.STEP_RETURNED: _rule(f"{_HANDOVER} reason", _STEP),
    EventType.INTER_AGENCY_TRANSFERRED: _rule("to_unit", f"to_actor to_role {_STEP}"),
    EventType.SUPPLEMENT_REQUESTED: _rule("requested_documents reason"),
    EventType.SUPPLEMENT_RECEIVED: _rule("", "documents"),
    EventType.FINANCIAL_OBLIGATION_REQUESTED: _rule("amount_vnd clock_stopped", "reason"),
    EventType.FINANCIAL_OBLIGATION_FULFILLED: _rule("amount_vnd", "payment_channel"),
    EventType.APOLOGY_ISSUED: _rule("new_due_at reason"),
    EventType.WITHDRAWAL_REQUESTED: _rule("", "reason"),
    EventType.WITHDRAWAL_DECLINED: _rule("reason"),
    EventType.PROCESSING_STOPPED: _rule("reason"),
    EventType.RESULT_APPROVED: _rule("", _HANDOVER),
    EventType.RESULT_ISSUED: _rule("result_ref result_electronic"),
    EventType.APPLICANT_NOTIFIED: _rule("return_channel", "reason"),
    EventType.RESULT_RETURNED: _rule("return_channel"),
    EventType.RESULT_COLLECTED: _rule(),
    EventType.RESULT_RECALLED: _rule("reason", "ref_seq"),
    EventType.ADMIN_OVERRIDE: _rule("override_field", "override_old override_new reason ref_seq"),
    EventType.CITIZEN_RATED: _rule("rating", "reason"),
    EventType.FEEDBACK_FILED: _rule("reason"),
    EventType.SYNCED_TO_NATIONAL: _rule("ref_seq"),
}

DOSSIER_ID_RE: Final = re.compile(r"^(?P<unit>[0-9A-Z.]{2,32}[A-Z][0-9]{2})-(?P<day>[0-9]{6})-(?P<n>[0-9]{4})$")
UNIT_CODE_RE: Final = re.compile(r"^([0-9A-Z]{2,3}\.)*[0-9A-Z]{2,3}$")
RATING_RANGE: Final = range(1, 6)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DossierEvent:
    """One event of one dossier, as the contract defines it.

    Timestamps are timezone-aware (UTC in storage). ``status`` is the national
    status code (TrangThaiHoSo, 1-10) *after* the event. ``hash`` chains the
    dossier's events: see :mod:`schemas.hashchain`.
    """

    event_id: str
    dossier_id: str
    seq: int
    event_type: EventType
    occurred_at: datetime
    recorded_at: datetime
    unit_code: str
    actor_id: str
    actor_role: ActorRole
    procedure_code: str
    rule_set: str
    applicant_ref: str
    applicant_kind: ApplicantKind
    channel: Channel
    status: int
    prev_hash: bytes = ZERO_HASH
    hash: bytes = ZERO_HASH
    procedure_version: str | None = None
    step_code: str | None = None
    due_at: datetime | None = None
    form_code: str | None = None
    n_attachments: int = 0
    to_unit: str | None = None
    to_actor: str | None = None
    to_role: ActorRole | None = None
    step_due_at: datetime | None = None
    step_budget_minutes: int | None = None
    reason: str | None = None
    new_due_at: datetime | None = None
    requested_documents: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    time_limit_value: int | None = None
    time_limit_unit: TimeLimitUnit | None = None
    deadline_convention: DeadlineConvention | None = None
    service_level: ServiceLevel | None = None
    amount_vnd: int | None = None
    payment_channel: PaymentChannel | None = None
    clock_stopped: bool | None = None
    result_ref: str | None = None
    result_electronic: bool | None = None
    return_channel: Channel | None = None
    rating: int | None = None
    override_field: str | None = None
    override_old: str | None = None
    override_new: str | None = None
    ref_seq: int | None = None
    unknown_facts: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        """The plain dict the Avro codec writes (enums as symbols, arrays as lists)."""
        record: dict[str, Any] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            record[name] = value
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DossierEvent:
        """Build an event from a decoded record; enum symbols become enum members."""
        kwargs: dict[str, Any] = {}
        for name in FIELD_NAMES:
            if name not in record:
                continue
            value = record[name]
            converter = ENUM_FIELDS.get(name)
            if converter is not None and value is not None:
                value = converter(value)
            elif name in ARRAY_FIELDS:
                value = tuple(value or ())
            kwargs[name] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> DossierEvent:
        return dataclasses.replace(self, **changes)


FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(DossierEvent))

ENUM_FIELDS: Final[Mapping[str, type[StrEnum]]] = {
    "event_type": EventType,
    "actor_role": ActorRole,
    "applicant_kind": ApplicantKind,
    "channel": Channel,
    "to_role": ActorRole,
    "time_limit_unit": TimeLimitUnit,
    "deadline_convention": DeadlineConvention,
    "service_level": ServiceLevel,
    "payment_channel": PaymentChannel,
    "return_channel": Channel,
}

TIMESTAMP_FIELDS: Final = ("occurred_at", "recorded_at", "due_at", "step_due_at", "new_due_at")


def _present(name: str, value: Any) -> bool:
    if name in ARRAY_FIELDS:
        return bool(value)
    if name == "n_attachments":
        return bool(value)
    return value is not None


def is_unknown(event: DossierEvent, name: str) -> bool:
    """Whether the event's source did not say ``name`` (listed in ``unknown_facts``)."""
    return name in event.unknown_facts


def validate_event(event: DossierEvent) -> None:
    """Raise :class:`EventValidationError` unless ``event`` satisfies the contract.

    Checks the envelope (identifiers, timestamps, status range, enum
    sentinels) and the per-type field rule of :data:`EVENT_FIELDS`: every
    required payload field present, no payload field the type does not allow.
    """
    problems = envelope_problems(event)
    rule = EVENT_FIELDS.get(event.event_type)
    if rule is None:
        problems.append(f"event type {event.event_type.value!r} is not one this version can accept")
    else:
        for name in sorted(rule.required):
            if not _present(name, getattr(event, name)) and name not in event.unknown_facts:
                problems.append(f"{event.event_type.value} requires {name}")
        for name in PAYLOAD_FIELDS:
            if name not in rule.allowed and _present(name, getattr(event, name)):
                problems.append(f"{event.event_type.value} does not carry {name}")
        problems.extend(_value_problems(event))
        problems.extend(_unknown_problems(event, rule))
    if problems:
        raise EventValidationError(f"{event.dossier_id} seq {event.seq}: " + "; ".join(problems))


def envelope_problems(event: DossierEvent) -> list[str]:
    problems: list[str] = []
    try:
        uuid.UUID(event.event_id)
    except (ValueError, TypeError, AttributeError):
        problems.append(f"event_id {event.event_id!r} is not a UUID")
    if not DOSSIER_ID_RE.match(event.dossier_id or ""):
        problems.append(
            f"dossier_id {event.dossier_id!r} is not <unit code>-<yyMMdd>-<nnnn> (e.g. 000.00.31.H29-240115-0001)"
        )
    if not _is_int(event.seq) or event.seq < 1:
        problems.append(f"seq {event.seq!r} must be a positive integer")
    if not _is_int(event.status) or not 1 <= event.status <= 10:
        problems.append(f"status {event.status!r} is not a national status code 1-10")
    if not UNIT_CODE_RE.match(event.unit_code or ""):
        problems.append(f"unit_code {event.unit_code!r} is not an electronic unit ID such as 000.00.31.H29")
    for name in ("actor_id", "procedure_code", "rule_set", "applicant_ref"):
        value = getattr(event, name)
        if not value:
            problems.append(f"{name} is empty")
        elif isinstance(value, str) and is_blank(value):
            shown = " ".join(f"U+{ord(c):04X}" for c in value[:6])
            problems.append(f"{name} is empty: only spaces or invisible characters ({shown})")
    for name, member in (
        ("actor_role", event.actor_role),
        ("applicant_kind", event.applicant_kind),
        ("channel", event.channel),
    ):
        if member.value == "UNKNOWN":
            problems.append(f"{name} is UNKNOWN")
    for name in TIMESTAMP_FIELDS:
        value = getattr(event, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            problems.append(f"{name} must be a timezone-aware datetime")
    for name in ("prev_hash", "hash"):
        value = getattr(event, name)
        if not isinstance(value, bytes) or len(value) != 32:
            problems.append(f"{name} must be 32 bytes")
    if not _is_int(event.n_attachments) or event.n_attachments < 0:
        problems.append(f"n_attachments {event.n_attachments!r} must be a non-negative integer")
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _value_problems(event: DossierEvent) -> list[str]:
    problems: list[str] = []
    for name in ("step_budget_minutes", "time_limit_value", "amount_vnd", "rating", "ref_seq"):
        value = getattr(event, name)
        if value is not None and not _is_int(value):
            return [f"{name} {value!r} must be an integer"]
    if event.rating is not None and event.rating not in RATING_RANGE:
        problems.append(f"rating {event.rating} is outside 1-5")
    if event.time_limit_value is not None and event.time_limit_value < 0:
        problems.append("time_limit_value is negative")
    if event.amount_vnd is not None and event.amount_vnd < 0:
        problems.append("amount_vnd is negative")
    if event.step_budget_minutes is not None and event.step_budget_minutes < 0:
        problems.append("step_budget_minutes is negative")
    for name, member in (
        ("to_role", event.to_role),
        ("time_limit_unit", event.time_limit_unit),
        ("deadline_convention", event.deadline_convention),
        ("service_level", event.service_level),
        ("payment_channel", event.payment_channel),
        ("return_channel", event.return_channel),
    ):
        if member is not None and member.value == "UNKNOWN":
            problems.append(f"{name} is UNKNOWN")
    if event.to_unit is not None and not UNIT_CODE_RE.match(event.to_unit):
        problems.append(f"to_unit {event.to_unit!r} is not an electronic unit ID")
    if event.ref_seq is not None and not 1 <= event.ref_seq < event.seq:
        problems.append(f"ref_seq {event.ref_seq} does not name an earlier event")
    return problems


def _unknown_problems(event: DossierEvent, rule: FieldRule) -> list[str]:
    """``unknown_facts``: known names, sorted and once each, facts this type carries, holding their empty value."""
    names = event.unknown_facts
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        return ["unknown_facts must be a list of field names"]
    problems = [f"unknown_facts names {n!r}, which cannot be unknown" for n in names if n not in UNKNOWABLE_FACTS]
    if list(names) != sorted(set(names)):
        problems.append("unknown_facts must be sorted, each name once")
    for name in names:
        if name not in UNKNOWABLE_FACTS:
            continue
        if name in PAYLOAD_FIELDS and name not in rule.allowed:
            problems.append(f"unknown_facts names {name}, which {event.event_type.value} does not carry")
        elif _present(name, getattr(event, name)):
            problems.append(f"{name} is listed in unknown_facts but has a value")
    return problems


def utc(value: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused."""
    if value.tzinfo is None:
        raise EventValidationError(f"naive datetime {value.isoformat()} (a timezone offset is required)")
    return value.astimezone(UTC)
