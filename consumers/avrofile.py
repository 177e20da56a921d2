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

import io
import json
import os
import re
import zlib
from collections.abc import Sequence
from typing import Any, Final

from schemas.codec import zigzag
from schemas.jsontext import JsonTextError, loads
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


#: Metadata entries a header may have (ours have two; fastavro's, three): more is no header of an event file.
_MAX_METADATA: Final = 1024


def _read_long(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    n = 0
    while True:
        if pos >= len(buf):
            raise ContainerError(f"the file ends inside a number at byte {pos} (truncated or corrupt)")
        if shift > 63:
            raise ContainerError(f"a number at byte {pos} is longer than 10 bytes (corrupt file)")
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (n >> 1) ^ -(n & 1), pos


def _read_size(buf: memoryview, pos: int, what: str) -> tuple[int, int]:
    """A length at ``pos`` that is not negative and does not run past the end of the file."""
    at = pos
    size, pos = _read_long(buf, pos)
    if size < 0 or size > len(buf) - pos:
        raise ContainerError(
            f"the {what} at byte {at} says {size} bytes, but {len(buf) - pos} are left (truncated or corrupt file)"
        )
    return size, pos


def read_header(buf: memoryview) -> tuple[dict[bytes, bytes], bytes, int]:
    """(metadata map, sync marker, header length) of an object container file.

    Every count and length is checked against what is left of the file, so a corrupt header is a
    :class:`ContainerError` naming its byte, never a read past the end or a loop that does not end.
    """
    if bytes(buf[:4]) != MAGIC:
        raise ContainerError("not an Avro object container file (no 'Obj\\x01' magic)")
    metadata: dict[bytes, bytes] = {}
    pos = 4
    while True:
        at = pos
        count, pos = _read_long(buf, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_size(buf, pos, "metadata block")
        if len(metadata) + count > _MAX_METADATA:
            raise ContainerError(f"the header at byte {at} says {count} metadata entries (corrupt file)")
        for _ in range(count):
            size, pos = _read_size(buf, pos, "metadata key")
            key = bytes(buf[pos : pos + size])
            pos += size
            size, pos = _read_size(buf, pos, "metadata value")
            metadata[key] = bytes(buf[pos : pos + size])
            pos += size
    if len(buf) - pos < 16:
        raise ContainerError("the file ends inside its header's sync marker (truncated file)")
    return metadata, bytes(buf[pos : pos + 16]), pos + 16


def split_blocks(buf: memoryview) -> tuple[int, bytes, list[tuple[int, int, int]]]:
    """(header length, sync marker, [(start, end, record count)] per block) of a container file."""
    _metadata, sync, header_end = read_header(buf)
    pos = header_end
    blocks = []
    while pos < len(buf):
        start = pos
        count, pos = _read_long(buf, pos)
        if count < 0:
            raise ContainerError(f"the block at byte {start} says it holds {count} records (corrupt file)")
        size, pos = _read_size(buf, pos, "block")
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
        try:
            parsed = loads(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ContainerError(f"the writer schema in the header is not UTF-8 text (byte {exc.start + 1})") from None
        except JsonTextError as exc:
            raise ContainerError(f"the writer schema in the header is not JSON ({exc})") from None
        if isinstance(parsed, dict):
            return parsed
        raise ContainerError("the writer schema in the header is not a JSON object")
    raise ContainerError("the container file has no avro.schema in its header")


#: A record of the dossier event starts with its event_id: a 36-character UUID string (length prefix 72 = 0x48).
_RECORD_START: Final = re.compile(rb"\x48[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_block_counts(buf: memoryview, blocks: list[tuple[int, int, int]]) -> None:
    """Refuse (:class:`ContainerError`) a block that holds more records than its count says.

    A reader (ClickHouse's, fastavro's) decodes as many records as the count says and skips the rest of the
    block's bytes: a count of 1 over 211 records would load one and drop 210 without a word. Each block is
    scanned for record starts (an event_id, a UUID string); only a block that shows more of them than its
    count is decoded record by record, to tell a UUID inside another field from a record. Blocks compressed
    with a codec other than null or deflate are not scanned.
    """
    metadata, _sync, _end = read_header(buf)
    codec = metadata.get(b"avro.codec", b"null")
    if codec not in (b"null", b"deflate"):
        return
    schema: Any = None
    for start, end, count in blocks:
        data = _block_data(buf, start, end, codec)
        if len(_RECORD_START.findall(data)) <= count:
            continue
        if schema is None:
            from fastavro import parse_schema

            schema = parse_schema(loads(metadata[b"avro.schema"]))
        held = _records_in(data, schema)
        if held > count:
            raise ContainerError(
                f"the block at byte {start} says it holds {count} record(s) but holds {held}: a reader would "
                f"load {count} and drop {held - count} without a word; nothing of this file is loaded, rewrite it"
            )


def _block_data(buf: memoryview, start: int, end: int, codec: bytes) -> bytes:
    """The records' bytes of the block at ``start`` (decompressed)."""
    _count, pos = _read_long(buf, start)
    size, pos = _read_long(buf, pos)
    data = bytes(buf[pos : pos + size])
    if codec != b"deflate":
        return data
    try:
        return zlib.decompress(data, -15)
    except zlib.error as exc:
        raise ContainerError(f"the block at byte {start} does not decompress ({exc}): corrupt file") from None


def _records_in(data: bytes, schema: Any) -> int:
    """How many whole records ``data`` holds (decoding stops at the first byte that is no record)."""
    from fastavro import schemaless_reader

    stream = io.BytesIO(data)
    held = 0
    while stream.tell() < len(data):
        try:
            schemaless_reader(stream, schema)
        except Exception:  # fastavro raises many types for bytes that are no record: stop counting there
            break
        held += 1
    return held
