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

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from dossier_runtime.store import Store
from schemas.catalogue import Official, Procedure, Unit


class CatalogueError(ValueError):
    """A catalogue file line that does not have the documented shape; the message says file:line."""


def _date(value: Any, default: date | None = None) -> date | None:
    if value in (None, ""):
        return default
    text = str(value)
    try:
        return datetime.fromisoformat(text).date() if "T" in text or " " in text else date.fromisoformat(text[:10])
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO date") from exc


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} is not true/false")


_EPOCH: Final = date(1900, 1, 1)

Converter = Callable[[dict[str, Any]], tuple[Any, ...]]

TABLES: Final[dict[str, tuple[str, tuple[str, ...], Converter]]] = {
    "units.jsonl": (
        "units",
        Unit.KEYS,
        lambda r: (
            str(r["unit_code"]),
            str(r["name"]),
            str(r["level"]),
            r.get("parent_code"),
            _date(r.get("valid_from"), _EPOCH),
            _date(r.get("valid_to")),
        ),
    ),
    "officials.jsonl": (
        "officials",
        Official.KEYS,
        lambda r: (str(r["actor_id"]), str(r["unit_code"]), str(r["role"])),
    ),
    "procedures.jsonl": (
        "procedures",
        Procedure.KEYS,
        lambda r: (
            str(r["procedure_code"]),
            str(r["version"]),
            str(r["name"]),
            str(r["level"]),
            r.get("time_limit_value"),
            str(r.get("time_limit_unit") or ""),
            str(r.get("service_level") or ""),
            _bool(r["has_fee"]),
            r.get("fee_vnd"),
            _bool(r["paper_result"]),
            _bool(r["same_day"]),
            _bool(r["inter_agency"]),
            _bool(r["clock_stops_for_financial"]),
            [str(c) for c in r.get("component_codes") or []],
            [
                {"step_code": str(s["step_code"]), "role": str(s["role"]), "minutes": int(s["minutes"])}
                for s in r.get("step_budgets") or []
            ],
            _date(r.get("valid_from")),
            _date(r.get("valid_to")),
        ),
    ),
}


def read_catalogue_file(path: Path, convert: Converter) -> list[tuple[Any, ...]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                rows.append(convert(record))
            except KeyError as exc:
                raise CatalogueError(f"{path}:{number}: missing key {exc.args[0]!r}") from exc
            except (ValueError, TypeError) as exc:
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
