"""Reading event files for publishing: contract JSON Lines or Avro container files.

Every event keeps where it came from, so a report can point at it:
``file:line`` for JSON Lines (1-based physical line), ``file:#n`` for the
n-th record (1-based) of an Avro container file. A line or record that is not
a contract event becomes an :class:`InputProblem` with the same position and
the reason, and reading goes on: the whole input is checked before anything is
sent, so a person sees every problem at once.

The format is recognised by content, not by name: an Avro container starts
with ``Obj\\x01``; anything else is read as UTF-8 JSON Lines, except that a
``.avro`` file without the magic is reported as not an Avro file. An Avro
file's writer schema must be one of the released dossier-event schemas (same
Parsing Canonical Form); its records are resolved into the current schema.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from dossier_runtime.outfile import atomic_output, make_directory
from schemas.errors import ContractError
from schemas.events import DossierEvent
from schemas.jsonform import from_json
from schemas.jsontext import JsonTextError, loads
from schemas.registry import crc64_avro, current_schema, released_schemas

AVRO_MAGIC: Final = b"Obj\x01"
#: Lines whose raw text is kept for the rejected-dossiers file are cut at this length.
_RAW_LIMIT: Final = 1_000_000


@dataclasses.dataclass(frozen=True)
class InputEvent:
    """A contract event read from a file, with its position and original text."""

    event: DossierEvent
    source: str
    raw: str  # the JSON line as written, or the event's JSON form for Avro records


@dataclasses.dataclass(frozen=True)
class InputProblem:
    """A position whose content is not a contract event (or a whole unreadable file)."""

    source: str
    reason: str
    dossier_id: str | None = None  # when it could still be read, so the dossier is held back
    raw: str | None = None  # the line as written, for the rejected-dossiers file


Item = InputEvent | InputProblem


def display_path(path: Path) -> str:
    return str(path)


def read_events(path: Path) -> Iterator[Item]:
    """The events (and problems) of one file, in file order."""
    name = display_path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(AVRO_MAGIC))
    except OSError as exc:
        yield InputProblem(name, f"cannot read the file: {exc.strerror or exc}")
        return
    if magic == AVRO_MAGIC:
        yield from _read_avro(path, name)
    elif path.suffix.lower() == ".avro":
        yield InputProblem(name, "not an Avro container file (it does not start with Obj\\x01)")
    else:
        yield from _read_jsonl(path, name)


def _dossier_of(obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("dossier_id"), str):
        return str(obj["dossier_id"])
    return None


def _read_jsonl(path: Path, name: str) -> Iterator[Item]:
    with path.open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            where = f"{name}:{number}"
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield InputProblem(where, f"not UTF-8 text (byte {exc.start + 1}); is this an Avro or binary file?")
                continue
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            raw = line if len(line) <= _RAW_LIMIT else None
            try:
                obj = loads(line)
            except JsonTextError as exc:
                yield InputProblem(where, str(exc), raw=raw)
                continue
            try:
                event = from_json(obj)
            except ContractError as exc:
                yield InputProblem(where, str(exc), _dossier_of(obj), raw)
                continue
            except (TypeError, ValueError) as exc:  # a value the dataclass cannot hold
                yield InputProblem(where, f"not a contract event: {exc}", _dossier_of(obj), raw)
                continue
            yield InputEvent(event, where, line)


def writer_schema_problem(schema: Any) -> str | None:
    """None when ``schema`` is a released dossier-event schema; otherwise why not."""
    from fastavro.schema import to_parsing_canonical_form

    try:
        canonical = to_parsing_canonical_form(schema)
    except Exception as exc:  # fastavro raises plain Exception subclasses for odd schemas
        return f"its writer schema cannot be read: {exc}"
    for released in released_schemas():
        if released.canonical_form == canonical:
            return None
    fingerprint = crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little").hex()
    known = ", ".join(f"v{s.version} {s.fingerprint_hex}" for s in released_schemas())
    return f"its writer schema (fingerprint {fingerprint}) is not a released dossier-event schema ({known})"


def _read_avro(path: Path, name: str) -> Iterator[Item]:
    import fastavro

    from schemas.jsonform import to_json_line

    with path.open("rb") as handle:
        try:
            reader = fastavro.block_reader(handle, reader_schema=dict(current_schema().source))
        except Exception as exc:  # fastavro: ValueError, SchemaResolutionError, …
            yield InputProblem(name, f"not a readable Avro container file: {exc}")
            return
        problem = writer_schema_problem(reader.writer_schema)
        if problem is not None:
            yield InputProblem(name, problem)
            return
        index = 0
        records = _records_of_blocks(reader)
        while True:
            index += 1
            where = f"{name}:#{index}"
            try:
                record = next(records)
            except StopIteration:
                return
            except Exception as exc:  # a corrupt block: the rest of the file cannot be trusted
                yield InputProblem(where, f"corrupt Avro data, reading stopped here: {exc}")
                return
            if not isinstance(record, dict):
                yield InputProblem(where, "not a record")
                continue
            if not isinstance(record.get("event_id", ""), str):
                record["event_id"] = str(record["event_id"])
            try:
                event = DossierEvent.from_record(record)
            except (ValueError, TypeError) as exc:
                dossier = _dossier_of(record)
                yield InputProblem(where, f"not a contract event: {exc}", dossier, json.dumps(record, default=str))
                continue
            yield InputEvent(event, where, to_json_line(event))


class _CountMismatch(ValueError):
    """A block holds more records than its count says (a reader would skip the rest of it)."""


def _records_of_blocks(blocks: Iterable[Any]) -> Iterator[Any]:
    """The records of every block, checking that each block holds exactly as many records as its count says.

    A reader decodes as many records as the count says and skips the rest of the block: a count of 1 over 211
    records would publish one and drop 210 without a word.
    """
    for block in blocks:
        yield from block
        data = block.bytes_
        if data.tell() != len(data.getbuffer()):
            raise _CountMismatch(
                f"the block at byte {block.offset} says it holds {block.num_records} record(s) but holds more "
                "bytes than those: the file is corrupt or was crafted; rewrite it"
            )


def write_event_file(events: Iterable[DossierEvent], path: Path) -> int:
    """Write events as an Avro container (``.avro``) or contract JSON Lines (anything else); return the count.

    Written to a temporary name and renamed, so a failed run leaves no half file and no temporary one; a full
    or read-only disk is an :class:`dossier_runtime.outfile.OutputFileError` naming the path.
    """
    import fastavro

    from schemas.jsonform import to_json_line

    make_directory(path.parent)
    count = 0
    if path.suffix.lower() == ".avro":

        def records() -> Iterator[dict[str, Any]]:
            nonlocal count
            for event in events:
                count += 1
                yield event.to_record()

        with atomic_output(path, binary=True) as binary:
            fastavro.writer(binary, current_schema().parsed, records(), codec="deflate")
    else:
        with atomic_output(path) as text:
            for event in events:
                text.write(to_json_line(event) + "\n")
                count += 1
    return count
