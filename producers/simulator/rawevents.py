"""Raw simulator events as contract objects: for JSON Lines output, publishing and tests."""

from __future__ import annotations

from typing import Any

from producers.simulator.clock import to_datetime
from schemas.events import ARRAY_FIELDS, FIELD_NAMES, TIMESTAMP_FIELDS, DossierEvent
from schemas.jsonform import to_json_line

_TS = frozenset(TIMESTAMP_FIELDS)


def to_record(raw: dict[str, Any]) -> dict[str, Any]:
    """The record dict :meth:`DossierEvent.from_record` and fastavro take (datetimes, lists, nulls)."""
    record: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = raw.get(name)
        if value is None:
            value = [] if name in ARRAY_FIELDS else (0 if name == "n_attachments" else None)
        elif name in _TS:
            value = to_datetime(value)
        elif name in ARRAY_FIELDS:
            value = list(value)
        record[name] = value
    return record


def to_event(raw: dict[str, Any]) -> DossierEvent:
    return DossierEvent.from_record(to_record(raw))


def json_line(raw: dict[str, Any]) -> str:
    return to_json_line(to_event(raw))
