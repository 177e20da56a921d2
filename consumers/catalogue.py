"""The catalogue (units, officials, procedures) from JSON Lines files into the store.

``dossier consume load-catalogue DIR`` reads whichever of these files DIR holds
(the simulator writes them next to its Avro files), one JSON object a line:

* ``units.jsonl``: ``{"unit_code", "name", "level": "city"|"department"|"district"|"commune",
  "parent_code", "valid_from", "valid_to"}``
* ``officials.jsonl``: ``{"actor_id", "unit_code", "role"}``
* ``procedures.jsonl``: ``{"procedure_code", "version", "name", "level", "time_limit_value",
  "time_limit_unit", "service_level", "has_fee", "fee_vnd", "paper_result", "same_day",
  "inter_agency", "clock_stops_for_financial", "component_codes": [...],
  "step_budgets": [{"step_code", "role", "minutes"}], "valid_from", "valid_to"}``

Dates are ISO (``2024-01-01``; a datetime's date part is taken); ``valid_to``
null means still valid. Reloading replaces rows with the same key. A line
that is not JSON or lacks a required key stops the load with file:line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from dossier_runtime.store import Store
from schemas.catalogue import Official, Procedure, Unit
from schemas.jsontext import loads


class CatalogueError(ValueError):
    """A catalogue file line that does not have the documented shape; the message says file:line."""


def _date(value: Any, default: date | None = None) -> date | None:
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} is not an ISO date")
    try:
        day = datetime.fromisoformat(value).date() if "T" in value or " " in value else date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ValueError(f"{_shown(value)} is not an ISO date") from exc
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise ValueError(f"{value[:40]!r} is outside the days the store holds ({_FIRST_DAY} to {_LAST_DAY})")
    return day


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{_shown(value)} is not a list")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} is not true/false")


def _int(value: Any, bits: int, *, nullable: bool = True) -> int | None:
    """An integer that fits the column's Int32/Int64 (a bigger one would fail the insert, not this line)."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"{_shown(value)} is not an integer of {bits} bits")
    return value


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"{_shown(value)} is not text")
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _shown(value: Any) -> str:
    """A value for a message: at most 60 characters of it (a hostile value can be megabytes)."""
    text = (
        repr(value) if not isinstance(value, int) or abs(value) < 10**50 else f"a {len(str(abs(value)))}-digit number"
    )
    return text if len(text) <= 60 else text[:57] + "..."


_EPOCH: Final = date(1900, 1, 1)
#: ClickHouse's Date32 range: a day outside it would be stored as another day.
_FIRST_DAY: Final = date(1900, 1, 1)
_LAST_DAY: Final = date(2299, 12, 31)

Converter = Callable[[dict[str, Any]], tuple[Any, ...]]

TABLES: Final[dict[str, tuple[str, tuple[str, ...], Converter]]] = {
    "units.jsonl": (
        "units",
        Unit.KEYS,
        lambda r: (
            _text(r["unit_code"]),
            _text(r["name"]),
            _text(r["level"]),
            _optional_text(r.get("parent_code")),
            _date(r.get("valid_from"), _EPOCH),
            _date(r.get("valid_to")),
        ),
    ),
    "officials.jsonl": (
        "officials",
        Official.KEYS,
        lambda r: (_text(r["actor_id"]), _text(r["unit_code"]), _text(r["role"])),
    ),
    "procedures.jsonl": (
        "procedures",
        Procedure.KEYS,
        lambda r: (
            _text(r["procedure_code"]),
            _text(r["version"]),
            _text(r["name"]),
            _text(r["level"]),
            _int(r.get("time_limit_value"), 32),
            _text(r.get("time_limit_unit") or ""),
            _text(r.get("service_level") or ""),
            _bool(r["has_fee"]),
            _int(r.get("fee_vnd"), 64),
            _bool(r["paper_result"]),
            _bool(r["same_day"]),
            _bool(r["inter_agency"]),
            _bool(r["clock_stops_for_financial"]),
            [_text(c) for c in _list(r.get("component_codes"))],
            [
                {
                    "step_code": _text(s["step_code"]),
                    "role": _text(s["role"]),
                    "minutes": _int(s["minutes"], 32, nullable=False),
                }
                for s in _list(r.get("step_budgets"))
            ],
            _date(r.get("valid_from")),
            _date(r.get("valid_to")),
        ),
    ),
}


def read_catalogue_file(path: Path, convert: Converter) -> list[tuple[Any, ...]]:
    rows = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read it ({exc.strerror})") from exc
    with handle:
        for number, data in enumerate(handle, start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CatalogueError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1})") from exc
            if not line.strip():
                continue
            try:
                record = loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                rows.append(convert(record))
            except KeyError as exc:
                raise CatalogueError(f"{path}:{number}: missing key {_shown(exc.args[0])}") from exc
            except (ValueError, TypeError) as exc:  # JsonTextError is a ValueError
                raise CatalogueError(f"{path}:{number}: {exc}") from exc
    return rows


def load_catalogue(store: Store, directory: Path) -> list[dict[str, Any]]:
    """Load every catalogue file found in ``directory``; one report row per file."""
    found = [(name, spec) for name, spec in TABLES.items() if (directory / name).is_file()]
    if not found:
        names = ", ".join(TABLES)
        raise CatalogueError(f"{directory}: no catalogue file found (expected one of {names})")
    report = []
    for name, (table, columns, convert) in found:
        rows = read_catalogue_file(directory / name, convert)
        store.insert_rows(table, columns, rows)
        report.append({"file": str(directory / name), "table": table, "rows": len(rows)})
    return report
