"""Storing a batch of events exactly once: staging, contract check, dedup, publish.

Every batch, from Kafka or from a file, goes the same way:

1. ClickHouse decodes the Avro into a private staging table
   (``_staging_<id>``, created ``AS events``: same columns, partitioning and
   sort key). Python never decodes an event on this path.
2. One query over the staging table checks the contract (:mod:`consumers.validation`),
   counts in-batch repeats of (dossier_id, seq), and looks for any of the
   batch's dossiers already stored in the time range of the batch (an exact
   duplicate has the same ``occurred_at``, so partition pruning keeps this cheap).
3. Fast path, the normal case (all valid, nothing seen before): feed the
   derived tables, then ``ATTACH PARTITION … FROM`` the staging table into
   ``events`` (a metadata operation: the parts written in step 1 are linked,
   not rewritten).
   Slow path (a replay after a crash, a rebalance, a broker reset, a file
   loaded twice, an invalid row): insert only the valid rows whose
   (dossier_id, seq) is not stored yet, first occurrence by position; invalid
   rows and different events claiming a stored (dossier_id, seq) become dead
   letters; exact repeats are dropped and counted.

Why this is effectively once: the identity of an event is (dossier_id, seq,
event_id), checked against what is already stored at the moment of storing,
so replaying any batch, whatever its boundaries, stores only what is missing.
``insert_deduplication_token`` is deliberately not used: with this filter a
replayed batch yields a different block than the first attempt, and a token
would then drop rows that were never stored. Kafka offsets are committed only
after step 3, so nothing is skipped; the store, not the broker, is the record.
One writer per staging table; the store serialises a process's batches.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from consumers.validation import reason_sql, valid_sql
from dossier_runtime.errors import StoreError
from dossier_runtime.store import Store
from schemas.events import FIELD_NAMES

FEED_COLUMNS: Final = (
    "event_id",
    "dossier_id",
    "seq",
    "event_type",
    "status",
    "occurred_at",
    "recorded_at",
    "unit_code",
    "procedure_code",
    "channel",
    "applicant_kind",
    "actor_id",
    "actor_role",
    "step_code",
    "due_at",
)
POSITION_COLUMNS: Final = ("_topic", "_partition", "_offset")
DEAD_LETTER_COLUMNS: Final = (
    "source",
    "topic",
    "partition",
    "offset",
    "kind",
    "error",
    "event_id",
    "dossier_id",
    "seq",
    "raw",
)
_STAGING_RE: Final = re.compile(r"^_staging_[0-9a-f]{8,32}$")

#: Stored events are written by one batch at a time per process.
STORE_LOCK: Final = threading.Lock()


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    source: str  # kafka | file
    topic: str
    partition: int
    offset: int
    kind: str  # bad-magic | unknown-fingerprint | undecodable | invalid | conflict
    error: str
    raw: bytes = b""
    event_id: str | None = None
    dossier_id: str | None = None
    seq: int | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.source,
            self.topic,
            self.partition,
            self.offset,
            self.kind,
            self.error,
            self.event_id,
            self.dossier_id,
            self.seq,
            self.raw,
        )

    def where(self) -> str:
        if self.source == "kafka":
            return f"{self.topic}/{self.partition}@{self.offset}"
        return f"{self.topic.removeprefix('file:')} record {self.offset}"


@dataclasses.dataclass
class BatchResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = dataclasses.field(default_factory=list)
    fast_path: bool = True

    def merge(self, other: BatchResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead.extend(other.dead)
        self.fast_path = self.fast_path and other.fast_path


class Sink:
    """A writer's staging table and the store-a-batch procedure above."""

    def __init__(self, store: Store) -> None:
        if store.role != "writer":
            raise StoreError("loading needs the store opened for writing")
        self.store = store
        self.staging = f"_staging_{secrets.token_hex(6)}"
        assert _STAGING_RE.match(self.staging)
        store.command(f"CREATE TABLE IF NOT EXISTS {self.staging} AS events")
        self.event_columns = self._columns()

    def _columns(self) -> dict[str, str]:
        result = self.store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events' "
            "ORDER BY position"
        )
        columns = {str(n): str(t) for n, t in result.rows}
        missing = [name for name in FIELD_NAMES if name not in columns]
        if missing:
            raise StoreError(f"the events table lacks {', '.join(missing)}; run `dossier consume migrate`")
        return columns

    def close(self) -> None:
        try:
            self.store.command(f"DROP TABLE IF EXISTS {self.staging}")
        except StoreError:
            pass

    # -- staging ---------------------------------------------------------------------------

    def truncate(self) -> None:
        self.store.command(f"TRUNCATE TABLE {self.staging}")

    def insert_avro(self, columns: Sequence[str], data: bytes) -> None:
        cols = ", ".join(f"`{c}`" for c in columns)
        self.store.insert_bytes(f"INSERT INTO {self.staging} ({cols})", "Avro", [data])

    def file_structure(self) -> str:
        """The ``file()`` structure: contract columns typed as stored (no inference)."""
        return ", ".join(f"`{name}` {self.event_columns[name]}" for name in FIELD_NAMES)

    # -- publish ---------------------------------------------------------------------------

    def publish(self, source: str, raw_of: Callable[[int, int], bytes] | None = None) -> BatchResult:
        """Move the staged rows into ``events`` (steps 2-3); return what happened."""
        with STORE_LOCK:
            return self._publish(source, raw_of)

    def _publish(self, source: str, raw_of: Callable[[int, int], bytes] | None) -> BatchResult:
        s = self.staging
        stats = self.store.query(
            f"SELECT count(), countIf(NOT {valid_sql()}), uniqExact(dossier_id, seq), min(occurred_at), "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"max(occurred_at) FROM {s}"
        ).rows[0]
        total, invalid, keys, low, high = stats
        result = BatchResult(received=int(total))
        if not total:
            return result
        overlap = self.store.query(
            f"SELECT count() FROM events WHERE dossier_id IN (SELECT dossier_id FROM {s}) "  # noqa: S608  (staging name and contract SQL are generated, not input)
            "AND occurred_at >= {low:DateTime64(6, 'UTC')} AND occurred_at <= {high:DateTime64(6, 'UTC')}",
            {"low": low, "high": high},
        ).scalar()
        feed = ", ".join(FEED_COLUMNS)
        if not invalid and keys == total and not overlap:
            self.store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM {s}")  # noqa: S608  (staging name and contract SQL are generated, not input)
            parts = self.store.query(
                "SELECT DISTINCT partition_id FROM system.parts "
                "WHERE database = currentDatabase() AND table = {t:String} AND active",
                {"t": s},
            )
            for (partition_id,) in parts.rows:
                self.store.command(f"ALTER TABLE events ATTACH PARTITION ID {{p:String}} FROM {s}", {"p": partition_id})
            result.stored = int(total)
        else:
            self._slow_path(result, source, raw_of)
        self.truncate()
        return result

    def _slow_path(self, result: BatchResult, source: str, raw_of: Callable[[int, int], bytes] | None) -> None:
        s = self.staging
        reason = reason_sql()
        result.fast_path = False
        stored_keys = f"SELECT dossier_id, seq FROM events WHERE dossier_id IN (SELECT dossier_id FROM {s})"  # noqa: S608  (staging name and contract SQL are generated, not input)
        fresh = (
            f"SELECT * FROM {s} WHERE {valid_sql()} AND (dossier_id, seq) NOT IN ({stored_keys}) "  # noqa: S608  (staging name and contract SQL are generated, not input)
            "ORDER BY _partition, _offset LIMIT 1 BY dossier_id, seq"
        )
        rejects = self.store.query(
            f"SELECT _topic, _partition, _offset, event_id, dossier_id, seq, r "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"FROM (SELECT *, {reason} AS r FROM {s}) WHERE r != '' ORDER BY _partition, _offset"
        )
        fresh_count = int(self.store.query(f"SELECT count() FROM ({fresh})").scalar() or 0)  # noqa: S608  (staging name and contract SQL are generated, not input)
        feed = ", ".join(FEED_COLUMNS)
        self.store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM {s} WHERE {valid_sql()}")  # noqa: S608  (staging name and contract SQL are generated, not input)
        self.store.command(f"INSERT INTO events {fresh}")
        conflicts = self.store.query(
            f"SELECT s._topic, s._partition, s._offset, s.event_id, s.dossier_id, s.seq, "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"concat('dossier ', s.dossier_id, ' seq ', toString(s.seq), ' is already stored as event ', e.event_id) "
            f"FROM {s} AS s INNER JOIN (SELECT dossier_id, seq, event_id FROM events "
            f"WHERE dossier_id IN (SELECT dossier_id FROM {s})) AS e ON s.dossier_id = e.dossier_id AND s.seq = e.seq "
            f"WHERE s.event_id != e.event_id AND (s._partition, s._offset) NOT IN "
            f"(SELECT _partition, _offset FROM {s} WHERE {reason} != '') "
            "ORDER BY s._partition, s._offset LIMIT 1 BY s._partition, s._offset"
        )
        result.stored = fresh_count
        for kind, rows in (("invalid", rejects.rows), ("conflict", conflicts.rows)):
            for topic, partition, offset, event_id, dossier_id, seq, error in rows:
                raw = raw_of(int(partition), int(offset)) if raw_of else b""
                result.dead.append(
                    DeadLetter(
                        source,
                        str(topic),
                        int(partition),
                        int(offset),
                        kind,
                        str(error),
                        raw,
                        str(event_id),
                        str(dossier_id),
                        int(seq),
                    )
                )
        result.duplicates = result.received - result.stored - len(result.dead)

    def write_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if dead:
            self.store.insert_rows("dead_letters", DEAD_LETTER_COLUMNS, [d.row() for d in dead])


def drop_stale_staging(store: Store, keep: Mapping[str, object] | None = None) -> int:
    """Drop staging tables left by crashed writers (embedded: this process is the only writer)."""
    result = store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '_staging_')"
    )
    dropped = 0
    for (name,) in result.rows:
        if _STAGING_RE.match(str(name)) and (keep is None or name not in keep):
            store.command(f"DROP TABLE IF EXISTS {name}")
            dropped += 1
    return dropped
