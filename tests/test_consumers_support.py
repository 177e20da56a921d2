"""Helpers for the consumer tests (no tests here): fast valid histories, stores, producing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastavro import writer

from dossier_runtime.kafka import ensure_topic, make_producer
from schemas.codec import encode_record
from schemas.events import FIELD_NAMES, DossierEvent
from schemas.registry import current_schema
from tests.eventfactory import T0, E, history

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    (E.DOSSIER_SUBMITTED, 1),
    (E.DOSSIER_RECEIVED, 2),
    (E.DOSSIER_TRANSFERRED, 4),
    (E.STEP_HANDED_OVER, 4),
    (E.RESULT_APPROVED, 4),
    (E.RESULT_ISSUED, 9),
    (E.APPLICANT_NOTIFIED, 9),
    (E.RESULT_RETURNED, 10),
]


def events(n_dossiers: int, *, start: int = 0, days: int = 45) -> list[DossierEvent]:
    """Sealed 8-event histories of ``n_dossiers`` dossiers over ``days`` days (spanning two months)."""
    out: list[DossierEvent] = []
    for i in range(start, start + n_dossiers):
        at = T0 + timedelta(days=i % days)
        dossier_id = f"000.00.31.H29-{at:%y%m%d}-{i // days:04d}"
        steps = [(t, s, {"at": at + timedelta(minutes=10 * k)}) for k, (t, s) in enumerate(STEPS)]
        out.extend(history(*steps, dossier_id=dossier_id))
    return out


def encoded(evs: list[DossierEvent]) -> list[bytes]:
    return [encode_record(e.to_record()) for e in evs]


def avro_source(store: Any, path: Path) -> tuple[str, dict[str, str]]:
    """``FROM file(…)`` reading a container's contract fields typed as ``events`` stores them, and its parameters
    (read with :data:`AVRO_SETTINGS`)."""
    columns = "SELECT name, type FROM system.columns WHERE table = 'events' AND database = currentDatabase()"
    types = dict(store.query(columns).rows)
    structure = ", ".join(f"`{name}` {types[name]}" for name in FIELD_NAMES)
    return "FROM file({p:String}, 'Avro', {s:String})", {"p": str(path), "s": structure}


AVRO_SETTINGS = {"input_format_avro_allow_missing_fields": 1}


def insert_old_layout(store: Any, path: Path, feed: Sequence[str] = ()) -> None:
    """Store a container as a loader did before migration 0014 (every contract field in a column of its own,
    hash and prev_hash included): ``feed``, the derived tables' columns, are fed first, as the loader feeds them."""
    source, params = avro_source(store, path)
    if feed:
        cols = ", ".join(feed)
        store.command(f"INSERT INTO events_feed ({cols}) SELECT {cols} {source}", params, settings=AVRO_SETTINGS)
    cols = ", ".join(f"`{name}`" for name in FIELD_NAMES)
    store.command(
        f"INSERT INTO events ({cols}, _topic, _partition, _offset) "
        f"SELECT {cols}, {{t:String}}, 0, _row_number {source}",
        {**params, "t": f"file:{path.name}"},
        settings=AVRO_SETTINGS,
    )


def write_container(path: Path, evs: list[DossierEvent], codec: str = "null") -> Path:
    with path.open("wb") as handle:
        writer(handle, current_schema().parsed, [e.to_record() for e in evs], codec=codec, sync_interval=64 * 1024)
    return path


def rows_fn(store: Any) -> Any:
    """``query(sql, params) -> rows`` over ``store``: how the audit and verify reach it."""
    return lambda sql, params: store.query(sql, params).rows


def load_container(store: Any, path: Path) -> int:
    """``load_file`` of one container into ``store`` through a MergeTree sink of its own; the events stored."""
    from consumers.bulk import load_file
    from consumers.sink import Sink

    sink = Sink(store, engine="MergeTree")
    try:
        return load_file(sink, path, path.parent).result.stored
    finally:
        sink.close()


def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], partitions: int = 6) -> None:
    ensure_topic(bootstrap, topic, partitions)
    producer = make_producer(bootstrap)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in messages]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


def keyed(evs: list[DossierEvent]) -> list[tuple[bytes, bytes]]:
    return [(e.dossier_id.encode(), m) for e, m in zip(evs, encoded(evs), strict=True)]


def poison_messages(evs: list[DossierEvent]) -> list[tuple[bytes, bytes]]:
    """One message of each kind the loader dead-letters, in the order of their kinds' names in the tests:
    bad-magic, unknown-fingerprint, undecodable, invalid (a contract-invalid event made from ``evs[3]``)."""
    return [
        (b"k", b"not avro at all"),
        (b"k", b"\xc3\x01" + b"\x01" * 8 + b"body"),
        (b"k", current_schema().fingerprint_bytes.join([b"\xc3\x01", b"\xff\xff\xff\xff"])),
        (b"k", encode_record({**evs[3].to_record(), "status": 0, "seq": 99})),
    ]


def assert_poison_dead_lettered(store: Any) -> None:
    """The four messages of :func:`poison_messages`, published at offsets 40-43, each a dead letter of its kind."""
    dead = store.query("SELECT offset, kind, error, length(raw) > 0 FROM dead_letters FINAL ORDER BY offset").rows
    assert [(o, k) for o, k, _e, _r in dead] == [
        (40, "bad-magic"),
        (41, "unknown-fingerprint"),
        (42, "undecodable"),
        (43, "invalid"),
    ]
    assert all(has_raw for *_x, has_raw in dead)
    assert "status 0" in dead[3][2]


def dossier(*args: str, env: dict[str, str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dossier_audit", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dossier_audit", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: Every event once, seqs gapless, hash chain intact: the content check of the exactly-once tests.
CONTENT_SQL = """
SELECT
    count() AS rows,
    uniqExact(event_id) AS ids,
    countIf(lower(hex(SHA256({canonical}))) != lower(hex(hash))) AS bad_hashes,
    (SELECT count() FROM (
        SELECT dossier_id, groupArray(seq) AS seqs, groupArray(hash) AS hs, groupArray(prev_hash) AS ps
        FROM (SELECT dossier_id, seq, hash, prev_hash FROM events ORDER BY dossier_id, seq)
        GROUP BY dossier_id
        HAVING seqs != range(1, length(seqs) + 1)
            OR arraySlice(ps, 2) != arraySlice(hs, 1, length(hs) - 1)
            OR ps[1] != toFixedString(repeat('\\0', 32), 32)
    )) AS broken_dossiers
FROM events
"""


def content_sql() -> str:
    from schemas.hashchain import canonical_sql

    return CONTENT_SQL.replace("{canonical}", canonical_sql())
