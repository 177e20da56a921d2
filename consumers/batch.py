"""One batch of Kafka messages → the store, without decoding events in Python.

A batch is a list of :class:`Run`: the values of one partition at
consecutive offsets, as a poll returned them. Messages are checked by their
10-byte single-object header only (magic, released fingerprint), a whole run
at once at C speed in the normal case; each run becomes one Avro container
block by concatenating the messages (:mod:`consumers.avrofile`), and
ClickHouse decodes them from memory-backed scratch files, numbering the rows
so that a row's Kafka position is its run's first offset plus its index
(:meth:`consumers.sink.Sink.stage_files`). Python does no per-event work
beyond taking the values from the poll.

The steps are separate functions because ``dossier consume run`` splits them
between two processes (:mod:`consumers.readerproc`): grouping, writing the
containers and isolating poison in the Kafka reader; staging and publishing in
the process that owns the store. A live batch is a :class:`Gathered`: its
containers are written poll by poll as its records arrive, so when the store
is free the next batch is ready and no store time waits on container writing.

When ClickHouse refuses a block (a corrupt body), the batch falls back to
decoding each message with fastavro to find the poison, dead-letters it, and
stores the rest: a bad message never stalls the partition.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from consumers.avrofile import block, header, message_container, message_schema_json
from consumers.sink import BatchResult, DeadLetter, RawOf, Sink, new_scratch_dir, scratch_dir
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import StoreQueryError
from schemas.codec import HEADER_SIZE, MAGIC, decode_record
from schemas.errors import DecodeError, UnknownFingerprintError
from schemas.registry import ReleasedSchema, schema_for_fingerprint

_HEAD: Final[Callable[[Any], bytes]] = operator.itemgetter(slice(0, HEADER_SIZE))


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """Message values of one partition at consecutive offsets from ``first_offset``."""

    partition: int
    first_offset: int
    values: list[bytes | None]

    @property
    def next_offset(self) -> int:
        return self.first_offset + len(self.values)


def runs_of(partition: int, offsets: Sequence[int], values: list[bytes | None]) -> list[Run]:
    """The runs of one partition's messages from a poll (ascending offsets; gaps split runs)."""
    if not offsets:
        return []
    first = offsets[0]
    if offsets[-1] - first + 1 == len(offsets):
        return [Run(partition, first, values)]
    return _split(partition, zip(offsets, values, strict=True))


def _split(partition: int, items: Iterable[tuple[int, bytes | None]]) -> list[Run]:
    runs: list[Run] = []
    for offset, value in items:
        if runs and runs[-1].next_offset == offset:
            runs[-1].values.append(value)
        else:
            runs.append(Run(partition, offset, [value]))
    return runs


def _schema_of(head: bytes, cache: dict[bytes, ReleasedSchema | None]) -> ReleasedSchema | None:
    if head not in cache:
        schema = None
        if len(head) == HEADER_SIZE and head[:2] == MAGIC:
            try:
                schema = schema_for_fingerprint(head[2:])
            except UnknownFingerprintError:
                schema = None
        cache[head] = schema
    return cache[head]


def _dead(topic: str, partition: int, offset: int, value: bytes, kind: str, error: str) -> DeadLetter:
    return DeadLetter("kafka", topic, partition, offset, kind, error, value)


def _classify(
    topic: str, run: Run, cache: dict[bytes, ReleasedSchema | None], groups: dict[bytes, list[Run]]
) -> list[DeadLetter]:
    """The slow path for a run with a bad or mixed header: message by message."""
    dead = []
    good: dict[bytes, list[tuple[int, bytes | None]]] = {}
    for i, raw in enumerate(run.values):
        value = raw or b""
        offset = run.first_offset + i
        schema = _schema_of(value[:HEADER_SIZE], cache)
        if schema is not None:
            good.setdefault(schema.fingerprint_bytes, []).append((offset, value))
        elif len(value) < HEADER_SIZE or value[:2] != MAGIC:
            got = value[:2].hex() or "nothing"
            error = f"not an Avro single-object message (starts with {got}, expected c301)"
            dead.append(_dead(topic, run.partition, offset, value, "bad-magic", error))
        else:
            error = f"unknown writer schema fingerprint {value[2:HEADER_SIZE].hex()}"
            dead.append(_dead(topic, run.partition, offset, value, "unknown-fingerprint", error))
    for fingerprint, items in good.items():
        groups.setdefault(fingerprint, []).extend(_split(run.partition, items))
    return dead


