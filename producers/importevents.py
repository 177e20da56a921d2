"""One dossier's rows → its events (unsealed): types, people, payloads, unknown facts.

:mod:`producers.importer` parses, orders and de-duplicates the rows and seals
what this module builds. Here each row's event type follows from the move
(:mod:`producers.importmapping`), its actor from ``NguoiXuLy`` (a citizen's
row: the applicant's pseudonym), its free text is scrubbed
(:mod:`producers.scrub`), and what the row cannot say is listed unknown
(:mod:`producers.importfacts`).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from producers.importfacts import components, match_documents, unknown_facts
from producers.importmapping import UNKNOWN_APPLICANT_PREFIX, DossierDefaults, ImportMapping
from producers.importrows import COLUMNS, Row
from producers.scrub import Scrubber
from schemas.catalogue import Procedure
from schemas.events import (
    DOSSIER_ID_RE,
    UNIT_CODE_RE,
    ActorRole,
    Channel,
    DossierEvent,
    EventType,
    ServiceLevel,
    TimeLimitUnit,
)
from schemas.pseudonym import applicant_ref
from schemas.textnorm import is_blank
from schemas.workingtime import default_calendar

IMPORT_NAMESPACE: Final = uuid.UUID("3b8f5d2a-6c1e-5f4b-9a7d-2e0c8b6a4f19")
VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
#: The regime change of NĐ 118/2025 (domain.md §0): the default rule_set follows the reception date.
ND118_FROM: Final = datetime(2025, 7, 1, tzinfo=VN)
_E = EventType
_HANDOVERS: Final = frozenset({_E.DOSSIER_TRANSFERRED, _E.STEP_HANDED_OVER, _E.STEP_RETURNED})
#: Rows that record something about the dossier rather than a step of its handling: never the receiver of a
#: hand-over.
_BOOKKEEPING: Final = frozenset(
    {_E.SYNCED_TO_NATIONAL, _E.APPLICANT_NOTIFIED, _E.FEEDBACK_FILED, _E.ADMIN_OVERRIDE, _E.RESULT_COLLECTED}
)
_NOT_RECEIVERS: Final = frozenset({ActorRole.APPLICANT, ActorRole.SYSTEM})


@dataclasses.dataclass(frozen=True)
class ParsedRow:
    row: Row
    at: datetime
    status: int
    started: datetime | None
    due: datetime | None


@dataclasses.dataclass(frozen=True)
class DossierRows:
    """One dossier's rows in order, with what is decided once for all of them."""

    dossier_id: str
    rows: Sequence[ParsedRow]
    types: Sequence[EventType]
    roles: Sequence[ActorRole]
    envelope: dict[str, Any]
    defaults: DossierDefaults
    mapping: ImportMapping
    version: Procedure | None
    scrub: Scrubber

    def actor(self, i: int) -> str:
        """``NguoiXuLy``, or the applicant's pseudonym on a citizen's own row."""
        if self.roles[i] is ActorRole.APPLICANT:
            return str(self.envelope["applicant_ref"])
        return self.rows[i].row["NguoiXuLy"]

    def text(self, i: int) -> str:
        return self.scrub(self.rows[i].row["NoiDungXuLy"])


def applicant(dossier_id: str, rows: Sequence[ParsedRow], defaults: DossierDefaults, key: bytes | None) -> str:
    """The applicant's pseudonym: of the mapping's applicant_id, else of SoGiayToChuHoSo, else one per dossier."""
    number = defaults.applicant_id or next((p.row["SoGiayToChuHoSo"] for p in rows if p.row["SoGiayToChuHoSo"]), "")
    if not number:
        return UNKNOWN_APPLICANT_PREFIX + dossier_id
    if not key:
        where = "applicant_id in the mapping" if defaults.applicant_id else "SoGiayToChuHoSo"
        raise ValueError(f"{where} needs DOSSIER_PSEUDONYM_KEY to be pseudonymised")
    return applicant_ref(number, key)


def envelope(
    dossier_id: str, rows: Sequence[ParsedRow], defaults: DossierDefaults, key: bytes | None
) -> dict[str, Any]:
    if not defaults.procedure_code:
        raise ValueError("no procedure code: give --procedure-code, or procedure_code in the --mapping file")
    channel = defaults.channel or (Channel.ONLINE if rows[0].status == 1 else Channel.DIRECT)
    received = next((p.at for p in rows if p.status == 2), rows[0].at)
    return {
        "procedure_code": defaults.procedure_code,
        "rule_set": defaults.rule_set or ("ND118-2025" if received >= ND118_FROM else "ND61-2018"),
        "applicant_ref": applicant(dossier_id, rows, defaults, key),
        "applicant_kind": defaults.applicant_kind,
        "channel": channel,
    }


