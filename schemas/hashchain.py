"""The per-dossier SHA-256 hash chain.

``hash = SHA-256(canonical(event without hash))`` and ``prev_hash`` of seq n
is the ``hash`` of seq n-1 (32 zero bytes for seq 1); ``prev_hash`` is part
of the canonical encoding, so changing any stored field of any event breaks
every later link.

The canonical encoding is not the Avro binary body, on purpose:

* it must not change when the schema evolves. Fields are taken in name
  order, and absent values (null, empty array) are left out, so a field that
  a later schema version adds with a null default leaves every existing hash
  valid;
* it must be recomputable inside ClickHouse from the stored columns, so that
  integrity verification of millions of events runs as one SQL query.
  :func:`canonical_sql` builds that expression from the same field list.

Each present field contributes ``name:len:value`` where ``value`` is the
UTF-8 text of the field and ``len`` its length in bytes, which makes the
encoding unambiguous whatever the field contains:

==================  =====================================================
string              the string
int, long           decimal digits, ``-`` for negatives
timestamp           microseconds since the Unix epoch, decimal
enum                the symbol
boolean             ``true`` / ``false``
32-byte hash        lowercase hex
array of strings    each element as ``len:element``, concatenated
==================  =====================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from schemas.events import ARRAY_FIELDS, FIELD_NAMES, TIMESTAMP_FIELDS, ZERO_HASH, DossierEvent

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: Fields covered by the hash, in canonical (name) order.
HASHED_FIELDS: Final = tuple(sorted(name for name in FIELD_NAMES if name != "hash"))

_TIMESTAMPS: Final = frozenset(TIMESTAMP_FIELDS)
_BINARY: Final = frozenset({"prev_hash"})
_BOOLEANS: Final = frozenset({"clock_stopped", "result_electronic"})


def micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(name: str, value: Any) -> bytes:
    if name in _TIMESTAMPS:
        return str(micros(value)).encode()
    if name in _BINARY:
        return bytes(value).hex().encode()
    if name in ARRAY_FIELDS:
        parts = []
        for item in value:
            raw = item.encode()
            parts.append(b"%d:%s" % (len(raw), raw))
        return b"".join(parts)
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, StrEnum):
        return value.value.encode()
    if isinstance(value, int):
        return str(value).encode()
    return str(value).encode()


def canonical(fields: DossierEvent | dict[str, Any]) -> bytes:
    """The canonical encoding of an event (or its record dict) without ``hash``."""
    get = fields.get if isinstance(fields, dict) else lambda n: getattr(fields, n)
    out = []
    for name in HASHED_FIELDS:
        value = get(name)
        if value is None or (name in ARRAY_FIELDS and not value):
            continue
        raw = _text(name, value)
        out.append(b"%s:%d:%s" % (name.encode(), len(raw), raw))
    return b"".join(out)


def compute_hash(fields: DossierEvent | dict[str, Any]) -> bytes:
    """SHA-256 of the canonical encoding: the value ``hash`` must hold."""
    return hashlib.sha256(canonical(fields)).digest()


def seal(event: DossierEvent, prev_hash: bytes) -> DossierEvent:
    """The event with ``prev_hash`` set and ``hash`` computed."""
    linked = event.replace(prev_hash=prev_hash, hash=ZERO_HASH)
    return linked.replace(hash=compute_hash(linked))


def seal_chain(events: Iterable[DossierEvent]) -> Iterator[DossierEvent]:
    """Seal a dossier's events in order, linking each to the previous one."""
    prev = ZERO_HASH
    for event in events:
        sealed = seal(event, prev)
        prev = sealed.hash
        yield sealed


def canonical_sql(column: dict[str, str] | None = None) -> str:
    """A ClickHouse expression computing :func:`canonical` from stored columns.

    ``column`` maps a field name to the SQL expression holding it when that is
    not a column of the same name. Timestamps must be ``DateTime64(6)``,
    ``prev_hash`` a ``FixedString(32)``, enums stored as their symbols.
    """
    column = column or {}
    parts = []
    for name in HASHED_FIELDS:
        col = column.get(name, f"`{name}`")
        if name in _TIMESTAMPS:
            text = f"toString(toUnixTimestamp64Micro(assumeNotNull({col})))"
        elif name in _BINARY:
            text = f"lower(hex({col}))"
        elif name in ARRAY_FIELDS:
            text = f"arrayStringConcat(arrayMap(x -> concat(toString(length(x)), ':', x), {col}))"
        elif name in _BOOLEANS:
            text = f"if(assumeNotNull({col}), 'true', 'false')"
        else:
            text = f"toString(assumeNotNull({col}))"
        piece = f"concat('{name}:', toString(length({text})), ':', {text})"
        if name in ARRAY_FIELDS:
            parts.append(f"if(empty({col}), '', {piece})")
        else:
            parts.append(f"if(isNull({col}), '', {piece})")
    return "concat(" + ", ".join(parts) + ")"
