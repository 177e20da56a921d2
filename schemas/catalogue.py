"""The reference catalogues next to the events: units, officials and procedures.

Written by the simulator as ``units.jsonl``, ``officials.jsonl`` and
``procedures.jsonl`` (one JSON object a line, exactly the keys below) and read
by the loader into dimension tables that the audit rules join (R7, R16, R20).
Units and procedure versions are effective-dated (domain.md §0): ``valid_from``
and ``valid_to`` are ISO dates, ``valid_to`` null while in force. Both days are
in force, in local time: a version is in force from 00:00 Asia/Ho_Chi_Minh on
``valid_from`` until 24:00 on ``valid_to`` (its last day).
:func:`version_in_force` picks the version a dossier is pinned to, exactly as
the audit's SQL does (``inspection.rules.base.catalogue_index``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas.events import UNIT_CODE_RE, ActorRole, ServiceLevel, TimeLimitUnit

#: The zone whose dates valid_from / valid_to are.
LOCAL_ZONE: Final = ZoneInfo("Asia/Ho_Chi_Minh")
UNIT_LEVELS: Final = ("city", "department", "district", "commune")
PROCEDURE_LEVELS: Final = ("department", "district", "commune")
OFFICIAL_ROLES: Final = frozenset(
    {ActorRole.RECEPTION_OFFICER, ActorRole.CASE_OFFICER, ActorRole.LEADER, ActorRole.CLERK, ActorRole.ADMIN}
)


class CatalogueError(ValueError):
    """A catalogue line that does not have the documented shape."""


def _check_keys(obj: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    if not isinstance(obj, Mapping):
        raise CatalogueError(f"a {what} must be a JSON object")
    missing = sorted(set(keys) - set(obj))
    extra = sorted(set(obj) - set(keys))
    if missing or extra:
        raise CatalogueError(f"{what}: missing keys {missing}, unknown keys {extra}")


def _date(value: Any, name: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise CatalogueError(f"{name} must be an ISO date string")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise CatalogueError(f"{name} {_shown(value)} is not an ISO date (YYYY-MM-DD)") from None
    return value


def _int(value: Any, name: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CatalogueError(f"{name} must be an integer from {minimum} to {maximum:,}, got {_shown(value)}")
    return value


def _one_of(value: Any, allowed: Iterable[str]) -> bool:
    """Whether ``value`` is one of the strings ``allowed`` (a list or an object is not, and is no error)."""
    return isinstance(value, str) and value in allowed


def _shown(value: Any) -> str:
    """At most 60 characters of a value, for a message (a hostile value can be megabytes)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**50 else "a number of more than 50 digits"
    return text if len(text) <= 60 else text[:57] + "..."


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise CatalogueError(f"{name} must be a non-empty string")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogueError(f"{name} must be true or false")
    return value


