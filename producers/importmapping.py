"""How a QuaTrinhXuLy row becomes a contract event: the mapping table and its defaults.

A row says: at ``ThoiDiemXuLy``, ``NguoiXuLy`` (``ChucDanh``) of ``PhongBanXuLy``
did ``NoiDungXuLy`` and the dossier's national status became ``TrangThai``;
the step started at ``NgayBatDau`` and was due at ``NgayKetThucTheoQuyDinh``.
The event type follows from the move (status before → ``TrangThai``) and,
where one move has several meanings, from keywords in ``NoiDungXuLy``.
Keywords match without diacritics and case ("Phê duyệt" = "phe duyet"). The
first rule that matches wins; rules from a ``--mapping`` file come before the
defaults. The actor's role comes from keywords in ``ChucDanh``, else from the
event type.

The mapping file (JSON, every key optional)::

    {"procedure_code": "1.001612", "rule_set": "ND61-2018", "channel": "ONLINE",
     "applicant_kind": "INDIVIDUAL", "time_limit": {"value": 3, "unit": "WORKING_DAYS"},
     "deadline_convention": "WORKING_HOURS", "service_level": "FULL_ONLINE", "amount_vnd": 0,
     "units": {"Phòng Tư pháp": "000.31.31.H29"},
     "roles": [["thủ quỹ", "CASE_OFFICER"]],
     "events": [{"from": [4], "to": 4, "match": "thẩm định", "event": "StepHandedOver"}],
     "dossiers": {"000.00.31.H29-240115-0001": {"procedure_code": "2.000908", "channel": "DIRECT",
                                              "applicant_id": "079090000001"}}}
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from schemas.events import (
    ActorRole,
    ApplicantKind,
    Channel,
    DeadlineConvention,
    EventType,
    ServiceLevel,
    TimeLimitUnit,
)
from schemas.jsontext import JsonTextError, loads
from schemas.textnorm import BLANK, normalise
from schemas.transitions import Status, allowed_after

_E = EventType
ANY: Final = frozenset(range(1, 11))


class MappingError(ValueError):
    """The mapping file or an option cannot be used (message names the key)."""


def plain(text: str) -> str:
    """Lower case without diacritics (đ → d), spaces collapsed: what keywords are matched against.

    Invisible characters (zero-width space, BOM, soft hyphen …: :data:`schemas.textnorm.BLANK` that are
    not spaces) are dropped, so "Đồng\u200bbộ" is "dong bo"; NBSP and the other spaces separate words.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c) and (c.isspace() or c not in BLANK))
    return " ".join(stripped.casefold().split())


@dataclasses.dataclass(frozen=True)
class Rule:
    """``before`` statuses (None: the dossier's first row) → ``after``, when ``match`` is in NoiDungXuLy."""

    before: frozenset[int | None]
    after: int
    event: EventType
    match: re.Pattern[str] | None = None

    def applies(self, before: int | None, after: int, content: str) -> bool:
        if after != self.after or before not in self.before:
            return False
        return self.match is None or self.match.search(content) is not None


def _rule(before: Sequence[int | None] | frozenset[int | None], after: int, event: EventType, match: str = "") -> Rule:
    pattern = re.compile(plain(match)) if match else None
    return Rule(frozenset(before), after, event, pattern)


#: Rows that keep the status, recognised by keywords in NoiDungXuLy (first match wins). Each applies in
#: every status where the transition table allows the event type without a change of status.
SAME_STATUS_KEYWORDS: Final = (
    ("dong bo|dvcqg|dvc quoc gia|cong dich vu cong", _E.SYNCED_TO_NATIONAL),
    ("dat lai ngay hen|dat lai han", _E.ADMIN_OVERRIDE),
    ("xin loi|gia han|hen lai ngay tra", _E.APOLOGY_ISSUED),
    ("so hoa", _E.DOSSIER_DIGITIZED),
    ("thong bao", _E.APPLICANT_NOTIFIED),
    ("phan anh|kien nghi", _E.FEEDBACK_FILED),
)
#: A move back (9 → 4, 10 → 4, 10 → 9) is a recall only when the row says so: a row dated before its
#: predecessor (backdated, or exported out of order) otherwise reads as one.
RECALL_KEYWORDS: Final = "thu hoi|xu ly lai|lam lai|tra lai|chuyen lai|khoi phuc"


def _same_status_rules() -> tuple[Rule, ...]:
    return tuple(
        _rule([s], s, event, words)
        for words, event in SAME_STATUS_KEYWORDS
        for s in Status
        if s in allowed_after(s, event)
    )


