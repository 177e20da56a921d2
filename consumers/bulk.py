"""``dossier consume load``: Avro container files straight into the raw log, without Kafka.

ClickHouse reads the file itself (``file(…, 'Avro')`` on the embedded store;
the bytes through ``input()`` on a server). To use both cores a big file is
cut at block boundaries into two parts (bytes copied, nothing decoded) that
ClickHouse parses in parallel; a file staged whole is linked, not copied.
``_offset`` is the record's index in the original file (``_row_number`` plus
the part's first index), ``_topic`` is ``file:<name>``. The staging table
writes Compact parts and runs no merges: its parts are attached to ``events``
as they are. Then the batch goes through :class:`consumers.sink.Sink`:
contract check, dedup against what is stored (loading a file twice stores
nothing twice), dead letters. :func:`load_files` stages small files several
to a batch (up to ``_BATCH_BYTES``, one INSERT) and publishes each batch
once; each file still gets its own result.

A block ClickHouse cannot decode is located with fastavro block by block and
dead-lettered whole (kind ``undecodable``, offset = its first record), and the
rest of the file is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from fastavro.schema import to_parsing_canonical_form

from consumers.avrofile import ContainerError, check_block_counts, file_schema, split_blocks
from consumers.sink import BatchResult, DeadLetter, Sink, stored_columns
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import StoreQueryError
from schemas.events import ENVELOPE_FIELDS, FIELD_NAMES
from schemas.registry import crc64_avro, released_schemas

_PARALLEL_MIN_BYTES: Final = 4 * 1024 * 1024
#: Staging parts in the Compact format (one data file per part instead of two or three per column)
#: whatever their size: ``events`` (so a staging table created ``AS events``) asks for them up to 256 MiB
#: (migration 0007); per 1M events the parse-and-write costs about 2.6 s of CPU instead of 3.4 s for
#: Wide parts. The parts are attached to ``events`` as they are; merges there write Wide parts.
_COMPACT_STAGING: Final = "min_bytes_for_wide_part = 1000000000000, min_rows_for_wide_part = 1000000000"
_prepared_staging: set[str] = set()
#: Files are staged together up to this size, then checked and published as one batch (see load_files).
_BATCH_BYTES: Final = 512 * 1024 * 1024
#: The most one insert request to a ClickHouse server carries (a big file goes in several).
_REQUEST_BYTES: Final = 64 * 1024 * 1024

Block = tuple[int, int, int]  # (first byte, end byte, record count) of one container block
Opened = tuple[Path, memoryview, int, list[Block]]  # a file mapped: path, bytes, header length, blocks
#: What to stage of one file: topic, path, bytes, header length, blocks, first record index by block.
Source = tuple[str, Path | None, memoryview, int, list[Block], dict[int, int]]
_AT: Final = "{at:DateTime64(6, 'UTC')}"  # _ingested_at: one value per batch


class InputFileError(ValueError):
    """A file given to ``load`` that is not a dossier-event container file; the message names it."""


@dataclasses.dataclass
class FileLoad:
    path: str
    result: BatchResult
    seconds: float

    def row(self) -> dict[str, object]:
        r = self.result
        return {
            "file": self.path,
            "events": r.received + sum(1 for d in r.dead if d.kind == "undecodable"),
            "stored": r.stored,
            "duplicates": r.duplicates,
            "dead_letters": len(r.dead),
            "seconds": round(self.seconds, 3),
            "events_per_s": int(r.received / self.seconds) if self.seconds > 0 else 0,
        }


def _check_schema(path: Path, buf: memoryview) -> None:
    try:
        schema = file_schema(buf)
    except ContainerError as exc:
        raise InputFileError(f"{path}: {exc}") from exc
    fields = schema.get("fields")
    names = {f.get("name") for f in fields if isinstance(f, dict)} if isinstance(fields, list) else set()
    unknown = sorted(str(n) for n in names - set(FIELD_NAMES))
    missing = sorted(n for n in ENVELOPE_FIELDS if n not in names)
    if missing or unknown:
        detail = f"lacks {', '.join(missing)}" if missing else f"has fields this version does not know: {unknown}"
        raise InputFileError(f"{path}: not a dossier-event file ({detail}); write it with the released schema")
    released = {s.fingerprint: s for s in released_schemas()}
    try:
        fingerprint = crc64_avro(to_parsing_canonical_form(schema).encode("utf-8"))
    except Exception as exc:  # fastavro raises its own errors on a malformed schema
        raise InputFileError(
            f"{path}: its writer schema cannot be read ({exc}); write it with a released schema"
        ) from exc
    if fingerprint not in released:
        known = ", ".join(f"v{s.version} {s.fingerprint_hex}" for s in released.values())
        raise InputFileError(
            f"{path}: its writer schema is not a released one (fingerprint "
            f"{fingerprint.to_bytes(8, 'little').hex()}; released: {known}): fields reordered or retyped are another "
            "schema; write the file with a released schema (schemas/avro/)"
        )


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[memoryview, int, list[Block]]]:
    """The file mapped, its schema checked and its blocks located; InputFileError when it is no container file."""
    try:
        handle = path.open("rb")
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    if empty:
        handle.close()
        raise InputFileError(f"{path}: the file is empty")
    with handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        buf = memoryview(mm)
        try:
            _check_schema(path, buf)
            try:
                header_end, _sync, blocks = split_blocks(buf)
                check_block_counts(buf, blocks)
            except ContainerError as exc:
                raise InputFileError(f"{path}: {exc}") from exc
            yield buf, header_end, blocks
        finally:
            buf.release()


def file_topic(path: Path) -> str:
    """Where a file load says its rows came from (``_topic`` and dead letters): ``file:<name>``."""
    return f"file:{path.name}"


def load_file(sink: Sink, path: Path, work_dir: Path) -> FileLoad:
    """Load one container file (see the module docstring)."""
    started = time.perf_counter()
    with _opened(path) as (buf, header_end, blocks):
        return _load_one(sink, path, buf, header_end, blocks, work_dir, started)


def _load_one(
    sink: Sink, path: Path, buf: memoryview, header_end: int, blocks: list[Block], work_dir: Path, started: float
) -> FileLoad:
    dead = _stage(sink, buf, header_end, blocks, file_topic(path), work_dir, path)
    result = sink.publish("file")
    result.dead = dead + result.dead
    sink.write_dead_letters(result.dead)
    return FileLoad(str(path), result, time.perf_counter() - started)


def load_files(
    sink: Sink, paths: list[Path], work_dir: Path, on_file: Callable[[FileLoad], None] | None = None
) -> Iterator[FileLoad]:
    """Load files in order, as :func:`load_file` would one by one, but small files several to a batch.

    A batch is staged as a whole, then checked and published once: the work
    per batch (the check, the derived views, attaching parts and merging them
    in ``events``) is paid once for ``_BATCH_BYTES`` of files, not per file.
    Each file still gets its own :class:`FileLoad`. A file that is not a
    container file ends the load with InputFileError after the files before
    it are stored; one ClickHouse cannot decode sends its batch through
    :func:`load_file` one file at a time, to dead-letter its bad blocks.
    """
    for batch in _batches(paths):
        loads = [load_file(sink, batch[0], work_dir)] if len(batch) == 1 else _load_batch(sink, batch, work_dir)
        for loaded in loads:
            if on_file is not None:
                on_file(loaded)
            yield loaded


def _batches(paths: list[Path]) -> Iterator[list[Path]]:
    """Consecutive files up to ``_BATCH_BYTES``; a repeated name starts a new batch (rows are told apart by name)."""
    batch: list[Path] = []
    size = 0
    for path in paths:
        try:
            length = path.stat().st_size
        except OSError:
            length = _BATCH_BYTES  # alone: load_file reports it
        if batch and (size + length > _BATCH_BYTES or file_topic(path) in {file_topic(p) for p in batch}):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def _load_batch(sink: Sink, paths: list[Path], work_dir: Path) -> Iterator[FileLoad]:
    with contextlib.ExitStack() as stack:
        opened: list[Opened] = []
        error: InputFileError | None = None
        for path in paths:
            try:
                buf, header_end, blocks = stack.enter_context(_opened(path))
                opened.append((path, buf, header_end, blocks))
            except InputFileError as exc:
                error = exc
                break
        if opened:
            yield from _publish_batch(sink, opened, work_dir)
    if error is not None:
        raise error


def _publish_batch(sink: Sink, opened: list[Opened], work_dir: Path) -> list[FileLoad]:
    started = time.perf_counter()
    ingested = datetime.now(UTC)  # marks this batch's rows in events, to count them per file on the slow path
    sink.truncate()
    try:
        sources: list[Source] = [(file_topic(p), p, b, h, bl, _bases(bl)) for p, b, h, bl in opened]
        _stage_blocks(sink, sources, work_dir, ingested)
    except StoreQueryError:
        return [_load_one(sink, p, b, h, bl, work_dir, time.perf_counter()) for p, b, h, bl in opened]
    result = sink.publish("file")
    sink.write_dead_letters(result.dead)
    seconds = time.perf_counter() - started
    received = {file_topic(p): sum(c for _s, _e, c in bl) for p, _b, _h, bl in opened}
    stored = received
    if not result.fast_path:
        stored = dict(
            sink.store.query(
                "SELECT _topic, count() FROM events WHERE _ingested_at = {at:DateTime64(6, 'UTC')} "
                "AND _topic IN {topics:Array(String)} GROUP BY _topic",
                {"at": ingested, "topics": list(received)},
            ).rows
        )
    loads = []
    for path, *_ in opened:
        topic = file_topic(path)
        dead = [d for d in result.dead if d.topic == topic]
        n, kept = received[topic], int(stored.get(topic, 0))
        share = seconds * n / max(1, sum(received.values()))
        loads.append(FileLoad(str(path), BatchResult(n, kept, n - kept - len(dead), dead, result.fast_path), share))
    return loads


def _stage(
    sink: Sink,
    buf: memoryview,
    header_end: int,
    blocks: list[Block],
    topic: str,
    work_dir: Path,
    path: Path | None = None,
) -> list[DeadLetter]:
    """Stage one file (``path``: the file ``buf`` maps, linked instead of copied when staged whole)."""
    sink.truncate()
    bases = _bases(blocks)
    try:
        _stage_blocks(sink, [(topic, path, buf, header_end, blocks, bases)], work_dir)
        return []
    except StoreQueryError as first_error:
        sink.truncate()
        good, dead = _isolate_bad_blocks(buf, header_end, blocks, topic, str(first_error))
        if good:
            _stage_blocks(sink, [(topic, path, buf, header_end, good, bases)], work_dir)
        return dead


def _bases(blocks: list[Block]) -> dict[int, int]:
    """The index in the file of each block's first record, by the block's first byte."""
    index, bases = 0, {}
    for start, _end, count in blocks:
        bases[start] = index
        index += count
    return bases


def _bounded(blocks: list[Block], max_bytes: int) -> list[list[Block]]:
    """``blocks`` cut into runs of adjacent blocks of at most ``max_bytes`` each (a block bigger goes alone)."""
    pieces: list[list[Block]] = []
    for block in blocks:
        if not pieces or pieces[-1][-1][1] != block[0] or block[1] - pieces[-1][0][0] > max_bytes:
            pieces.append([])
        pieces[-1].append(block)
    return pieces


def _pieces(blocks: list[Block], n_parts: int) -> list[list[Block]]:
    """``blocks`` cut into about ``n_parts`` pieces of adjacent blocks (a dropped block also cuts).

    The rows of a piece are numbered from its first block's index in the file,
    so a piece never spans a gap left by a dead-lettered block.
    """
    size = max(1, -(-len(blocks) // n_parts))
    pieces: list[list[Block]] = []
    for block in blocks:
        if not pieces or len(pieces[-1]) >= size or pieces[-1][-1][1] != block[0]:
            pieces.append([])
        pieces[-1].append(block)
    return pieces


def _stage_blocks(sink: Sink, sources: list[Source], work_dir: Path, ingested: datetime | None = None) -> None:
    """Stage the blocks of each source, all in one INSERT on the embedded store.

    A file staged whole is linked, not copied; a big file alone is cut into
    two parts, so that ClickHouse parses on both cores. To a server, each run
    of adjacent blocks goes in requests of at most :data:`_REQUEST_BYTES`.
    """
    into, columns = stored_columns(FIELD_NAMES)
    target = f"INSERT INTO {sink.staging} ({into}, _topic, _partition, _offset, _ingested_at)"
    ingested = ingested or datetime.now(UTC)
    if sink.store.kind != "embedded":
        # A server cannot read our files: send the bytes of each run of adjacent blocks, numbering its rows.
        for topic, _path, buf, header_end, blocks, bases in sources:
            for piece in _bounded(blocks, _REQUEST_BYTES):
                data = bytes(buf[:header_end]) + bytes(buf[piece[0][0] : piece[-1][1]])
                sink.store.insert_bytes(
                    f"{target} SELECT {columns}, {{topic:String}}, 0, "  # noqa: S608  (staging name and contract SQL are generated, not input)
                    f"{{first:Int64}} + rowNumberInAllBlocks(), {_AT} FROM input({{structure:String}})",
                    "Avro",
                    [data],
                    {"topic": topic, "first": bases[piece[0][0]], "at": ingested, "structure": sink.file_structure()},
                )
        return
    _prepare_staging(sink)
    # absolute: ClickHouse's _path is, and a relative data dir (the default) matched no name (_topic '', _offset 0)
    tmp = Path(tempfile.mkdtemp(prefix=".load-", dir=work_dir)).resolve()
    try:
        names: list[str] = []
        topics, firsts = [], []
        for topic, path, buf, header_end, blocks, bases in sources:
            alone = len(sources) == 1 and len(blocks) >= 2 and len(buf) >= _PARALLEL_MIN_BYTES
            for piece in _pieces(blocks, 2 if alone else 1):
                name = tmp / f"part{len(names)}.avro"
                _write_part(name, path, buf, header_end, piece)
                names.append(str(name))
                topics.append(topic)
                firsts.append(bases[piece[0][0]])
        if not names:
            return
        glob = names[0] if len(names) == 1 else str(tmp / ("part{" + ",".join(map(str, range(len(names)))) + "}.avro"))
        sink.store.command(
            f"{target} SELECT {columns}, transform(_path, {{names:Array(String)}}, {{topics:Array(String)}}, ''), 0, "  # noqa: S608  (staging name and contract SQL are generated, not input)
            "_row_number + transform(_path, {names:Array(String)}, {firsts:Array(Int64)}, toInt64(0)), "
            f"{_AT} FROM file({{glob:String}}, 'Avro', {{structure:String}})",
            {
                "names": names,
                "topics": topics,
                "firsts": firsts,
                "at": ingested,
                "glob": glob,
                "structure": sink.file_structure(),
            },
            settings={"input_format_avro_allow_missing_fields": 1, "max_threads": 2},
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_part(name: Path, path: Path | None, buf: memoryview, header_end: int, piece: list[Block]) -> None:
    """A container of ``piece``: a link to the file when that is the whole file, else the bytes copied."""
    if path is not None and piece[0][0] == header_end and piece[-1][1] == len(buf):
        with contextlib.suppress(OSError):  # a file system without symbolic links: copied below
            name.symlink_to(path.resolve())
            return
    start, end = piece[0][0], piece[-1][1]
    with name.open("wb") as out:
        out.write(buf[:header_end])
        if path is not None and _copy_range(path, out, start, end):
            return
        out.write(buf[start:end])


def _copy_range(path: Path, out: BinaryIO, start: int, end: int) -> bool:
    """Append bytes ``start:end`` of ``path`` to ``out`` in the kernel (no pass through this process's memory).

    False, with nothing appended, where the system cannot (no ``copy_file_range``, or a file system that
    refuses it): the caller copies the bytes itself.
    """
    if not hasattr(os, "copy_file_range"):
        return False
    out.flush()
    at = out.tell()
    try:
        with path.open("rb") as source:
            offset = start
            while offset < end:
                copied = os.copy_file_range(source.fileno(), out.fileno(), end - offset, offset)
                if copied == 0:  # the file shrank under us: let the caller copy from its mapping
                    raise OSError("short copy")
                offset += copied
    except OSError:
        out.seek(at)
        out.truncate()
        return False
    out.seek(0, os.SEEK_END)
    return True


def _prepare_staging(sink: Sink) -> None:
    """Compact parts, and no merges (wasted work: the staging parts are attached to ``events``, then dropped)."""
    if sink.engine != "MergeTree" or sink.staging in _prepared_staging:
        return
    sink.store.command(f"ALTER TABLE {sink.staging} MODIFY SETTING {_COMPACT_STAGING}")
    sink.store.command(f"SYSTEM STOP MERGES {sink.staging}")
    _prepared_staging.add(sink.staging)


def _isolate_bad_blocks(
    buf: memoryview, header_end: int, blocks: list[Block], topic: str, error: str
) -> tuple[list[Block], list[DeadLetter]]:
    from fastavro import reader

    good, dead = [], []
    bases = _bases(blocks)
    head = bytes(buf[:header_end])
    for start, end, count in blocks:
        try:
            for _ in reader(io.BytesIO(head + bytes(buf[start:end]))):
                pass
            good.append((start, end, count))
        except Exception as exc:  # fastavro raises many types for corrupt data; the block is the unit
            dead.append(
                DeadLetter(
                    "file",
                    topic,
                    0,
                    bases[start],
                    "undecodable",
                    f"block of {count} records at byte {start} does not decode: {exc!r}",
                )
            )
    if not dead:
        raise StoreError(f"{topic.removeprefix('file:')}: ClickHouse refused the file: {error}")
    return good, dead
