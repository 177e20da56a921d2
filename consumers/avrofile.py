"""Avro Object Container File bytes, built and split without decoding a record.

Live loading turns a run of single-object messages (``C3 01`` + fingerprint
+ body) into one OCF block by plain concatenation of the message values: the
header of the container declares the writer schema with one extra leading
field, ``_header``, a 10-byte ``fixed``. An Avro record body is just its
fields' encodings in order, so each whole message *is* a valid record of that
schema; ClickHouse skips the field (no column has its name) and decodes the
rest natively. Python touches no record: it joins bytes (C speed).

Bulk loading splits a container file at block boundaries (sync markers) so
ClickHouse can parse the parts on both cores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Final

from schemas.codec import zigzag
from schemas.registry import ReleasedSchema

MAGIC: Final = b"Obj\x01"
HEADER_FIELD: Final = {"name": "_header", "type": {"type": "fixed", "name": "SingleObjectHeader", "size": 10}}


class ContainerError(ValueError):
    """Bytes that are not an Avro object container file."""


_SCHEMA_JSON: dict[bytes, bytes] = {}


def message_schema_json(schema: ReleasedSchema) -> bytes:
    """The writer schema with the single-object header as a leading field, as OCF header JSON."""
    cached = _SCHEMA_JSON.get(schema.fingerprint_bytes)
    if cached is None:
        source = dict(schema.source)
        source["fields"] = [HEADER_FIELD, *source["fields"]]
        cached = _SCHEMA_JSON[schema.fingerprint_bytes] = json.dumps(source, separators=(",", ":")).encode()
    return cached


def header(schema_json: bytes, sync: bytes, codec: bytes = b"null") -> bytes:
    meta = {b"avro.schema": schema_json, b"avro.codec": codec}
    out = bytearray(MAGIC)
    out += zigzag(len(meta))
    for key, value in meta.items():
        out += zigzag(len(key)) + key + zigzag(len(value)) + value
    out += zigzag(0)
    out += sync
    return bytes(out)


def block(values: Sequence[bytes], sync: bytes) -> bytes:
    """One OCF data block holding ``values`` (whole single-object messages of one writer schema)."""
    data = b"".join(values)
    return b"".join((zigzag(len(values)), zigzag(len(data)), data, sync))


def message_container(schema_json: bytes, values: Sequence[bytes]) -> bytes:
    """One OCF holding ``values`` as one block."""
    sync = os.urandom(16)
    return header(schema_json, sync) + block(values, sync)


def _read_long(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    n = 0
    while True:
        if pos >= len(buf):
            raise ContainerError("truncated varint")
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (n >> 1) ^ -(n & 1), pos


def read_header(buf: memoryview) -> tuple[dict[bytes, bytes], bytes, int]:
    """(metadata map, sync marker, header length) of an object container file."""
    if bytes(buf[:4]) != MAGIC:
        raise ContainerError("not an Avro object container file (no 'Obj\\x01' magic)")
    metadata: dict[bytes, bytes] = {}
    pos = 4
    while True:
        count, pos = _read_long(buf, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_long(buf, pos)
        for _ in range(count):
            size, pos = _read_long(buf, pos)
            key = bytes(buf[pos : pos + size])
            pos += size
            size, pos = _read_long(buf, pos)
            metadata[key] = bytes(buf[pos : pos + size])
            pos += size
    return metadata, bytes(buf[pos : pos + 16]), pos + 16


def split_blocks(buf: memoryview) -> tuple[int, bytes, list[tuple[int, int, int]]]:
    """(header length, sync marker, [(start, end, record count)] per block) of a container file."""
    _metadata, sync, header_end = read_header(buf)
    pos = header_end
    blocks = []
    while pos < len(buf):
        start = pos
        count, pos = _read_long(buf, pos)
        size, pos = _read_long(buf, pos)
        pos += size
        if bytes(buf[pos : pos + 16]) != sync:
            raise ContainerError(f"block at byte {start} does not end with the file's sync marker (corrupt file)")
        pos += 16
        blocks.append((start, pos, count))
    return header_end, sync, blocks


def file_schema(buf: memoryview) -> dict[str, object]:
    """The writer schema in a container file's header."""
    value = read_header(buf)[0].get(b"avro.schema")
    if value is not None:
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            return parsed
    raise ContainerError("the container file has no avro.schema in its header")
