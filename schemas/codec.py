"""Avro single-object encoding of dossier events.

A message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema + the Avro binary body. The fingerprint lets a reader
resolve a message written with any released schema version into the current
one; a fingerprint that is not released, a wrong marker or a body that does
not parse is a :class:`DecodeError` naming what was wrong, never a silent
default.

Two levels: :func:`encode` / :func:`decode` work on :class:`DossierEvent`
(validated); :func:`encode_record` / :func:`decode_record` work on the plain
record dicts and are the fast path for bulk producers and loaders.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any, Final

from fastavro import schemaless_reader, schemaless_writer

from schemas.errors import DecodeError
from schemas.events import DossierEvent, validate_event
from schemas.registry import ReleasedSchema, current_schema, schema_for_fingerprint

MAGIC: Final = b"\xc3\x01"
HEADER_SIZE: Final = 10


def zigzag(value: int) -> bytes:
    """Avro's variable-length zig-zag encoding of an int or long (zig-zag, then base-128 varint)."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def header(schema: ReleasedSchema | None = None) -> bytes:
    """The 10-byte single-object header of ``schema`` (default: current)."""
    return MAGIC + (schema or current_schema()).fingerprint_bytes


def encode_record(record: Mapping[str, Any], schema: ReleasedSchema | None = None) -> bytes:
    """Encode a record dict without contract validation (callers validate)."""
    schema = schema or current_schema()
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(schema.fingerprint_bytes)
    try:
        schemaless_writer(buf, schema.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise DecodeError(
            f"cannot encode event {record.get('event_id')!r} with schema v{schema.version}: {exc}"
        ) from exc
    return buf.getvalue()


def encode(event: DossierEvent, *, validate: bool = True) -> bytes:
    """The single-object encoding of a (validated) event under the current schema."""
    if validate:
        validate_event(event)
    return encode_record(event.to_record())


def writer_schema(data: bytes) -> ReleasedSchema:
    """The released schema a message was written with, from its header."""
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"message of {len(data)} bytes is shorter than the 10-byte single-object header")
    if data[:2] != MAGIC:
        raise DecodeError(f"not an Avro single-object message: starts with {data[:2].hex()}, expected c301")
    return schema_for_fingerprint(bytes(data[2:HEADER_SIZE]))


def decode_record(data: bytes) -> dict[str, Any]:
    """Decode a message into a record dict of the current schema.

    Resolves older writer schemas into the current reader schema. Raises
    :class:`DecodeError` (or :class:`UnknownFingerprintError`) on anything
    that is not exactly one well-formed event.
    """
    writer = writer_schema(data)
    reader = current_schema()
    buf = io.BytesIO(data)
    buf.seek(HEADER_SIZE)
    try:
        if writer is reader:
            record = schemaless_reader(buf, writer.parsed, None)
        else:
            record = schemaless_reader(buf, writer.parsed, reader.parsed)
    except EOFError as exc:
        raise DecodeError(
            f"corrupt body for schema v{writer.version} ({writer.fingerprint_hex}): it ends before the event does"
        ) from exc
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, OverflowError) as exc:
        raise DecodeError(f"corrupt body for schema v{writer.version} ({writer.fingerprint_hex}): {exc!r}") from exc
    if buf.tell() != len(data):
        raise DecodeError(
            f"corrupt body for schema v{writer.version} ({writer.fingerprint_hex}): "
            f"{len(data) - buf.tell()} trailing bytes after the event"
        )
    if not isinstance(record, dict):
        raise DecodeError(f"body for schema v{writer.version} did not decode to a record")
    if isinstance(record.get("event_id"), uuid.UUID):
        record["event_id"] = str(record["event_id"])
    return record


def decode(data: bytes, *, validate: bool = True) -> DossierEvent:
    """Decode one message into a :class:`DossierEvent` (validated by default)."""
    record = decode_record(data)
    try:
        event = DossierEvent.from_record(record)
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"event {record.get('event_id')!r} has a value outside the contract: {exc}") from exc
    if validate:
        validate_event(event)
    return event
