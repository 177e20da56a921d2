"""Importing processing histories (QuaTrinhXuLy) exported by one-stop systems.

Rows are grouped by ``MaHoSo`` and ordered by ``ThoiDiemXuLy`` (ties keep
file order); each row becomes one event (:mod:`producers.importmapping`),
numbered seq 1, 2, … and sealed into the hash chain, and the history must
replay under the lifecycle. A bad row rejects its whole dossier: nothing of
an invalid dossier goes out.

Deterministic by construction, so a re-import yields the same bytes:

* ``event_id`` = UUIDv5 in :data:`IMPORT_NAMESPACE` of the row's nine
  columns as stored (trimmed; ``NguoiXuLy`` the pseudonym on a citizen's row,
  ``NoiDungXuLy`` scrubbed), joined with U+001F: the id of a row is not a
  hash of the personal data it held. The same row always gets the same id;
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
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from producers.importevents import (
    IMPORT_NAMESPACE,
    DossierRows,
    ParsedRow,
    build,
    envelope,
    message_scrubber,
    scrubber,
)
from producers.importmapping import ImportMapping, MappingError
from producers.importrows import COLUMNS, REQUIRED, Procedures, Row, read_rows
from producers.inputs import InputProblem
from producers.scrub import scrub
from producers.validation import Problem
from schemas.catalogue import version_in_force
from schemas.errors import CalendarError, EventValidationError
from schemas.events import DOSSIER_ID_RE, DossierEvent, EventType, validate_event
from schemas.hashchain import seal_chain
from schemas.lifecycle import check_history
from schemas.textnorm import is_blank

_STAMP: Final = re.compile(r"^\d{14}$")
_VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_E = EventType


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
        local = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=_VN)
        return local.astimezone(ZoneInfo("UTC"))
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a real date and time") from None
    except OverflowError:  # 0001-01-01 before 07:00 local is before year 1 in UTC
        raise ValueError(f"{column} {value!r} is before the first moment a timestamp can hold") from None


def event_id_of(row: Row) -> str:
    return str(uuid.uuid5(IMPORT_NAMESPACE, "\x1f".join(row[c] for c in COLUMNS)))


def _parse(row: Row) -> ParsedRow:
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
    return ParsedRow(row, at, status, started, due)


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
        if found:  # messages quote the rows: scrubbed like the events' text, since they go to terminals and logs
            hide = message_scrubber(rows, mapping, mapping.for_dossier(dossier_id).applicant_id)
            problems.extend((o, dataclasses.replace(p, reason=hide(p.reason))) for o, p in found)
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
    parsed: list[ParsedRow] = []
    found: list[tuple[int, Problem]] = []
    for row in rows:
        try:
            parsed.append(_parse(row))
        except ValueError as exc:
            found.append((row.ordinal, Problem(row.source, f"{dossier_id}: {exc}", dossier_id)))
    if found:
        return [], found, []
    unique, duplicates = _unique(sorted(parsed, key=lambda p: (p.at, p.row.ordinal)))
    defaults = mapping.for_dossier(dossier_id)
    try:
        env = envelope(dossier_id, unique, defaults, key)
    except (ValueError, MappingError) as exc:
        first = unique[0].row
        return [], [(first.ordinal, Problem(first.source, f"{dossier_id}: {exc}", dossier_id))], duplicates
    types, found = _types(dossier_id, unique, mapping)
    if found:
        return [], found, duplicates
    roles = [mapping.role(p.row["ChucDanh"], t) for p, t in zip(unique, types, strict=True)]
    received = next((p.at for p, t in zip(unique, types, strict=True) if t is _E.DOSSIER_RECEIVED), unique[0].at)
    version = None
    if procedures is not None:
        version = version_in_force(procedures.get(str(env["procedure_code"]), ()), received)
    d = DossierRows(dossier_id, unique, types, roles, env, defaults, mapping, version, scrubber(unique, roles, mapping))
    drafts: list[DossierEvent] = []
    ids: dict[str, int] = {}
    for i, p in enumerate(unique):
        try:
            drafts.append(build(d, i, ids))
        except (ValueError, CalendarError) as exc:  # CalendarError: a year the working calendar does not cover
            found.append((p.row.ordinal, Problem(p.row.source, f"{dossier_id}: {exc}", dossier_id)))
    if found:
        return [], found, duplicates
    sealed = list(seal_chain(drafts))
    for event, p in zip(sealed, unique, strict=True):
        try:
            validate_event(event)  # the contract, unknown_facts included: a mapping gap shows as its row
        except (EventValidationError, CalendarError) as exc:
            found.append((p.row.ordinal, Problem(p.row.source, str(exc), dossier_id)))
    for error in check_history(sealed):
        row = unique[error.seq - 1].row if 1 <= error.seq <= len(unique) else unique[0].row
        found.append((row.ordinal, Problem(row.source, str(error), dossier_id)))
    if found:
        return [], found, duplicates
    return [(e, p.row.source) for e, p in zip(sealed, unique, strict=True)], [], duplicates


def _unique(parsed: list[ParsedRow]) -> tuple[list[ParsedRow], list[str]]:
    """The rows without exact repeats (the same nine columns), and a note per repeat skipped."""
    unique: list[ParsedRow] = []
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for p in parsed:
        eid = event_id_of(p.row)
        if eid in seen:
            duplicates.append(f"{p.row.source}: duplicate of {seen[eid]}, skipped")
            continue
        seen[eid] = p.row.source
        unique.append(p)
    return unique, duplicates


def _types(
    dossier_id: str, rows: list[ParsedRow], mapping: ImportMapping
) -> tuple[list[EventType], list[tuple[int, Problem]]]:
    """Each row's event type, from the move and NoiDungXuLy; a row no rule maps is a problem."""
    types: list[EventType] = []
    found: list[tuple[int, Problem]] = []
    for i, p in enumerate(rows):
        before = rows[i - 1].status if i else None
        content = p.row["NoiDungXuLy"]
        event_type = mapping.event_type(before, p.status, content)
        if event_type is None:
            moved = f"{before if before is not None else 'start'} → {p.status}"
            shown = scrub(content)  # the message goes to a terminal and to logs
            message = (
                f"no mapping for TrangThai {moved} with NoiDungXuLy {shown!r}; "
                'add an "events" rule to the --mapping file'
            )
            found.append((p.row.ordinal, Problem(p.row.source, f"{dossier_id}: {message}", dossier_id)))
            continue
        types.append(event_type)
    return types, found