def group_runs(topic: str, runs: Sequence[Run]) -> tuple[dict[bytes, list[Run]], list[DeadLetter]]:
    groups: dict[bytes, list[Run]] = {}
    dead: list[DeadLetter] = []
    cache: dict[bytes, ReleasedSchema | None] = {}
    for run in runs:
        try:
            heads = set(map(_HEAD, run.values))
        except TypeError:  # a null value (tombstone) in the run
            heads = set()
        schema = _schema_of(next(iter(heads)), cache) if len(heads) == 1 else None
        if schema is not None:
            groups.setdefault(schema.fingerprint_bytes, []).append(run)
        else:
            dead.extend(_classify(topic, run, cache, groups))
    return groups, dead


@dataclasses.dataclass(frozen=True, slots=True)
class StagedGroup:
    """Runs of one writer schema written as Avro containers: ``(partition, first offset, file)``."""

    columns: list[str]
    parts: list[tuple[int, int, str]]


def write_groups(groups: dict[bytes, list[Run]], directory: Path) -> list[StagedGroup]:
    """One container file per run in ``directory`` (memory-backed scratch), grouped by writer schema."""
    staged = []
    for g, (fingerprint, runs) in enumerate(groups.items()):
        schema = schema_for_fingerprint(fingerprint)
        schema_json = message_schema_json(schema)
        parts = []
        for i, run in enumerate(runs):
            path = directory / f"g{g}-run{i}.avro"
            # Runs reach here with every value a message of this schema (no None).
            path.write_bytes(message_container(schema_json, run.values))  # type: ignore[arg-type]
            parts.append((run.partition, run.first_offset, str(path)))
        staged.append(StagedGroup([f["name"] for f in schema.source["fields"]], parts))
    return staged


@dataclasses.dataclass(frozen=True, slots=True)
class NativeGroup:
    """Rows of one writer schema already decoded (ClickHouse's Native format), with their Kafka positions.

    ``columns`` names the file's columns: the schema's fields, then ``_topic``, ``_partition``, ``_offset``.
    The Kafka reader writes these (:mod:`consumers.readerdecode`) so that the store has no parsing left.
    """

    columns: list[str]
    path: str


def stage_groups(sink: Sink, topic: str, staged: Sequence[StagedGroup | NativeGroup]) -> None:
    """Stage every group into the sink's (truncated) staging table; a block ClickHouse refuses raises."""
    sink.truncate()
    try:
        for group in staged:
            if isinstance(group, NativeGroup):
                sink.stage_native(group.columns, group.path)
            else:
                sink.stage_files(topic, group.columns, group.parts)
    except StoreQueryError:
        sink.truncate()
        raise


def raw_lookup(runs: Sequence[Run]) -> RawOf:
    """The raw messages of a batch by (partition, offset), for dead letters."""

    def raw_of(positions: Sequence[tuple[int, int]]) -> list[bytes]:
        found = []
        for partition, offset in positions:
            value = b""
            for run in runs:
                if run.partition == partition and run.first_offset <= offset < run.next_offset:
                    value = run.values[offset - run.first_offset] or b""
                    break
            found.append(value)
        return found

    return raw_of


def finish(sink: Sink, result: BatchResult, dead: Sequence[DeadLetter]) -> BatchResult:
    """Account the dead letters found before staging with the sink's, and write them all."""
    result.received += len(dead)
    result.dead = [*dead, *result.dead]
    sink.write_dead_letters(result.dead)
    return result


#: Stages, checks and stores a batch's containers (``staged``, the dead letters found before staging,
#: the raw messages by position); None when ClickHouse refused a block and nothing was stored.
Submit = Callable[[list[StagedGroup], list[DeadLetter], RawOf], BatchResult | None]


def store_staged(
    sink: Sink, topic: str, staged: Sequence[StagedGroup | NativeGroup], dead: list[DeadLetter], raw_of: RawOf
) -> BatchResult | None:
    """The store's side of a batch: stage, check, publish, dead letters; None when a block is refused."""
    try:
        stage_groups(sink, topic, staged)
    except StoreQueryError:
        return None
    return finish(sink, sink.publish("kafka", raw_of), dead)


def store_through(topic: str, batch: Gathered, submit: Submit) -> BatchResult:
    """The reader's side of a batch: submit its containers.

    When ClickHouse refuses a block (a corrupt body), the messages are decoded
    with fastavro to find the poison, which becomes dead letters, and the rest
    is submitted again: a bad message never stalls its partition.
    """
    raw_of = raw_lookup(batch.runs)
    result = submit(batch.staged(), batch.dead, raw_of)
    if result is None:
        groups, poison = isolate(topic, group_runs(topic, batch.runs)[0])
        with scratch_dir() as directory:
            result = submit(write_groups(groups, directory), [*batch.dead, *poison], raw_of)
        if result is None:
            raise StoreError(f"ClickHouse refused a batch of {topic} although each of its messages decodes")
    return result


