"""OCEL 2.0 (JSON) writing, streamed: dossiers, units and officials as objects, every stored event an event.

The JSON form of the OCEL 2.0 standard has four top-level arrays:
``objectTypes`` and ``eventTypes`` (each ``{name, attributes: [{name, type}]}``),
``objects`` (``{id, type, attributes: [{name, time, value}], relationships:
[{objectId, qualifier}]}``) and ``events`` (``{id, type, time, attributes:
[{name, value}], relationships: [{objectId, qualifier}]}``). Events are
written as they stream out of the store; only the object identities (and a
few attributes) are remembered, and the objects are written after the
events (key order does not matter in JSON).

Object ids are prefixed by their type (``dossier:``, ``unit:``,
``official:``) so a unit and a dossier can never collide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any, Final

from schemas.events import EventType

COLUMNS: Final = (
    "event_id", "dossier_id", "seq", "event_type", "occurred_at", "recorded_at", "unit_code", "actor_id",
    "actor_role", "procedure_code", "channel", "status", "to_unit", "to_actor", "to_role", "step_code",
    "step_budget_minutes", "due_at",
)  # fmt: skip
EVENT_ATTRIBUTES: Final = (
    ("seq", "integer"),
    ("status", "integer"),
    ("step_code", "string"),
    ("step_budget_minutes", "integer"),
    ("due_at", "time"),
    ("recorded_at", "time"),
)
OBJECT_TYPES: Final = (
    {
        "name": "dossier",
        "attributes": [{"name": "procedure_code", "type": "string"}, {"name": "channel", "type": "string"}],
    },
    {"name": "unit", "attributes": [{"name": "unit_code", "type": "string"}]},
    {"name": "official", "attributes": [{"name": "role", "type": "string"}, {"name": "unit_code", "type": "string"}]},
)
EPOCH: Final = "1970-01-01T00:00:00Z"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _value(value: Any) -> Any:
    return _time(value) if isinstance(value, datetime) else value


class _Objects:
    def __init__(self) -> None:
        self.dossiers: dict[str, tuple[str, str, str]] = {}  # id -> (procedure, channel, first time)
        self.units: dict[str, str] = {}
        self.officials: dict[str, tuple[str, str, str]] = {}  # id -> (role, unit, first time)

    def see(self, row: Mapping[str, Any]) -> list[dict[str, str]]:
        t = _time(row["occurred_at"])
        dossier = f"dossier:{row['dossier_id']}"
        self.dossiers.setdefault(dossier, (row["procedure_code"], row["channel"], t))
        rels = [{"objectId": dossier, "qualifier": "dossier"}]
        unit = f"unit:{row['unit_code']}"
        self.units.setdefault(unit, t)
        rels.append({"objectId": unit, "qualifier": "acting unit"})
        if row.get("actor_id"):
            official = f"official:{row['actor_id']}"
            self.officials.setdefault(official, (row["actor_role"], row["unit_code"], t))
            rels.append({"objectId": official, "qualifier": "actor"})
        if row.get("to_unit"):
            to_unit = f"unit:{row['to_unit']}"
            self.units.setdefault(to_unit, t)
            rels.append({"objectId": to_unit, "qualifier": "receiving unit"})
        if row.get("to_actor"):
            receiver = f"official:{row['to_actor']}"
            self.officials.setdefault(receiver, (row.get("to_role") or "", row.get("to_unit") or row["unit_code"], t))
            rels.append({"objectId": receiver, "qualifier": "receiver"})
        return rels

    def write(self, out: IO[str]) -> int:
        first = True
        for oid, obj in self._objects():
            out.write(("" if first else ",\n") + json.dumps(obj, ensure_ascii=False))
            first = False
            del oid
        return len(self.dossiers) + len(self.units) + len(self.officials)

    def _objects(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for oid, (procedure, channel, t) in self.dossiers.items():
            attrs = [
                {"name": "procedure_code", "time": t, "value": procedure},
                {"name": "channel", "time": t, "value": channel},
            ]
            yield oid, {"id": oid, "type": "dossier", "attributes": attrs, "relationships": []}
        for oid in self.units:
            attrs = [{"name": "unit_code", "time": EPOCH, "value": oid.split(":", 1)[1]}]
            yield oid, {"id": oid, "type": "unit", "attributes": attrs, "relationships": []}
        for oid, (role, unit, t) in self.officials.items():
            attrs = [{"name": "role", "time": t, "value": role}, {"name": "unit_code", "time": t, "value": unit}]
            rels = [{"objectId": f"unit:{unit}", "qualifier": "member of"}] if f"unit:{unit}" in self.units else []
            yield oid, {"id": oid, "type": "official", "attributes": attrs, "relationships": rels}


def write(out: IO[str], rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """Write the OCEL 2.0 JSON document; returns (events, objects)."""
    event_types = [
        {"name": t.value, "attributes": [{"name": n, "type": k} for n, k in EVENT_ATTRIBUTES]}
        for t in EventType
        if t is not EventType.UNKNOWN
    ]
    out.write('{"objectTypes": ' + json.dumps(list(OBJECT_TYPES)) + ',\n"eventTypes": ' + json.dumps(event_types))
    out.write(',\n"events": [\n')
    objects = _Objects()
    n = 0
    for row in rows:
        event = {
            "id": row["event_id"],
            "type": row["event_type"],
            "time": _time(row["occurred_at"]),
            "attributes": [
                {"name": k, "value": _value(row[k])} for k, _t in EVENT_ATTRIBUTES if row.get(k) is not None
            ],
            "relationships": objects.see(row),
        }
        out.write(("" if n == 0 else ",\n") + json.dumps(event, ensure_ascii=False))
        n += 1
    out.write('\n],\n"objects": [\n')
    count = objects.write(out)
    out.write("\n]}\n")
    return n, count
