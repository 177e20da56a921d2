"""One batch of Kafka messages → the store, without decoding events in Python.

A batch is a list of :class:`Run`: the values of one partition at
consecutive offsets, as a poll returned them. Messages are checked by their
10-byte single-object header only (magic, released fingerprint), a whole run
at once at C speed in the normal case; each run becomes one Avro container
block by concatenating the messages (:mod:`consumers.avrofile`), and
ClickHouse decodes them, numbering the rows so that a row's Kafka position
is its run's first offset plus its index (:meth:`consumers.sink.Sink.stage_runs`).
Python does no per-event work beyond taking the values from the poll.

When ClickHouse refuses a block (a corrupt body), the batch falls back to
decoding each message with fastavro to find the poison, dead-letters it, and
stores the rest: a bad message never stalls the partition.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from consumers.avrofile import message_container, message_schema_json
from consumers.sink import BatchResult, DeadLetter, Sink
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


def _group(topic: str, runs: Sequence[Run]) -> tuple[dict[bytes, list[Run]], list[DeadLetter]]:
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


def _stage(sink: Sink, topic: str, groups: dict[bytes, list[Run]]) -> None:
    for fingerprint, runs in groups.items():
        schema = schema_for_fingerprint(fingerprint)
        schema_json = message_schema_json(schema)
        columns = [f["name"] for f in schema.source["fields"]]
        # Runs reach here with every value a message of this schema (no None).
        parts = [(r.partition, r.first_offset, message_container(schema_json, r.values)) for r in runs]  # type: ignore[arg-type]
        sink.stage_runs(topic, columns, parts)


def _raw_lookup(runs: Sequence[Run]) -> Callable[[int, int], bytes]:
    def raw_of(partition: int, offset: int) -> bytes:
        for run in runs:
            if run.partition == partition and run.first_offset <= offset < run.next_offset:
                return run.values[offset - run.first_offset] or b""
        return b""

    return raw_of


def store_runs(sink: Sink, topic: str, runs: Sequence[Run]) -> BatchResult:
    """Store a batch (dead letters included) and return what happened; offsets may be committed after."""
    groups, dead = _group(topic, runs)
    sink.truncate()
    try:
        _stage(sink, topic, groups)
    except StoreQueryError:
        sink.truncate()
        groups, poison = _isolate(topic, groups)
        dead.extend(poison)
        _stage(sink, topic, groups)
    result = sink.publish("kafka", _raw_lookup(runs))
    result.received += len(dead)
    result.dead = dead + result.dead
    sink.write_dead_letters(result.dead)
    return result


def _isolate(topic: str, groups: dict[bytes, list[Run]]) -> tuple[dict[bytes, list[Run]], list[DeadLetter]]:
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