def store_gathered(sink: Sink, topic: str, batch: Gathered) -> BatchResult:
    """Store a batch in this process (dead letters included); offsets may be committed after."""
    return store_through(topic, batch, lambda staged, dead, raw_of: store_staged(sink, topic, staged, dead, raw_of))


def isolate(topic: str, groups: dict[bytes, list[Run]]) -> tuple[dict[bytes, list[Run]], list[DeadLetter]]:
    good: dict[bytes, list[Run]] = {}
    dead = []
    for fingerprint, runs in groups.items():
        for run in runs:
            items = []
            for i, raw in enumerate(run.values):
                value = raw or b""
                try:
                    decode_record(value)
                except DecodeError as exc:
                    dead.append(_dead(topic, run.partition, run.first_offset + i, value, "undecodable", str(exc)))
                    continue
                items.append((run.first_offset + i, raw))
            good.setdefault(fingerprint, []).extend(_split(run.partition, items))
    return good, dead


class _Container:
    """A container file of one partition's consecutive messages of one writer schema, a block per poll."""

    def __init__(self, path: Path, schema_json: bytes, partition: int, first_offset: int) -> None:
        self.path = path
        self.partition = partition
        self.first_offset = first_offset
        self.next_offset = first_offset
        self._sync = os.urandom(16)
        self._file = path.open("wb")
        self._file.write(header(schema_json, self._sync))

    def append(self, values: Sequence[bytes]) -> None:
        self._file.write(block(values, self._sync))
        self.next_offset += len(values)

    def close(self) -> None:
        self._file.close()


class Gathered:
    """A live batch being gathered: its runs, its dead letters, and its containers, written as records arrive.

    Each poll's records for a partition are checked by header (:func:`group_runs`) and appended as one
    block to that partition's container of their writer schema (a new container after an offset gap),
    in a private scratch directory. :meth:`close` removes it once the batch is stored or dropped.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.runs: list[Run] = []
        self.dead: list[DeadLetter] = []
        self.count = 0
        self._directory: Path | None = None
        self._containers: dict[bytes, list[_Container]] = {}  # by writer fingerprint, in order of creation
        self._last: dict[tuple[bytes, int], _Container] = {}  # (fingerprint, partition) -> its latest container
        self._tail: dict[int, Run] = {}  # partition -> its latest run
        #: The containers decoded ahead of storing (the Kafka reader, consumers.readerdecode), if they were.
        self.decoded: list[NativeGroup] | None = None

    def add(self, partition: int, offsets: Sequence[int], values: list[bytes | None]) -> None:
        """One partition's messages from a poll: their offsets (ascending) and values."""
        runs = runs_of(partition, offsets, values)
        self.count += len(offsets)
        groups, dead = group_runs(self.topic, runs)
        self.dead.extend(dead)
        for fingerprint, group in groups.items():
            for run in group:
                self._append(fingerprint, run)
        for run in runs:  # kept for dead letters' raw bytes and poison isolation; contiguous runs joined
            last = self._tail.get(run.partition)
            if last is not None and last.next_offset == run.first_offset:
                last.values.extend(run.values)
            else:
                self.runs.append(run)
                self._tail[run.partition] = run

    def _append(self, fingerprint: bytes, run: Run) -> None:
        container = self._last.get((fingerprint, run.partition))
        if container is None or container.next_offset != run.first_offset:
            if self._directory is None:
                self._directory = new_scratch_dir()
            number = sum(map(len, self._containers.values()))
            path = self._directory / f"c{number}.avro"
            container = _Container(
                path, message_schema_json(schema_for_fingerprint(fingerprint)), run.partition, run.first_offset
            )
            self._containers.setdefault(fingerprint, []).append(container)
            self._last[(fingerprint, run.partition)] = container
        # Runs reach here with every value a message of this schema (no None).
        container.append(run.values)  # type: ignore[arg-type]

    def staged(self) -> list[StagedGroup]:
        """The containers, closed, grouped by writer schema."""
        staged = []
        for fingerprint, containers in self._containers.items():
            for container in containers:
                container.close()
            schema = schema_for_fingerprint(fingerprint)
            parts = [(c.partition, c.first_offset, str(c.path)) for c in containers]
            staged.append(StagedGroup([f["name"] for f in schema.source["fields"]], parts))
        return staged

    def next_offsets(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for run in self.runs:
            out[run.partition] = max(out.get(run.partition, 0), run.next_offset)
        return out

    def close(self) -> None:
        for containers in self._containers.values():
            for container in containers:
                container.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
