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
the process that owns the store. :func:`store_runs` does all of it in one.

When ClickHouse refuses a block (a corrupt body), the batch falls back to
decoding each message with fastavro to find the poison, dead-letters it, and
stores the rest: a bad message never stalls the partition.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from consumers.avrofile import message_container, message_schema_json
from consumers.sink import BatchResult, DeadLetter, RawOf, Sink, scratch_dir
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import StoreQueryError
from schemas.codec import HEADER_SIZE, MAGIC, decode_record
from schemas.errors import DecodeError, UnknownFingerprintError
from schemas.registry import ReleasedSchema, schema_for_fingerprint

_HEAD: Final[Callable[[Any], bytes]] = operator.itemgetter(slice(0, HEADER_SIZE))
_VALUE: Final[Callable[[Any], bytes | None]] = operator.attrgetter("value")


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """Message values of one partition at consecutive offsets from ``first_offset``."""

    partition: int
    first_offset: int
    values: list[bytes | None]

    @property
    def next_offset(self) -> int:
        return self.first_offset + len(self.values)


def runs_of(partition: int, records: Sequence[Any]) -> list[Run]:
    """The runs of one partition's records from a poll (ascending offsets; gaps split runs)."""
    if not records:
        return []
    first = records[0].offset
    values: list[bytes | None] = list(map(_VALUE, records))
    if records[-1].offset - first + 1 == len(records):
        return [Run(partition, first, values)]
    return _split(partition, ((r.offset, r.value) for r in records))


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


def stage_groups(sink: Sink, topic: str, staged: Sequence[StagedGroup]) -> None:
    """Stage every group into the sink's (truncated) staging table; a block ClickHouse refuses raises."""
    sink.truncate()
    try:
        for group in staged:
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
    sink: Sink, topic: str, staged: list[StagedGroup], dead: list[DeadLetter], raw_of: RawOf
) -> BatchResult | None:
    """The store's side of a batch: stage, check, publish, dead letters; None when a block is refused."""
    try:
        stage_groups(sink, topic, staged)
    except StoreQueryError:
        return None
    return finish(sink, sink.publish("kafka", raw_of), dead)


def store_through(topic: str, runs: Sequence[Run], submit: Submit) -> BatchResult:
    """The reader's side of a batch: group the runs, write the containers, submit them.

    When ClickHouse refuses a block (a corrupt body), the messages are decoded
    with fastavro to find the poison, which becomes dead letters, and the rest
    is submitted again: a bad message never stalls its partition.
    """
    groups, dead = group_runs(topic, runs)
    raw_of = raw_lookup(runs)
    with scratch_dir() as directory:
        result = submit(write_groups(groups, directory), dead, raw_of)
    if result is None:
        groups, poison = isolate(topic, groups)
        with scratch_dir() as directory:
            result = submit(write_groups(groups, directory), [*dead, *poison], raw_of)
        if result is None:
            raise StoreError(f"ClickHouse refused a batch of {topic} although each of its messages decodes")
    return result


def store_runs(sink: Sink, topic: str, runs: Sequence[Run]) -> BatchResult:
    """Store a batch in this process (dead letters included); offsets may be committed after."""
    return store_through(topic, runs, lambda staged, dead, raw_of: store_staged(sink, topic, staged, dead, raw_of))


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
