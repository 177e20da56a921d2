"""Support for the publishing tests (no tests here): sample histories as files, reading a topic back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from schemas.events import DossierEvent
from schemas.jsonform import to_json_line
from tests.eventfactory import DOSSIER_ID, T0, E, history


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def dossier_id(n: int) -> str:
    return DOSSIER_ID[:-4] + f"{n:04d}"


def full_history(n: int = 1) -> list[DossierEvent]:
    """A complete, legal 8-event history of dossier ``n``."""
    return history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2, {"due_at": T0 + timedelta(days=3)}),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4),
        (E.RESULT_APPROVED, 4),
        (E.RESULT_ISSUED, 9),
        (E.RESULT_RETURNED, 10),
        (E.CITIZEN_RATED, 10),
        dossier_id=dossier_id(n),
    )


def interleaved(dossiers: int) -> list[DossierEvent]:
    """Histories of ``dossiers`` dossiers, events interleaved round-robin (each dossier still in order)."""
    histories = [full_history(n) for n in range(1, dossiers + 1)]
    return [h[i] for i in range(8) for h in histories]


def write_jsonl(path: Path, events: Sequence[DossierEvent]) -> Path:
    path.write_text("".join(to_json_line(e) + "\n" for e in events), encoding="utf-8")
    return path


def consume(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 20.0) -> list[Record]:
    """Every record of ``topic`` (at least ``expected`` of them), in offset order per partition."""
    from kafka import TopicPartition

    from dossier_runtime.kafka import make_consumer

    consumer = make_consumer(bootstrap, group_id=None)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                out.extend(
                    Record(r.partition, r.offset, r.key, r.value, tuple((k, bytes(v)) for k, v in r.headers))
                    for r in records
                )
        # one more short poll: anything beyond ``expected`` would be a duplicate
        for records in consumer.poll(timeout_ms=300).values():
            out.extend(
                Record(r.partition, r.offset, r.key, r.value, tuple((k, bytes(v)) for k, v in r.headers))
                for r in records
            )
    finally:
        consumer.close()
    return sorted(out, key=lambda r: (r.partition, r.offset))