def scrubber(rows: Sequence[ParsedRow], roles: Sequence[ActorRole], mapping: ImportMapping) -> Scrubber:
    """The dossier's scrubber: its applicant's names (ChuHoSo, the citizen rows' NguoiXuLy) and ID numbers.

    A NguoiXuLy that is itself a title ("Công dân", "Người nộp hồ sơ") is no name: scrubbing it would take the
    word out of every text of the dossier.
    """
    citizens = {p.row["NguoiXuLy"] for p, r in zip(rows, roles, strict=True) if r is ActorRole.APPLICANT}
    names = {p.row["ChuHoSo"] for p in rows} | {n for n in citizens if not mapping.is_title(n)}
    return Scrubber(sorted(n for n in names if n), identities=[p.row["SoGiayToChuHoSo"] for p in rows])


def message_scrubber(rows: Sequence[Row], mapping: ImportMapping, applicant_id: str | None) -> Scrubber:
    """The scrubber of what a problem message quotes of a dossier's rows (its text, a value that is not a code).

    A message may come before the rows' event types are known, so a citizen is told by ``ChucDanh`` alone, and
    a title that names no role counts as a citizen's: a message that loses an official's name loses little.
    """
    submitted = EventType.DOSSIER_SUBMITTED
    citizens = {r["NguoiXuLy"] for r in rows if mapping.role(r["ChucDanh"], submitted) is ActorRole.APPLICANT}
    names = {r["ChuHoSo"] for r in rows} | {n for n in citizens if not mapping.is_title(n)}
    numbers = [r["SoGiayToChuHoSo"] for r in rows] + [applicant_id or ""]
    return Scrubber(sorted(n for n in names if n), identities=numbers)


def event_id(row: Row, actor_id: str, text: str, occurrence: int) -> str:
    """UUIDv5 of the row's nine columns as stored: the pseudonym for a citizen, the scrubbed text.

    An official's row without personal data keeps the id of its raw content. ``occurrence`` > 1 tells
    apart rows that only scrubbing made equal.
    """
    values = {**row.values, "NguoiXuLy": actor_id, "NoiDungXuLy": text}
    name = "\x1f".join(values.get(c, "") for c in COLUMNS)
    return str(uuid.uuid5(IMPORT_NAMESPACE, name if occurrence == 1 else f"{name}\x1f#{occurrence}"))


def unit(name: str, dossier_id: str, mapping: ImportMapping) -> str:
    if is_blank(name):
        match = DOSSIER_ID_RE.match(dossier_id)
        return match.group("unit") if match else ""
    if name in mapping.units:
        return mapping.units[name]
    if UNIT_CODE_RE.match(name):
        return name
    raise ValueError(f'PhongBanXuLy {name!r} is not a unit code; map it under "units" in the --mapping file')


def build(d: DossierRows, i: int, ids: dict[str, int]) -> DossierEvent:
    """The event of row ``i`` (unsealed: seq set, hashes zero)."""
    p = d.rows[i]
    where = unit(p.row["PhongBanXuLy"], d.dossier_id, d.mapping)
    actor = d.actor(i)
    text = d.text(i)
    base = event_id(p.row, actor, text, 1)
    ids[base] = ids.get(base, 0) + 1
    draft = DossierEvent(
        event_id=event_id(p.row, actor, text, ids[base]),
        dossier_id=d.dossier_id,
        seq=i + 1,
        event_type=d.types[i],
        occurred_at=p.at,
        recorded_at=p.at,
        unit_code=where,
        actor_id=actor,
        actor_role=d.roles[i],
        status=p.status,
        procedure_version=d.version.version if d.version else None,
        **d.envelope,
        **_payload(d, i, where, text),
    )
    return draft.replace(unknown_facts=unknown_facts(draft, reason_said="NoiDungXuLy" not in p.row.absent))


def _receiver(d: DossierRows, i: int) -> int | None:
    """The row after ``i`` of the official who took the dossier over (syncs, notices, citizens skipped)."""
    return next(
        (j for j in range(i + 1, len(d.rows)) if d.types[j] not in _BOOKKEEPING and d.roles[j] not in _NOT_RECEIVERS),
        None,
    )


