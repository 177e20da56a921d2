"""One batch of Kafka messages → the store, without decoding events in Python.

Messages are checked by their 10-byte single-object header only (magic,
released fingerprint); bodies are concatenated into one Avro container block
per writer schema with their position prepended (:mod:`consumers.avrofile`)
and ClickHouse decodes them. When ClickHouse refuses a block (a corrupt body),
the batch falls back to decoding each message with fastavro to find the
poison, dead-letters it, and stores the rest: a bad message never stalls the
partition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from consumers.avrofile import PREFIX_FIELDS, avro_string, container, kafka_schema_json, zigzag
from consumers.sink import BatchResult, DeadLetter, Sink
from dossier_runtime.storebackends import StoreQueryError
from schemas.codec import HEADER_SIZE, MAGIC, decode_record
from schemas.errors import DecodeError, UnknownFingerprintError
from schemas.registry import ReleasedSchema, schema_for_fingerprint


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    partition: int
    offset: int
    value: bytes | None


def _group(topic: str, messages: Sequence[Message]) -> tuple[dict[bytes, list[Message]], list[DeadLetter]]:
    groups: dict[bytes, list[Message]] = {}
    dead: list[DeadLetter] = []
    cache: dict[bytes, ReleasedSchema | None] = {}
    for msg in messages:
        value = msg.value or b""
        if len(value) < HEADER_SIZE or value[:2] != MAGIC:
            dead.append(
                DeadLetter(
                    "kafka",
                    topic,
                    msg.partition,
                    msg.offset,
                    "bad-magic",
                    f"not an Avro single-object message (starts with {value[:2].hex() or 'nothing'}, expected c301)",
                    value,
                )
            )
            continue
        fingerprint = value[2:HEADER_SIZE]
        if fingerprint not in cache:
            try:
                cache[fingerprint] = schema_for_fingerprint(fingerprint)
            except UnknownFingerprintError:
                cache[fingerprint] = None
        schema = cache[fingerprint]
        if schema is None:
            dead.append(
                DeadLetter(
                    "kafka",
                    topic,
                    msg.partition,
                    msg.offset,
                    "unknown-fingerprint",
                    f"unknown writer schema fingerprint {fingerprint.hex()}",
                    value,
                )
            )
            continue
        groups.setdefault(schema.fingerprint_bytes, []).append(msg)
    return groups, dead


def _stage(sink: Sink, topic: str, groups: dict[bytes, list[Message]]) -> None:
    topic_bytes = avro_string(topic)
    for fingerprint, msgs in groups.items():
        schema = schema_for_fingerprint(fingerprint)
        bodies = [topic_bytes + zigzag(m.partition) + zigzag(m.offset) + (m.value or b"")[HEADER_SIZE:] for m in msgs]
        columns = [f["name"] for f in PREFIX_FIELDS] + [f["name"] for f in schema.source["fields"]]
        sink.insert_avro(columns, container(kafka_schema_json(schema), bodies))


def store_messages(sink: Sink, topic: str, messages: Sequence[Message]) -> BatchResult:
    """Store a batch (dead letters included) and return what happened; offsets may be committed after."""
    groups, dead = _group(topic, messages)
    sink.truncate()
    try:
        _stage(sink, topic, groups)
    except StoreQueryError:
        sink.truncate()
        groups, poison = _isolate(topic, groups)
        dead.extend(poison)
        _stage(sink, topic, groups)
    raw = {(m.partition, m.offset): m.value or b"" for m in messages}
    result = sink.publish("kafka", lambda p, o: raw.get((p, o), b""))
    result.received += len(dead)
    result.dead = dead + result.dead
    sink.write_dead_letters(result.dead)
    return result


def _isolate(topic: str, groups: dict[bytes, list[Message]]) -> tuple[dict[bytes, list[Message]], list[DeadLetter]]:
    good: dict[bytes, list[Message]] = {}
    dead = []
    for fingerprint, msgs in groups.items():
        for msg in msgs:
            try:
                decode_record(msg.value or b"")
            except DecodeError as exc:
                dead.append(
                    DeadLetter("kafka", topic, msg.partition, msg.offset, "undecodable", str(exc), msg.value or b"")
                )
                continue
            good.setdefault(fingerprint, []).append(msg)
    return good, dead
