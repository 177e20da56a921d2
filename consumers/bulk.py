"""``dossier consume load``: Avro container files straight into the raw log, without Kafka.

ClickHouse reads the file itself (``file(…, 'Avro')`` on the embedded store;
the bytes through ``input()`` on a server). To use both cores the file is cut
at block boundaries into two parts (bytes copied, nothing decoded) that
ClickHouse parses in parallel; ``_offset`` is the record's index in the
original file (``_row_number`` plus the part's first index), ``_topic`` is
``file:<name>``. Then the batch goes through :class:`consumers.sink.Sink`:
contract check, dedup against what is stored (loading a file twice stores
nothing twice), dead letters.

A block ClickHouse cannot decode is located with fastavro block by block and
dead-lettered whole (kind ``undecodable``, offset = its first record), and the
rest of the file is loaded.
"""

from __future__ import annotations

import dataclasses
import io
import mmap
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from consumers.avrofile import ContainerError, file_schema, split_blocks
from consumers.sink import BatchResult, DeadLetter, Sink
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import StoreQueryError
from schemas.events import ENVELOPE_FIELDS, FIELD_NAMES

_PARALLEL_MIN_BYTES: Final = 4 * 1024 * 1024


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


def load_file(sink: Sink, path: Path, work_dir: Path) -> FileLoad:
    """Load one container file (see the module docstring)."""
    started = time.perf_counter()
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
            except ContainerError as exc:
                raise InputFileError(f"{path}: {exc}") from exc
            topic = f"file:{path.name}"
            dead = _stage(sink, buf, header_end, blocks, topic, work_dir)
            result = sink.publish("file")
            result.dead = dead + result.dead
            sink.write_dead_letters(result.dead)
        finally:
            buf.release()
    return FileLoad(str(path), result, time.perf_counter() - started)


def _stage(
    sink: Sink, buf: memoryview, header_end: int, blocks: list[tuple[int, int, int]], topic: str, work_dir: Path
) -> list[DeadLetter]:
    sink.truncate()
    try:
        _stage_blocks(sink, buf, header_end, blocks, topic, work_dir)
        return []
    except StoreQueryError as first_error:
        sink.truncate()
        good, dead = _isolate_bad_blocks(buf, header_end, blocks, topic, str(first_error))
        if good:
            _stage_blocks(sink, buf, header_end, good, topic, work_dir)
        return dead


def _bases(blocks: list[tuple[int, int, int]]) -> dict[int, int]:
    index, bases = 0, {}
    for start, _end, count in blocks:
        bases[start] = index
        index += count
    return bases


def _stage_blocks(
    sink: Sink, buf: memoryview, header_end: int, blocks: list[tuple[int, int, int]], topic: str, work_dir: Path
) -> None:
    columns = ", ".join(f"`{c}`" for c in FIELD_NAMES)
    target = f"INSERT INTO {sink.staging} ({columns}, _topic, _partition, _offset)"
    if sink.store.kind != "embedded":
        # A server cannot read our files: send the bytes, number the rows as they arrive.
        data = bytes(buf[:header_end]) + b"".join(bytes(buf[s:e]) for s, e, _ in blocks)
        sink.store.insert_bytes(
            f"{target} SELECT {columns}, {{topic:String}}, 0, rowNumberInAllBlocks() FROM input({{structure:String}})",  # noqa: S608  (staging name and contract SQL are generated, not input)
            "Avro",
            [data],
            {"topic": topic, "structure": sink.file_structure()},
        )
        return
    all_bases = _bases(blocks)
    n_parts = 2 if len(blocks) >= 2 and len(buf) >= _PARALLEL_MIN_BYTES else 1
    size = (len(blocks) + n_parts - 1) // n_parts
    tmp = Path(tempfile.mkdtemp(prefix=".load-", dir=work_dir))
    try:
        names, bases = [], []
        for i in range(n_parts):
            part = blocks[i * size : (i + 1) * size]
            if not part:
                continue
            name = tmp / f"part{i}.avro"
            with name.open("wb") as out:
                out.write(buf[:header_end])
                for start, end, _count in part:
                    out.write(buf[start:end])
            names.append(str(name))
            bases.append(all_bases[part[0][0]])
        glob = str(tmp / ("part{" + ",".join(str(i) for i in range(len(names))) + "}.avro"))
        if len(names) == 1:
            glob = names[0]
        sink.store.command(
            f"{target} SELECT {columns}, {{topic:String}}, 0, "  # noqa: S608  (staging name and contract SQL are generated, not input)
            "_row_number + transform(_path, {names:Array(String)}, {bases:Array(Int64)}, toInt64(0)) "
            "FROM file({glob:String}, 'Avro', {structure:String})",
            {"topic": topic, "names": names, "bases": bases, "glob": glob, "structure": sink.file_structure()},
            settings={"input_format_avro_allow_missing_fields": 1, "max_threads": 2},
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _isolate_bad_blocks(
    buf: memoryview, header_end: int, blocks: list[tuple[int, int, int]], topic: str, error: str
) -> tuple[list[tuple[int, int, int]], list[DeadLetter]]:
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


def load_files(
    sink: Sink, paths: list[Path], work_dir: Path, on_file: Callable[[FileLoad], None] | None = None
) -> Iterator[FileLoad]:
    for path in paths:
        loaded = load_file(sink, path, work_dir)
        if on_file is not None:
            on_file(loaded)
        yield loaded
