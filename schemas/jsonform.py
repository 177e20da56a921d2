"""The JSON form of a dossier event: the project's import/export format.

A plain JSON object with the contract's field names. Timestamps are ISO 8601
with an offset (written in Asia/Ho_Chi_Minh, ``+07:00``, with microseconds,
so no precision is lost), hashes are lowercase hex, enums are their symbols,
arrays are JSON arrays, absent values are ``null``. JSON Lines files hold one
event a line. ``from_json(to_json(e)) == e`` and both encode to the same
Avro bytes.

Reading is strict: an unknown key, a wrong type, a naive timestamp or an
unknown enum symbol is a :class:`JsonFormError` naming the field, so an
import never guesses. Optional fields may be left out (they take their
default), which keeps hand-written histories short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas.errors import JsonFormError
from schemas.events import (
    ARRAY_FIELDS,
    ENUM_FIELDS,
    ENVELOPE_FIELDS,
    FIELD_NAMES,
    TIMESTAMP_FIELDS,
    DossierEvent,
)
from schemas.jsontext import JsonTextError, loads

DISPLAY_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_REQUIRED: Final = frozenset(ENVELOPE_FIELDS) - {"prev_hash", "hash"}
_BYTES: Final = frozenset({"prev_hash", "hash"})
_INTS: Final = frozenset(
    {"seq", "status", "n_attachments", "step_budget_minutes", "time_limit_value", "amount_vnd", "rating", "ref_seq"}
)
_BOOLS: Final = frozenset({"clock_stopped", "result_electronic"})
_NON_NULL: Final = frozenset(ENVELOPE_FIELDS) | {"n_attachments"} | ARRAY_FIELDS


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in Asia/Ho_Chi_Minh with microseconds, e.g. ``2024-02-07T16:00:00.000000+07:00``."""
    return value.astimezone(DISPLAY_TZ).isoformat(timespec="microseconds")


def to_json(event: DossierEvent) -> dict[str, Any]:
    """The JSON-form object of an event (all fields, in contract order)."""
    out: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = getattr(event, name)
        if value is None:
            out[name] = None
        elif name in _BYTES:
            out[name] = value.hex()
        elif isinstance(value, datetime):
            out[name] = format_timestamp(value)
        elif isinstance(value, StrEnum):
            out[name] = value.value
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def to_json_line(event: DossierEvent) -> str:
    """One JSON Lines line (no trailing newline), UTF-8 text kept readable."""
    return json.dumps(to_json(event), ensure_ascii=False, separators=(",", ":"))


def _parse_field(name: str, value: Any) -> Any:
    if value is None:
        if name in _NON_NULL:
            raise JsonFormError(f"{name} must not be null")
        return None
    if name in TIMESTAMP_FIELDS:
        return _parse_timestamp(name, value)
    if name in _BYTES:
        if not isinstance(value, str) or len(value) != 64 or value != value.lower():
            raise JsonFormError(f"{name} must be 64 lowercase hex digits")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise JsonFormError(f"{name} must be 64 lowercase hex digits") from None
    if name in ARRAY_FIELDS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise JsonFormError(f"{name} must be an array of strings")
        return tuple(value)
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise JsonFormError(f"{name} must be an integer, got {value!r}")
        return value
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise JsonFormError(f"{name} must be true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise JsonFormError(f"{name} must be a string, got {value!r}")
    enum = ENUM_FIELDS.get(name)
    if enum is not None:
        try:
            return enum(value)
        except ValueError:
            symbols = ", ".join(m.value for m in enum)
            raise JsonFormError(f"{name} {value!r} is not one of {symbols}") from None
    return value


def _parse_timestamp(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise JsonFormError(f"{name} must be an ISO 8601 string with an offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise JsonFormError(f"{name} {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise JsonFormError(f"{name} {value!r} has no offset (write e.g. +07:00 or Z)")
    return parsed


def from_json(obj: Mapping[str, Any]) -> DossierEvent:
    """Build an event from its JSON form; raises :class:`JsonFormError` naming the field."""
    if not isinstance(obj, Mapping):
        raise JsonFormError(f"an event must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELD_NAMES))
    if unknown:
        raise JsonFormError(f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(_REQUIRED - set(obj))
    if missing:
        raise JsonFormError(f"missing field(s): {', '.join(missing)}")
    kwargs = {name: _parse_field(name, value) for name, value in obj.items()}
    return DossierEvent(**kwargs)


def from_json_line(line: str) -> DossierEvent:
    try:
        obj = loads(line)
    except JsonTextError as exc:
        raise JsonFormError(str(exc)) from None
    return from_json(obj)
