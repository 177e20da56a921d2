"""``dossier consume load`` of contract JSON Lines: each line read in the JSON form, then loaded as Avro.

A line is read with :func:`schemas.jsonform.from_json_line` (the strict
reading ``dossier produce publish`` uses), encoded with the current writer
schema into an Avro container held in memory, and staged by the bulk loader
(:mod:`consumers.bulk`); then the batch goes through the same
:class:`consumers.sink.Sink` as an Avro file: contract check, dedup against
what is stored, dead letters. So a JSON Lines file and an Avro file of the
same events store the same rows.

Provenance: ``_topic`` is ``file:<name>`` as for Avro, ``_offset`` the line
number (1-based physical line; blank lines are skipped but counted). Each run
of consecutive event lines is its own staged source, numbered from its first
line. A line that is not a contract event in the JSON form (not UTF-8, not
JSON, an unknown field, a wrong type, …) becomes a dead letter of kind
``undecodable`` naming its line, with the line as written; a line whose
event breaks the contract is dead-lettered by the sink as ``invalid``, also
with its line. A file without a single event line is refused. Big files go in
chunks of :data:`_CHUNK_EVENTS` events, each staged and published like one
file, so memory stays bounded.

Format is decided by content: an Avro container starts with ``Obj\\x01``;
anything else is JSON Lines, except a ``.avro`` file, which the bulk loader
then refuses as not a container.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from fastavro import schemaless_writer

from consumers.avrofile import MAGIC, header
from consumers.bulk import FileLoad, InputFileError, Source, _stage_blocks, file_topic, load_files
from consumers.sink import BatchResult, DeadLetter, Sink
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import StoreQueryError
from schemas.codec import zigzag
from schemas.errors import ContractError
from schemas.events import FIELD_NAMES
from schemas.journal import COMPLETED, STARTED
from schemas.jsonform import from_json_line
from schemas.registry import current_schema

#: Events staged and published at a time (a chunk's container and line index stay in memory).
_CHUNK_EVENTS: Final = 200_000
#: Runs of consecutive event lines per chunk at most (each run is staged as a file of its own).
_CHUNK_RUNS: Final = 256
#: Records per container block (a long run is cut so ClickHouse can parse it on both cores).
_BLOCK_EVENTS: Final = 4096
_SHOWN_BAD: Final = 3


def is_container(path: Path) -> bool:
    """Whether ``path`` is to be read as an Avro container: the magic, or (to be refused) a ``.avro`` name."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(MAGIC))
    except OSError:
        return True  # the bulk loader reports the file it cannot read
    return magic == MAGIC or path.suffix.lower() == ".avro"


def load_paths(
    sink: Sink, paths: Sequence[Path], work_dir: Path, on_file: Callable[[FileLoad], None] | None = None
) -> Iterator[FileLoad]:
    """Load Avro container and JSON Lines files in order: runs of Avro files through :func:`load_files`.

    Every file is marked started in the store's journal (``file_loads``, migration 0012) before anything of
    them is stored, and completed once its result is in: a run cut short leaves the rest marked started.
    """
    mark_files(sink, paths, STARTED)
    for loaded in _load_paths(sink, paths, work_dir, on_file):
        mark_files(sink, [Path(loaded.path)], COMPLETED)
        yield loaded


def _load_paths(
    sink: Sink, paths: Sequence[Path], work_dir: Path, on_file: Callable[[FileLoad], None] | None
) -> Iterator[FileLoad]:
    avro: list[Path] = []
    for path in paths:
        if is_container(path):
            avro.append(path)
            continue
        if avro:
            yield from load_files(sink, avro, work_dir, on_file)
            avro = []
        loaded = load_json_lines(sink, path, work_dir)
        if on_file is not None:
            on_file(loaded)
        yield loaded
    if avro:
        yield from load_files(sink, avro, work_dir, on_file)


def mark_files(sink: Sink, paths: Sequence[Path], state: str) -> None:
    """Record ``state`` of these files' loads in the journal (:mod:`schemas.journal`)."""
    if paths:
        rows = [(file_topic(p), str(p.resolve()), state) for p in paths]
        sink.store.insert_rows("file_loads", ["topic", "path", "state"], rows)


@dataclasses.dataclass
class _Chunk:
    """Encoded events by line number, and the lines that are no events, of part of a file."""

    records: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)  # (line, Avro body)
    dead: list[DeadLetter] = dataclasses.field(default_factory=list)
    spans: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)  # line → (first byte, end byte)
    runs: int = 0


def load_json_lines(sink: Sink, path: Path, work_dir: Path) -> FileLoad:
    """Load one JSON Lines file (see the module docstring); InputFileError when it holds no event line."""
    started = time.perf_counter()
    total = BatchResult()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    with handle:
        for chunk, last in _chunks(handle, file_topic(path)):
            if last and not total.received and not total.dead and not chunk.records:
                if not chunk.dead:
                    raise InputFileError(f"{path}: the file is empty (no event lines); nothing loaded")
                raise InputFileError(_no_events(path, chunk.dead))
            total.merge(_publish(sink, path, chunk, work_dir))
    return FileLoad(str(path), total, time.perf_counter() - started)


