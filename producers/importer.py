"""Importing processing histories (QuaTrinhXuLy) exported by one-stop systems.

Rows are grouped by ``MaHoSo`` and ordered by ``ThoiDiemXuLy`` (ties keep
file order); each row becomes one event (:mod:`producers.importmapping`),
numbered seq 1, 2, … and sealed into the hash chain, and the history must
replay under the lifecycle. A bad row rejects its whole dossier: nothing of
an invalid dossier goes out.

Deterministic by construction, so a re-import yields the same bytes:

* ``event_id`` = UUIDv5 in :data:`IMPORT_NAMESPACE` of the row's nine
  columns, trimmed, joined with U+001F. The same row always gets the same id;
  an exact duplicate row is skipped (and reported), not imported twice;
* ``recorded_at`` = ``occurred_at`` = ``ThoiDiemXuLy`` (the export has one
  time per row), read as Asia/Ho_Chi_Minh (UTC+7) and stored in UTC;
* ``procedure_version``: given a procedure catalogue, the version in force at
  reception (the DossierReceived event's time, else the first event's;
  :func:`schemas.catalogue.version_in_force`, the audit's rule); without one,
  or when no version is in force then, null;
* no other input than the files, the mapping, the options and the catalogue.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from producers.importmapping import (
    NO_RESULT_REF,
    UNKNOWN_APPLICANT_PREFIX,
    DossierDefaults,
    ImportMapping,
    MappingError,
)
from producers.importrows import COLUMNS, REQUIRED, Procedures, Row, read_rows
from producers.inputs import InputProblem
from producers.validation import Problem
from schemas.catalogue import version_in_force
from schemas.events import (
    DOSSIER_ID_RE,
    UNIT_CODE_RE,
    Channel,
    DossierEvent,
    EventType,
    ServiceLevel,
    TimeLimitUnit,
)
from schemas.hashchain import seal_chain
from schemas.lifecycle import check_history
from schemas.pseudonym import applicant_ref
from schemas.textnorm import is_blank
from schemas.workingtime import default_calendar

IMPORT_NAMESPACE: Final = uuid.UUID("3b8f5d2a-6c1e-5f4b-9a7d-2e0c8b6a4f19")
VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
#: The regime change of NĐ 118/2025 (domain.md §0): the default rule_set follows the reception date.
ND118_FROM: Final = datetime(2025, 7, 1, tzinfo=VN)
_STAMP: Final = re.compile(r"^\d{14}$")
_E = EventType
_HANDOVERS: Final = frozenset({_E.DOSSIER_TRANSFERRED, _E.STEP_HANDED_OVER, _E.STEP_RETURNED})


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """Accepted events (per dossier, in seq order) and everything that was not accepted."""

    events: tuple[DossierEvent, ...]
    sources: tuple[str, ...]  # the row each event came from
    rejected_rows: tuple[Row, ...]
    problems: tuple[Problem, ...]
    duplicates: tuple[str, ...]  # "file:line: duplicate of file:line, skipped"
    rows_read: int
    dossiers_read: int
    dossiers_rejected: int
    #: Accepted dossiers left without procedure_version: no version in force at reception in the
    #: catalogue (None: no catalogue was given).
    unversioned: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows_read": self.rows_read,
            "dossiers_read": self.dossiers_read,
            "dossiers_accepted": self.dossiers_read - self.dossiers_rejected,
            "dossiers_rejected": self.dossiers_rejected,
            "events_accepted": len(self.events),
            "rows_rejected": len(self.rejected_rows),
            "duplicate_rows_skipped": len(self.duplicates),
            "problems": len(self.problems),
        }
        if self.unversioned is not None:
            out["dossiers_without_version"] = len(self.unversioned)
        return out


def parse_stamp(value: str, column: str) -> datetime:
    """``yyyyMMddHHmmss`` in UTC+7 → an aware datetime (UTC)."""
    if not _STAMP.match(value):
        raise ValueError(f"{column} {value!r} is not yyyyMMddHHmmss (e.g. 20240115083000)")
    try:
        local = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a real date and time") from None
    return local.astimezone(ZoneInfo("UTC"))


def event_id_of(row: Row) -> str:
    return str(uuid.uuid5(IMPORT_NAMESPACE, "\x1f".join(row[c] for c in COLUMNS)))


@dataclasses.dataclass(frozen=True)
class _Parsed:
    row: Row
    at: datetime
    status: int
    started: datetime | None
    due: datetime | None


def _parse(row: Row) -> _Parsed:
    empty = [c for c in REQUIRED if is_blank(row[c])]
    if empty:
        raise ValueError(f"empty {', '.join(empty)}")
    if not DOSSIER_ID_RE.match(row["MaHoSo"]):
        raise ValueError(f"MaHoSo {row['MaHoSo']!r} is not <unit code>-<yyMMdd>-<nnnn>")
    try:
        status = int(row["TrangThai"])
    except ValueError:
        status = 0
    if not 1 <= status <= 10:
        raise ValueError(f"TrangThai {row['TrangThai']!r} is not a national status code 1-10")
    at = parse_stamp(row["ThoiDiemXuLy"], "ThoiDiemXuLy")
    started = parse_stamp(row["NgayBatDau"], "NgayBatDau") if row["NgayBatDau"] else None
    due = (
        parse_stamp(row["NgayKetThucTheoQuyDinh"], "NgayKetThucTheoQuyDinh") if row["NgayKetThucTheoQuyDinh"] else None
    )
    return _Parsed(row, at, status, started, due)


def import_files(
    paths: Sequence[Path],
    mapping: ImportMapping,
    *,
    pseudonym_key: bytes | None = None,
    procedures: Procedures | None = None,
) -> ImportResult:
    """Read, map, chain and check every dossier of the exports (see the module docstring).

    ``procedures``: the catalogue the procedure versions come from (None: versions stay null).
    """
    loose: list[Problem] = []
    by_dossier: dict[str, list[Row]] = {}
    rows_read = 0
    for n, path in enumerate(paths):
        for item in read_rows(path, start=n * 1_000_000_000):
            if isinstance(item, InputProblem):
                loose.append(Problem(item.source, item.reason))
                continue
            rows_read += 1
            by_dossier.setdefault(item["MaHoSo"], []).append(item)
    events: list[DossierEvent] = []
    sources: list[str] = []
    rejected: list[Row] = []
    problems: list[tuple[int, Problem]] = [(-1, p) for p in loose]
    duplicates: list[str] = []
    for dossier_id, rows in by_dossier.items():
        converted, found, dups = _convert(dossier_id, rows, mapping, pseudonym_key, procedures)
        duplicates.extend(dups)
        if found:
            problems.extend(found)
            rejected.extend(rows)
            continue
        events.extend(e for e, _ in converted)
        sources.extend(s for _, s in converted)
    problems.sort(key=lambda pair: pair[0])
    return ImportResult(
        events=tuple(events),
        sources=tuple(sources),
        rejected_rows=tuple(sorted(rejected, key=lambda r: r.ordinal)),
        problems=tuple(p for _, p in problems),
        duplicates=tuple(duplicates),
        rows_read=rows_read,
        dossiers_read=len(by_dossier),
        dossiers_rejected=len({r["MaHoSo"] for r in rejected}),
        unversioned=None
        if procedures is None
        else tuple(dict.fromkeys(e.dossier_id for e in events if e.procedure_version is None)),
    )


def _convert(
    dossier_id: str, rows: list[Row], mapping: ImportMapping, key: bytes | None, procedures: Procedures | None
) -> tuple[list[tuple[DossierEvent, str]], list[tuple[int, Problem]], list[str]]:
    parsed: list[_Parsed] = []
    found: list[tuple[int, Problem]] = []
    for row in rows:
        try:
            parsed.append(_parse(row))
        except ValueError as exc:
            found.append((row.ordinal, Problem(row.source, f"{dossier_id}: {exc}", dossier_id)))
    if found:
        return [], found, []
    parsed.sort(key=lambda p: (p.at, p.row.ordinal))
    unique: list[_Parsed] = []
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for p in parsed:
        eid = event_id_of(p.row)
        if eid in seen:
            duplicates.append(f"{p.row.source}: duplicate of {seen[eid]}, skipped")
            continue
        seen[eid] = p.row.source
        unique.append(p)
    try:
        envelope = _envelope(dossier_id, unique, mapping.for_dossier(dossier_id), key)
    except (ValueError, MappingError) as exc:
        first = unique[0].row
        return [], [(first.ordinal, Problem(first.source, f"{dossier_id}: {exc}", dossier_id))], duplicates
    drafts: list[DossierEvent] = []
    for i, p in enumerate(unique):
        try:
            drafts.append(_event(dossier_id, i, unique, envelope, mapping))
        except ValueError as exc:
            found.append((p.row.ordinal, Problem(p.row.source, f"{dossier_id}: {exc}", dossier_id)))
    if found:
        return [], found, duplicates
    if procedures is not None:
        drafts = _with_version(drafts, procedures)
    sealed = list(seal_chain(drafts))
    for error in check_history(sealed):
        row = unique[error.seq - 1].row if 1 <= error.seq <= len(unique) else unique[0].row
        found.append((row.ordinal, Problem(row.source, str(error), dossier_id)))
    if found:
        return [], found, duplicates
    return [(e, p.row.source) for e, p in zip(sealed, unique, strict=True)], [], duplicates


def _with_version(drafts: list[DossierEvent], procedures: Procedures) -> list[DossierEvent]:
    """The events with the procedure version in force at reception (unchanged when none is)."""
    received = next((e.occurred_at for e in drafts if e.event_type is _E.DOSSIER_RECEIVED), drafts[0].occurred_at)
    version = version_in_force(procedures.get(drafts[0].procedure_code, ()), received)
    if version is None:
        return drafts
    return [e.replace(procedure_version=version.version) for e in drafts]


def _envelope(dossier_id: str, rows: list[_Parsed], defaults: DossierDefaults, key: bytes | None) -> dict[str, Any]:
    if not defaults.procedure_code:
        raise ValueError("no procedure code: give --procedure-code, or procedure_code in the --mapping file")
    channel = defaults.channel or (Channel.ONLINE if rows[0].status == 1 else Channel.DIRECT)
    received = next((p.at for p in rows if p.status == 2), rows[0].at)
    if defaults.applicant_id:
        if not key:
            raise ValueError("applicant_id in the mapping needs DOSSIER_PSEUDONYM_KEY to be pseudonymised")
        ref = applicant_ref(defaults.applicant_id, key)
    else:
        ref = UNKNOWN_APPLICANT_PREFIX + dossier_id
    return {
        "procedure_code": defaults.procedure_code,
        "rule_set": defaults.rule_set or ("ND118-2025" if received >= ND118_FROM else "ND61-2018"),
        "applicant_ref": ref,
        "applicant_kind": defaults.applicant_kind,
        "channel": channel,
        "_defaults": defaults,
    }


def _unit(name: str, dossier_id: str, mapping: ImportMapping) -> str:
    if is_blank(name):
        match = DOSSIER_ID_RE.match(dossier_id)
        return match.group("unit") if match else ""
    if name in mapping.units:
        return mapping.units[name]
    if UNIT_CODE_RE.match(name):
        return name
    raise ValueError(f'PhongBanXuLy {name!r} is not a unit code; map it under "units" in the --mapping file')


def _event(
    dossier_id: str, i: int, rows: list[_Parsed], envelope: Mapping[str, Any], mapping: ImportMapping
) -> DossierEvent:
    p = rows[i]
    before = rows[i - 1].status if i else None
    content = p.row["NoiDungXuLy"]
    event_type = mapping.event_type(before, p.status, content)
    if event_type is None:
        moved = f"{before if before is not None else 'start'} → {p.status}"
        raise ValueError(
            f'no mapping for TrangThai {moved} with NoiDungXuLy {content!r}; add an "events" rule to the --mapping file'
        )
    unit = _unit(p.row["PhongBanXuLy"], dossier_id, mapping)
    fields = _payload(event_type, i, rows, envelope, mapping, unit, dossier_id)
    env = {k: v for k, v in envelope.items() if not k.startswith("_")}
    return DossierEvent(
        event_id=event_id_of(p.row),
        dossier_id=dossier_id,
        seq=i + 1,
        event_type=event_type,
        occurred_at=p.at,
        recorded_at=p.at,
        unit_code=unit,
        actor_id=p.row["NguoiXuLy"],
        actor_role=mapping.role(p.row["ChucDanh"], event_type),
        status=p.status,
        **env,
        **fields,
    )


def _payload(
    t: EventType,
    i: int,
    rows: list[_Parsed],
    envelope: Mapping[str, Any],
    mapping: ImportMapping,
    unit: str,
    dossier_id: str,
) -> dict[str, Any]:
    p = rows[i]
    content = p.row["NoiDungXuLy"]
    nxt = rows[i + 1] if i + 1 < len(rows) else None
    if t is _E.DOSSIER_RECEIVED:
        return _reception(p, envelope, mapping)
    if t in _HANDOVERS or t is _E.INTER_AGENCY_TRANSFERRED:
        to_unit = _unit(nxt.row["PhongBanXuLy"], dossier_id, mapping) if nxt else unit
        out: dict[str, Any] = {"to_unit": to_unit, "step_due_at": p.due}
        if t is not _E.INTER_AGENCY_TRANSFERRED or nxt:
            out["to_actor"] = nxt.row["NguoiXuLy"] if nxt else p.row["NguoiXuLy"]
            receiver = nxt or p
            out["to_role"] = mapping.role(receiver.row["ChucDanh"], _E.STEP_HANDED_OVER)
        if t is _E.STEP_RETURNED:
            out["reason"] = content
        return out
    simple: dict[EventType, dict[str, Any]] = {
        _E.RECEPTION_GUIDANCE_ISSUED: {"requested_documents": (content or "(không ghi)",), "reason": content},
        _E.RECEPTION_REFUSED: {"reason": content},
        _E.DOSSIER_DIGITIZED: {"documents": (content or "(không ghi)",)},
        _E.SUPPLEMENT_REQUESTED: {"requested_documents": (content or "(không ghi)",), "reason": content},
        _E.FINANCIAL_OBLIGATION_REQUESTED: {"amount_vnd": mapping.amount_vnd, "clock_stopped": True},
        _E.FINANCIAL_OBLIGATION_FULFILLED: {"amount_vnd": mapping.amount_vnd},
        _E.WITHDRAWAL_REQUESTED: {"reason": content or None},
        _E.WITHDRAWAL_DECLINED: {"reason": content},
        _E.PROCESSING_STOPPED: {"reason": content},
        _E.RESULT_ISSUED: {"result_ref": NO_RESULT_REF, "result_electronic": False},
        _E.RESULT_RETURNED: {"return_channel": envelope["channel"]},
        _E.RESULT_RECALLED: {"reason": content},
        _E.SYNCED_TO_NATIONAL: {"ref_seq": i if i else None},
    }
    if t is _E.APOLOGY_ISSUED:
        if p.due is None:
            raise ValueError("an apology row needs NgayKetThucTheoQuyDinh (the new due date)")
        return {"new_due_at": p.due, "reason": content}
    return simple.get(t, {})


def _reception(p: _Parsed, envelope: Mapping[str, Any], mapping: ImportMapping) -> dict[str, Any]:
    defaults: DossierDefaults = envelope["_defaults"]
    value, unit = defaults.time_limit_value, defaults.time_limit_unit
    if value is None:
        if p.due is None:
            raise ValueError(
                "the reception row has no NgayKetThucTheoQuyDinh to derive the time limit from; "
                "give --time-limit or time_limit in the --mapping file"
            )
        calendar = default_calendar()
        worked = calendar.working_time_between(p.at, p.due)
        value = max(0, math.ceil(worked / calendar.hours.per_day - 1e-9))
        unit = TimeLimitUnit.WORKING_DAYS
    level = mapping.service_level or (
        ServiceLevel.FULL_ONLINE if envelope["channel"] is Channel.ONLINE else ServiceLevel.OFFLINE
    )
    return {
        "due_at": p.due,
        "time_limit_value": value,
        "time_limit_unit": unit,
        "deadline_convention": mapping.deadline_convention,
        "service_level": level,
    }