def _unit_code(value: Any, name: str) -> str:
    if not isinstance(value, str) or not UNIT_CODE_RE.match(value):
        raise CatalogueError(f"{name} {_shown(value)} is not an electronic unit code such as 000.00.31.H29")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Unit:
    unit_code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: str
    valid_to: str | None = None

    KEYS = ("unit_code", "name", "level", "parent_code", "valid_from", "valid_to")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Unit:
        _check_keys(obj, cls.KEYS, "unit")
        level = obj["level"]
        if not _one_of(level, UNIT_LEVELS):
            raise CatalogueError(f"level {_shown(level)} is not one of {', '.join(UNIT_LEVELS)}")
        parent = obj["parent_code"]
        return cls(
            _unit_code(obj["unit_code"], "unit_code"),
            _str(obj["name"], "name"),
            level,
            None if parent is None else _unit_code(parent, "parent_code"),
            _date(obj["valid_from"], "valid_from") or "",
            _date(obj["valid_to"], "valid_to", nullable=True),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Official:
    actor_id: str
    unit_code: str
    role: str

    KEYS = ("actor_id", "unit_code", "role")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Official:
        _check_keys(obj, cls.KEYS, "official")
        role = obj["role"]
        if not _one_of(role, {r.value for r in OFFICIAL_ROLES}):
            raise CatalogueError(f"role {_shown(role)} is not an official's role")
        return cls(_str(obj["actor_id"], "actor_id"), _unit_code(obj["unit_code"], "unit_code"), role)


@dataclasses.dataclass(frozen=True, slots=True)
class StepBudget:
    """One step of the procedure's internal process and its time budget in working minutes."""

    step_code: str
    role: str
    minutes: int

    KEYS = ("step_code", "role", "minutes")

    def to_json(self) -> dict[str, Any]:
        return {"step_code": self.step_code, "role": self.role, "minutes": self.minutes}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StepBudget:
        _check_keys(obj, cls.KEYS, "step budget")
        if not _one_of(obj["role"], {r.value for r in OFFICIAL_ROLES}):
            raise CatalogueError(f"step role {_shown(obj['role'])} is not an official's role")
        return cls(_str(obj["step_code"], "step_code"), obj["role"], _int(obj["minutes"], "minutes", minimum=1))


@dataclasses.dataclass(frozen=True, slots=True)
class Procedure:
    procedure_code: str
    version: str
    name: str
    level: str
    time_limit_value: int
    time_limit_unit: str
    service_level: str
    has_fee: bool
    fee_vnd: int
    paper_result: bool
    same_day: bool
    inter_agency: bool
    clock_stops_for_financial: bool
    component_codes: tuple[str, ...]
    step_budgets: tuple[StepBudget, ...]
    valid_from: str
    valid_to: str | None = None

    KEYS = (
        "procedure_code",
        "version",
        "name",
        "level",
        "time_limit_value",
        "time_limit_unit",
        "service_level",
        "has_fee",
        "fee_vnd",
        "paper_result",
        "same_day",
        "inter_agency",
        "clock_stops_for_financial",
        "component_codes",
        "step_budgets",
        "valid_from",
        "valid_to",
    )

    @property
    def limit_minutes(self) -> int:
        """The time limit in working minutes (working days x 480, working hours x 60)."""
        factor = 480 if self.time_limit_unit == TimeLimitUnit.WORKING_DAYS.value else 60
        return self.time_limit_value * factor

    def budget(self, step_code: str) -> int:
        for step in self.step_budgets:
            if step.step_code == step_code:
                return step.minutes
        raise KeyError(f"procedure {self.procedure_code} has no step {step_code!r}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in self.KEYS}
        out["component_codes"] = list(self.component_codes)
        out["step_budgets"] = [s.to_json() for s in self.step_budgets]
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Procedure:
        _check_keys(obj, cls.KEYS, "procedure")
        if not _one_of(obj["level"], PROCEDURE_LEVELS):
            raise CatalogueError(f"level {_shown(obj['level'])} is not one of {', '.join(PROCEDURE_LEVELS)}")
        unit = obj["time_limit_unit"]
        if not _one_of(unit, (TimeLimitUnit.WORKING_DAYS.value, TimeLimitUnit.WORKING_HOURS.value)):
            raise CatalogueError(f"time_limit_unit {_shown(unit)} must be WORKING_DAYS or WORKING_HOURS")
        if not _one_of(obj["service_level"], {s.value for s in ServiceLevel} - {"UNKNOWN"}):
            raise CatalogueError(f"service_level {_shown(obj['service_level'])} is not a service level")
        codes = obj["component_codes"]
        if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
            raise CatalogueError("component_codes must be a list of non-empty strings")
        steps = obj["step_budgets"]
        if not isinstance(steps, list):
            raise CatalogueError("step_budgets must be a list")
        procedure = cls(
            _str(obj["procedure_code"], "procedure_code"),
            _str(obj["version"], "version"),
            _str(obj["name"], "name"),
            obj["level"],
            _int(obj["time_limit_value"], "time_limit_value", minimum=1),
            unit,
            obj["service_level"],
            _bool(obj["has_fee"], "has_fee"),
            _int(obj["fee_vnd"], "fee_vnd", maximum=2**63 - 1),
            _bool(obj["paper_result"], "paper_result"),
            _bool(obj["same_day"], "same_day"),
            _bool(obj["inter_agency"], "inter_agency"),
            _bool(obj["clock_stops_for_financial"], "clock_stops_for_financial"),
            tuple(codes),
            tuple(StepBudget.from_json(s) for s in steps),
            _date(obj["valid_from"], "valid_from") or "",
            _date(obj["valid_to"], "valid_to", nullable=True),
        )
        total = sum(s.minutes for s in procedure.step_budgets)
        if total > procedure.limit_minutes:
            raise CatalogueError(
                f"procedure {procedure.procedure_code}: step budgets sum to {total} working minutes, "
                f"more than the time limit ({procedure.limit_minutes})"
            )
        if procedure.has_fee != (procedure.fee_vnd > 0):
            raise CatalogueError(f"procedure {procedure.procedure_code}: has_fee must be true exactly when fee_vnd > 0")
        return procedure


def to_json_line(item: Unit | Official | Procedure) -> str:
    """One catalogue line: compact, UTF-8 kept readable, keys in the documented order."""
    return json.dumps(item.to_json(), ensure_ascii=False, separators=(",", ":"))


def version_in_force(versions: Iterable[Procedure], received_at: datetime) -> Procedure | None:
    """The version in force at ``received_at`` (aware): valid_from <= its local date <= valid_to.

    None when no version is (before the first, in a gap, after the last's valid_to): the dossier is
    then not assessable against the catalogue. Several in force: the latest valid_from (then the
    greatest version) wins, as in the audit's SQL.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    day = received_at.astimezone(LOCAL_ZONE).date().isoformat()
    in_force = [v for v in versions if v.valid_from <= day and (v.valid_to is None or day <= v.valid_to)]
    return max(in_force, key=lambda v: (v.valid_from, v.version), default=None)