def _no_events(path: Path, dead: list[DeadLetter]) -> str:
    shown = "; ".join(f"line {d.offset}: {d.error}" for d in dead[:_SHOWN_BAD])
    more = f" (and {len(dead) - _SHOWN_BAD} more)" if len(dead) > _SHOWN_BAD else ""
    return (
        f"{path}: no line is a dossier event in the contract's JSON form ({shown}{more}); nothing loaded. "
        "Write one JSON object a line with the contract's fields (README: the data contract), "
        "or give an Avro container file"
    )


def _chunks(handle: io.BufferedReader, topic: str) -> Iterator[tuple[_Chunk, bool]]:
    """The file in chunks of at most :data:`_CHUNK_EVENTS` events; the last one (maybe empty) flagged."""
    schema = current_schema().parsed
    chunk, pos = _Chunk(), 0
    for number, data in enumerate(handle, start=1):
        start, pos = pos, pos + len(data)
        if not data.strip():
            continue
        body = _parse(data, schema)
        if isinstance(body, str):
            chunk.dead.append(DeadLetter("file", topic, 0, number, "undecodable", body, data.rstrip(b"\r\n")))
            continue
        if not chunk.records or chunk.records[-1][0] != number - 1:
            if chunk.runs >= _CHUNK_RUNS:
                yield chunk, False
                chunk = _Chunk()
            chunk.runs += 1
        chunk.records.append((number, body))
        chunk.spans[number] = (start, pos)
        if len(chunk.records) >= _CHUNK_EVENTS:
            yield chunk, False
            chunk = _Chunk()
    yield chunk, True


def _parse(data: bytes, schema: Any) -> bytes | str:
    """The Avro body of one line's event, or why the line is not a contract event."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start + 1}); is this an Avro or binary file?"
    try:
        event = from_json_line(text)
    except ContractError as exc:
        return str(exc)
    except (TypeError, ValueError) as exc:  # a value the dataclass cannot hold
        return f"not a contract event: {exc}"
    # the fields as they are: fastavro writes a StrEnum as its symbol and a tuple as an array (the same bytes as
    # to_record(), which costs a third of the whole load)
    record = {name: getattr(event, name) for name in FIELD_NAMES}
    for name, (low, high) in _int_ranges().items():
        value = record[name]
        if isinstance(value, int) and not low <= value <= high:
            return f"{name} {value} does not fit the contract's {'int' if high < 2**32 else 'long'}"
    body = io.BytesIO()
    try:
        schemaless_writer(body, schema, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return f"cannot be encoded with the contract's schema: {exc}"
    return body.getvalue()


@functools.cache
def _int_ranges() -> dict[str, tuple[int, int]]:
    """The integer fields of the current schema and their ranges (Avro does not check them when writing)."""
    bits = {"int": 32, "long": 64}
    ranges = {}
    for field in current_schema().source["fields"]:
        kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
        found = [bits[k] for k in kinds if isinstance(k, str) and k in bits]
        if found:
            ranges[field["name"]] = (-(2 ** (found[0] - 1)), 2 ** (found[0] - 1) - 1)
    return ranges


def _runs(records: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    """Records of consecutive lines together."""
    run: list[tuple[int, bytes]] = []
    for line, body in records:
        if run and line != run[-1][0] + 1:
            yield run
            run = []
        run.append((line, body))
    if run:
        yield run


def _sources(chunk: _Chunk, topic: str) -> list[Source]:
    """One container per run of consecutive lines, its blocks numbered from their first line."""
    schema_json = json.dumps(dict(current_schema().source), separators=(",", ":")).encode()
    sync = os.urandom(16)
    head = header(schema_json, sync)
    sources: list[Source] = []
    for run in _runs(chunk.records):
        out = bytearray(head)
        blocks, bases = [], {}
        for i in range(0, len(run), _BLOCK_EVENTS):
            part = run[i : i + _BLOCK_EVENTS]
            data = b"".join(body for _line, body in part)
            start = len(out)
            out += zigzag(len(part)) + zigzag(len(data)) + data + sync
            blocks.append((start, len(out), len(part)))
            bases[start] = part[0][0]
        sources.append((topic, None, memoryview(bytes(out)), len(head), blocks, bases))
    return sources


def _publish(sink: Sink, path: Path, chunk: _Chunk, work_dir: Path) -> BatchResult:
    topic = file_topic(path)
    sink.truncate()
    if chunk.records:
        try:
            _stage_blocks(sink, _sources(chunk, topic), work_dir)
        except StoreQueryError as exc:  # our own encoding of checked events: not expected
            raise StoreError(f"{path}: ClickHouse refused the events of the file: {exc}") from exc

    def raw_of(keys: Sequence[tuple[int, int]]) -> list[bytes]:
        return _read_spans(path, [chunk.spans.get(offset) for _partition, offset in keys])

    result = sink.publish("file", raw_of) if chunk.records else BatchResult()
    result.dead = sorted(chunk.dead + result.dead, key=lambda d: d.offset)
    sink.write_dead_letters(result.dead)
    return result


def _read_spans(path: Path, spans: list[tuple[int, int] | None]) -> list[bytes]:
    """The lines at these byte spans, as written (empty where unknown or unreadable)."""
    out = []
    try:
        with path.open("rb") as handle:
            for span in spans:
                if span is None:
                    out.append(b"")
                    continue
                handle.seek(span[0])
                out.append(handle.read(span[1] - span[0]).rstrip(b"\r\n"))
    except OSError:
        return [b""] * len(spans)
    return out