#: The default table, in order (the README shows it). ``tests/test_importer.py`` checks it against
#: ``schemas.transitions``: every legal move of every event type a row can carry has a rule.
DEFAULT_RULES: Final = (
    _rule([None], 1, _E.DOSSIER_SUBMITTED),
    *_same_status_rules(),
    _rule([1], 1, _E.RECEPTION_GUIDANCE_ISSUED),
    _rule([None, 1], 2, _E.DOSSIER_RECEIVED),
    _rule([1, 5], 3, _E.RECEPTION_REFUSED),
    _rule([2], 4, _E.DOSSIER_TRANSFERRED),
    _rule([4], 4, _E.STEP_RETURNED, "tra lai|chuyen lai|tra ve"),
    _rule([4], 4, _E.INTER_AGENCY_TRANSFERRED, "lien thong|phoi hop|chuyen co quan"),
    _rule([2], 2, _E.RESULT_APPROVED, "phe duyet|duyet ket qua"),
    _rule([4], 4, _E.RESULT_APPROVED, "phe duyet|duyet ket qua"),
    _rule([4], 4, _E.STEP_HANDED_OVER),
    _rule([2, 4], 5, _E.SUPPLEMENT_REQUESTED),
    _rule([5], 4, _E.SUPPLEMENT_RECEIVED),
    _rule([2, 4], 6, _E.FINANCIAL_OBLIGATION_REQUESTED),
    _rule([6], 4, _E.FINANCIAL_OBLIGATION_FULFILLED),
    _rule([6], 9, _E.FINANCIAL_OBLIGATION_FULFILLED),
    _rule([2, 4, 5], 7, _E.WITHDRAWAL_REQUESTED),
    _rule([7], 4, _E.WITHDRAWAL_DECLINED),
    _rule([2, 4, 7], 8, _E.PROCESSING_STOPPED),
    _rule([2, 4], 9, _E.RESULT_ISSUED),
    _rule([9], 10, _E.RESULT_RETURNED),
    _rule([10], 10, _E.RESULT_COLLECTED, "nhan ket qua|da nhan|ky nhan"),
    _rule([9, 10], 4, _E.RESULT_RECALLED, RECALL_KEYWORDS),
    _rule([10], 9, _E.RESULT_RECALLED, RECALL_KEYWORDS),
)

#: ChucDanh keywords → role, first match wins (README table).
DEFAULT_ROLES: Final = (
    ("mot cua|tiep nhan|tra ket qua", ActorRole.RECEPTION_OFFICER),
    ("van thu", ActorRole.CLERK),
    ("chuyen vien|can bo|cong chuc|ke toan|thu ly", ActorRole.CASE_OFFICER),
    ("chu tich|giam doc|truong phong|truong ban|truong bo phan|lanh dao|chanh van phong|thu truong", ActorRole.LEADER),
    (
        "cong dan|nguoi nop|to chuc|doanh nghiep|chu ho so|nguoi dai dien|dai dien theo|uy quyen|nguoi than"
        "|nguoi yeu cau|ca nhan|ho gia dinh",
        ActorRole.APPLICANT,
    ),
    ("quan tri", ActorRole.ADMIN),
    ("he thong|tu dong", ActorRole.SYSTEM),
)

#: Role when ChucDanh is empty or matches nothing.
EVENT_ROLES: Final[Mapping[EventType, ActorRole]] = {
    **dict.fromkeys(
        (_E.DOSSIER_SUBMITTED, _E.WITHDRAWAL_REQUESTED, _E.SUPPLEMENT_RECEIVED, _E.FINANCIAL_OBLIGATION_FULFILLED),
        ActorRole.APPLICANT,
    ),
    **dict.fromkeys((_E.RESULT_COLLECTED,), ActorRole.APPLICANT),
    **dict.fromkeys(
        (_E.RECEPTION_GUIDANCE_ISSUED, _E.DOSSIER_RECEIVED, _E.RECEPTION_REFUSED, _E.DOSSIER_DIGITIZED),
        ActorRole.RECEPTION_OFFICER,
    ),
    **dict.fromkeys((_E.DOSSIER_TRANSFERRED, _E.RESULT_RETURNED), ActorRole.RECEPTION_OFFICER),
    **dict.fromkeys((_E.RESULT_APPROVED, _E.PROCESSING_STOPPED, _E.APOLOGY_ISSUED), ActorRole.LEADER),
    _E.RESULT_ISSUED: ActorRole.CLERK,
    _E.RESULT_RECALLED: ActorRole.ADMIN,
    _E.SYNCED_TO_NATIONAL: ActorRole.SYSTEM,
}

#: applicant_ref when the export does not identify the applicant: one unknown applicant per dossier.
UNKNOWN_APPLICANT_PREFIX: Final = "khong-ro:"


@dataclasses.dataclass(frozen=True)
class DossierDefaults:
    """Per-dossier envelope values the export lacks (None: derive, see :mod:`producers.importer`)."""

    procedure_code: str | None = None
    rule_set: str | None = None
    channel: Channel | None = None
    applicant_kind: ApplicantKind = ApplicantKind.INDIVIDUAL
    applicant_id: str | None = None  # identity number, pseudonymised with DOSSIER_PSEUDONYM_KEY
    time_limit_value: int | None = None
    time_limit_unit: TimeLimitUnit = TimeLimitUnit.WORKING_DAYS