def _handover(d: DossierRows, i: int, where: str, text: str) -> dict[str, Any]:
    t, p = d.types[i], d.rows[i]
    j = _receiver(d, i)
    nxt = d.rows[j] if j is not None else None
    out: dict[str, Any] = {"to_unit": unit(nxt.row["PhongBanXuLy"], d.dossier_id, d.mapping) if nxt else where}
    out["step_due_at"] = p.due
    if t is not _E.INTER_AGENCY_TRANSFERRED or nxt:
        out["to_actor"] = nxt.row["NguoiXuLy"] if nxt else None
        out["to_role"] = d.mapping.role((nxt or p).row["ChucDanh"], _E.STEP_HANDED_OVER)
    if t is _E.STEP_RETURNED:
        out["reason"] = text
    return out


def _payload(d: DossierRows, i: int, where: str, text: str) -> dict[str, Any]:
    t, p = d.types[i], d.rows[i]
    said = "NoiDungXuLy" not in p.row.absent
    reason = text if said else None
    optional = text or None
    codes = components(d.version)
    docs = match_documents(p.row["NoiDungXuLy"], codes)
    if t is _E.DOSSIER_RECEIVED:
        return {**_reception(d, p), "documents": docs}
    if t in _HANDOVERS or t is _E.INTER_AGENCY_TRANSFERRED:
        return _handover(d, i, where, text)
    if t is _E.APOLOGY_ISSUED:
        if p.due is None:
            raise ValueError("an apology row needs NgayKetThucTheoQuyDinh (the new due date)")
        return {"new_due_at": p.due, "reason": reason}
    if t is _E.ADMIN_OVERRIDE:
        before = d.rows[i - 1].status if i else p.status
        if before != p.status:  # a mapping rule that reads a move as an override: the status is what changed
            return {"override_field": "status", "override_old": str(before), "override_new": str(p.status),
                    "reason": optional}  # fmt: skip
        if p.due is None:
            raise ValueError("a row that resets the due date needs NgayKetThucTheoQuyDinh (the new due date)")
        new = p.due.astimezone(VN).isoformat()
        return {"override_field": "due_at", "override_new": new, "due_at": p.due, "reason": optional}
    stops = d.version.clock_stops_for_financial if d.version else True
    simple: dict[EventType, dict[str, Any]] = {
        _E.DOSSIER_SUBMITTED: {"documents": docs},
        _E.RECEPTION_GUIDANCE_ISSUED: {"requested_documents": docs, "reason": optional},
        _E.RECEPTION_REFUSED: {"reason": reason},
        _E.DOSSIER_DIGITIZED: {"documents": docs},
        _E.SUPPLEMENT_REQUESTED: {"requested_documents": docs, "reason": reason},
        _E.SUPPLEMENT_RECEIVED: {"documents": docs},
        _E.FINANCIAL_OBLIGATION_REQUESTED: {
            "amount_vnd": d.mapping.amount_vnd,
            "clock_stopped": stops,
            "reason": optional,
        },
        _E.FINANCIAL_OBLIGATION_FULFILLED: {"amount_vnd": d.mapping.amount_vnd},
        _E.WITHDRAWAL_REQUESTED: {"reason": optional},
        _E.WITHDRAWAL_DECLINED: {"reason": reason},
        _E.PROCESSING_STOPPED: {"reason": reason},
        _E.APPLICANT_NOTIFIED: {"return_channel": d.envelope["channel"], "reason": optional},
        _E.RESULT_RETURNED: {"return_channel": d.envelope["channel"]},
        _E.RESULT_RECALLED: {"reason": reason},
        _E.FEEDBACK_FILED: {"reason": reason},
        _E.SYNCED_TO_NATIONAL: {"ref_seq": i if i else None},
    }
    return simple.get(t, {})


def _reception(d: DossierRows, p: ParsedRow) -> dict[str, Any]:
    value, limit_unit = d.defaults.time_limit_value, d.defaults.time_limit_unit
    if value is None:
        if p.due is None:
            raise ValueError(
                "the reception row has no NgayKetThucTheoQuyDinh to derive the time limit from; "
                "give --time-limit or time_limit in the --mapping file"
            )
        calendar = default_calendar()
        worked = calendar.working_time_between(p.at, p.due)
        value = max(0, math.ceil(worked / calendar.hours.per_day - 1e-9))
        limit_unit = TimeLimitUnit.WORKING_DAYS
    level = d.mapping.service_level or (
        ServiceLevel.FULL_ONLINE if d.envelope["channel"] is Channel.ONLINE else ServiceLevel.OFFLINE
    )
    return {
        "due_at": p.due,
        "time_limit_value": value,
        "time_limit_unit": limit_unit,
        "deadline_convention": d.mapping.deadline_convention,
        "service_level": level,
    }


__all__ = ["DossierRows", "ParsedRow", "build", "envelope", "message_scrubber", "scrubber"]