@dataclasses.dataclass(frozen=True)
class ImportMapping:
    defaults: DossierDefaults = DossierDefaults()
    deadline_convention: DeadlineConvention = DeadlineConvention.WORKING_HOURS
    service_level: ServiceLevel | None = None  # None: FULL_ONLINE for online dossiers, OFFLINE otherwise
    amount_vnd: int = 0
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)
    roles: tuple[tuple[str, ActorRole], ...] = DEFAULT_ROLES
    rules: tuple[Rule, ...] = DEFAULT_RULES
    dossiers: Mapping[str, DossierDefaults] = dataclasses.field(default_factory=dict)

    def event_type(self, before: int | None, after: int, content: str) -> EventType | None:
        text = plain(content)
        for rule in self.rules:
            if rule.applies(before, after, text):
                return rule.event
        return None

    def role(self, title: str, event_type: EventType) -> ActorRole:
        text = plain(title)
        for pattern, role in self.roles:
            if re.search(pattern, text):
                return role
        return EVENT_ROLES.get(event_type, ActorRole.CASE_OFFICER)

    def is_title(self, text: str) -> bool:
        """Whether ``text`` names a role (a ChucDanh keyword), not a person."""
        folded = plain(text)
        return any(re.search(pattern, folded) for pattern, _ in self.roles)

    def for_dossier(self, dossier_id: str) -> DossierDefaults:
        return self.dossiers.get(dossier_id, self.defaults)


def _enum(kind: type[Any], value: Any, key: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        symbols = ", ".join(m.value for m in kind if m.value != "UNKNOWN")
        raise MappingError(f"{key}: {value!r} is not one of {symbols}") from None


def _dossier_defaults(obj: Mapping[str, Any], base: DossierDefaults, key: str) -> DossierDefaults:
    changes: dict[str, Any] = {}
    for name in ("procedure_code", "rule_set", "applicant_id"):
        if name in obj:
            changes[name] = str(obj[name])
    if "channel" in obj:
        changes["channel"] = _enum(Channel, obj["channel"], f"{key}.channel")
    if "applicant_kind" in obj:
        changes["applicant_kind"] = _enum(ApplicantKind, obj["applicant_kind"], f"{key}.applicant_kind")
    limit = obj.get("time_limit")
    if limit is not None:
        if not isinstance(limit, dict) or not isinstance(limit.get("value"), int) or limit["value"] < 0:
            raise MappingError(f'{key}.time_limit: write {{"value": 3, "unit": "WORKING_DAYS"}}')
        changes["time_limit_value"] = limit["value"]
        changes["time_limit_unit"] = _enum(TimeLimitUnit, limit.get("unit", "WORKING_DAYS"), f"{key}.time_limit.unit")
    return dataclasses.replace(base, **changes)


def load_mapping(path: Path | None, base: ImportMapping | None = None) -> ImportMapping:
    """The mapping of ``path`` (JSON) over ``base`` (defaults and command-line options)."""
    mapping = base or ImportMapping()
    if path is None:
        return mapping
    try:
        obj = loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JsonTextError) as exc:
        raise MappingError(f"cannot read the mapping file {path}: {exc}") from None
    if not isinstance(obj, dict):
        raise MappingError(f"{path}: the mapping must be a JSON object")
    defaults = _dossier_defaults(obj, mapping.defaults, "mapping")
    changes: dict[str, Any] = {"defaults": defaults}
    if "deadline_convention" in obj:
        changes["deadline_convention"] = _enum(DeadlineConvention, obj["deadline_convention"], "deadline_convention")
    if "service_level" in obj:
        changes["service_level"] = _enum(ServiceLevel, obj["service_level"], "service_level")
    if "amount_vnd" in obj:
        changes["amount_vnd"] = int(obj["amount_vnd"])
    if "units" in obj:
        # keys compared with PhongBanXuLy as the rows hold it: NFC, no invisible padding
        changes["units"] = {**mapping.units, **{normalise(str(k)): str(v) for k, v in dict(obj["units"]).items()}}
    if "roles" in obj:
        extra = tuple((plain(str(p)), _enum(ActorRole, r, "roles")) for p, r in obj["roles"])
        changes["roles"] = extra + mapping.roles
    if "events" in obj:
        changes["rules"] = tuple(_custom_rule(r, i) for i, r in enumerate(obj["events"])) + mapping.rules
    if "dossiers" in obj:
        changes["dossiers"] = {
            str(k): _dossier_defaults(v, defaults, f"dossiers.{k}") for k, v in dict(obj["dossiers"]).items()
        }
    return dataclasses.replace(mapping, **changes)


def _custom_rule(obj: Any, index: int) -> Rule:
    key = f"events[{index}]"
    if not isinstance(obj, dict) or "to" not in obj or "event" not in obj:
        raise MappingError(f'{key}: write {{"from": [4], "to": 4, "match": "keyword", "event": "StepHandedOver"}}')
    before = obj.get("from")
    befores: frozenset[int | None] = frozenset(ANY) if before is None else frozenset(before)
    return _rule(befores, int(obj["to"]), _enum(EventType, obj["event"], f"{key}.event"), str(obj.get("match", "")))
