"""Storing a batch of events exactly once: staging, contract check, dedup, publish.

Every batch, from Kafka or from a file, goes the same way:

1. ClickHouse decodes the Avro into a private staging table
   (``_staging_<id>``, created ``AS events``). Python never decodes an event
   on this path. Live batches stage into a ``Memory`` table (no sorting,
   compression or disk: the cheapest parse); file loads into a ``MergeTree``
   with the partitioning and sort key of ``events``.
2. One query over the staging table checks the contract (:mod:`consumers.validation`),
   counts in-batch repeats of (dossier_id, seq) (by a 64-bit hash: a collision
   can only make the batch look repeated and take the exact path), and counts the rows whose
   ``seq`` is not beyond the highest ``seq`` the store has seen for their
   dossier (``dossier_state``, one row per dossier: ten times smaller than
   ``events``, and read by its ``dossier_id`` key; on the embedded store, the
   loader's in-memory copy of it, :mod:`consumers.dossierseqs`, which must
   prove before each batch that it covers the store). Every path feeds the derived
   tables *before* it writes ``events``, so ``dossier_state`` never knows less
   than ``events`` holds: a batch with no such row cannot repeat a stored event.
   A dossier whose earlier events are stored and whose next ones arrive now is
   the normal case, not a repeat.
3. Fast path, the normal case (all valid, nothing seen before): feed the
   derived tables, then move the rows into ``events``: ``INSERT … SELECT``
   from a Memory staging table (the one write of the part), or ``ATTACH
   PARTITION … FROM`` a MergeTree one (a metadata operation: the parts
   written in step 1 are linked, not rewritten).
   Slow path (a replay after a crash, a rebalance, a broker reset, a file
   loaded twice, an invalid row, a dossier's events arriving out of ``seq``
   order): the exact check against ``events``; insert only the valid rows whose
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

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from consumers.dossierseqs import DossierSeqIndex, run_of
from consumers.eventids import EventIdIndex, hashes_of
from consumers.migrations import deployed_cluster
from consumers.validation import reason_sql, valid_sql
from dossier_runtime.errors import StoreError
from dossier_runtime.store import Store
from schemas.clusterddl import LOCAL_JOIN_SETTINGS, WRITE_SETTINGS, local_table
from schemas.events import FIELD_NAMES

Engine = Literal["Memory", "MergeTree"]

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
    # 0006_dossier_facts
    "service_level",
    "result_electronic",
    "payment_channel",
    "amount_vnd",
    "rating",
    "clock_stopped",
    "to_unit",
    "to_actor",
    "to_role",
    "step_due_at",
    "step_budget_minutes",
    # 0015_facts_at_scale
    "unknown_facts",
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
_CODEC_RE: Final = re.compile(r"\s+CODEC\((?:[^()]|\([^()]*\))*\)")
_LOW_CARDINALITY: Final = re.compile(r"LowCardinality\((.*)\)")


def read_type(stored: str) -> str:
    """The type a file's field is parsed as, for a column stored as ``stored``.

    A ``LowCardinality`` column (migration 0017) is parsed as its inner type and converted as the rows are
    inserted. Parsed by ClickHouse's Avro reader straight into the 19 such columns, staging took twice the CPU
    (4.3 CPU-microseconds an event more); parsed as strings and converted, it takes less than before 0017
    (BENCHMARKS.md, "Short-list columns as LowCardinality").
    """
    plain = _LOW_CARDINALITY.fullmatch(stored)
    return plain.group(1) if plain else stored


_CHAIN: Final = ("prev_hash", "hash")  # stored as one column, ``chain`` (see stored_columns)
#: On a server, a loader renews its staging table's lease this often (at a batch) ...
STAGING_LEASE_S: Final = 300
#: ... and a loader starting drops the staging tables of loaders gone this long (kill -9, a lost machine).
STAGING_STALE_S: Final = 3600
_SCRATCH_PREFIX: Final = "dossier-batch-"

#: The raw messages at these (partition, offset) positions, for dead letters.
RawOf = Callable[[Sequence[tuple[int, int]]], list[bytes]]

#: Stored events are written by one batch at a time per process.
STORE_LOCK: Final = threading.Lock()
_LIVE_STAGING: set[str] = set()  # staging tables of this process's open sinks


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
    """A writer's staging table and the store-a-batch procedure above.

    ``engine``: ``Memory`` for bounded batches (live loading), ``MergeTree``
    for files of any size (their parts are attached, not copied).
    """

    def __init__(self, store: Store, *, engine: Engine = "Memory") -> None:
        if store.role != "writer":
            raise StoreError("loading needs the store opened for writing")
        self.store = store
        self.engine = engine
        self.staging = f"_staging_{secrets.token_hex(6)}"
        assert _STAGING_RE.match(self.staging)
        # On a cluster (schemas.clusterddl) ``events`` is Distributed: staging copies the shard-local
        # table's columns with an engine of its own, rows go through the Distributed tables
        # synchronously (never attached: that would put every dossier on this node's shard), and the
        # lookups that join stored tables with the staging table run where the staging table is.
        self.cluster = deployed_cluster(store) if store.kind != "embedded" else None
        self._write = WRITE_SETTINGS if self.cluster else None
        self._join = LOCAL_JOIN_SETTINGS if self.cluster else None
        # The derived tables' views run side by side rather than one after the other, and their blocks are
        # written as they come (optimize_on_insert=0): the Replacing/Aggregating targets would otherwise
        # collapse each block's equal keys on insert, which a batch never has (one row per dossier, or per
        # event) and which cost about a third of the feed. Readers collapse with FINAL or GROUP BY anyway.
        self._feed = {"parallel_view_processing": 1, "optimize_on_insert": 0, **(self._write or {})}
        source = local_table("events", self.cluster)
        if engine == "Memory":
            self._create = f"CREATE TABLE IF NOT EXISTS {self.staging} AS {source} ENGINE = Memory"
        elif self.cluster:
            self._create = (
                f"CREATE TABLE IF NOT EXISTS {self.staging} AS {source} "
                "ENGINE = MergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (dossier_id, seq)"
            )
        else:  # a MergeTree staging table whose parts are attached to events as they are written
            self._create = self._fast_codec_staging(source)
        with STORE_LOCK:
            if store.kind == "embedded":  # this process is the only writer: the rest are left by crashes
                drop_stale_staging(store, keep=dict.fromkeys(_LIVE_STAGING))
                drop_stale_scratch()
            else:  # other loaders share the server: only the tables whose lease ran out
                drop_stale_staging(store, keep=dict.fromkeys(_LIVE_STAGING), idle_s=STAGING_STALE_S)
            store.command(self._create)
            _LIVE_STAGING.add(self.staging)
        self._leased = time.monotonic()
        self.event_ids = EventIdIndex(store, lock=STORE_LOCK)  # read in the background, saved at close
        self.dossier_seqs = DossierSeqIndex(store, lock=STORE_LOCK)  # read in the background
        self.event_columns = self._columns()
        #: The type each column is parsed as from a file (:func:`read_type`): what Avro is decoded into.
        self.read_columns = {name: read_type(kind) for name, kind in self.event_columns.items()}
        self._structure: dict[tuple[str, ...], str] = {}

    def _fast_codec_staging(self, source: str) -> str:
        """``CREATE`` of a staging table like ``source`` but with ClickHouse's default codec (LZ4) everywhere.

        Its parts become parts of ``events`` by ``ATTACH PARTITION … FROM`` (which does not compare codecs: every
        compressed block names its own). ``events`` keeps ZSTD (migration 0014), which merges apply when they
        rewrite these parts; the batch's one write stays at LZ4's cost.
        """
        ddl = str(self.store.query(f"SHOW CREATE TABLE {source}").scalar())
        head, _sep, body = ddl.partition("(")
        if not head.strip().upper().startswith("CREATE TABLE"):
            return f"CREATE TABLE IF NOT EXISTS {self.staging} AS {source}"
        return f"CREATE TABLE IF NOT EXISTS {self.staging} (" + _CODEC_RE.sub("", body)

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
        self.event_ids.close()
        self.dossier_seqs.close()
        with STORE_LOCK:
            _LIVE_STAGING.discard(self.staging)
        try:
            self.store.command(f"DROP TABLE IF EXISTS {self.staging}")
        except StoreError:
            pass

    # -- staging ---------------------------------------------------------------------------

    def truncate(self) -> None:
        """Empty the staging table for the next batch (on a server, renewing its lease when due)."""
        if self.store.kind != "embedded" and time.monotonic() - self._leased >= STAGING_LEASE_S:
            self._renew_lease()
        self.store.command(f"TRUNCATE TABLE {self.staging}")

    def _renew_lease(self) -> None:
        """Mark the staging table alive (its metadata time), recreating it if it was dropped as stale meanwhile."""
        self.store.command(self._create)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # digits and punctuation of our own
        self.store.command(f"ALTER TABLE {self.staging} MODIFY COMMENT 'dossier-audit loader staging, alive {stamp}'")
        self._leased = time.monotonic()

    def file_structure(self, names: Sequence[str] = FIELD_NAMES) -> str:
        """The ``file()``/``input()`` structure: these contract columns typed as stored (no inference), each
        short-list column as its inner type (:func:`read_type`)."""
        key = tuple(names)
        if key not in self._structure:
            self._structure[key] = ", ".join(f"`{name}` {self.read_columns[name]}" for name in names)
        return self._structure[key]

    def stage_files(self, topic: str, columns: Sequence[str], parts: Sequence[tuple[int, int, str]]) -> None:
        """Stage Avro containers of Kafka runs: ``(partition, first offset, container file)``.

        Row *i* of a run's container was the message at ``first offset + i``;
        ClickHouse numbers the rows, so no position travels with a record. The
        files of one call must share a directory (an embedded store reads them
        all in one query).
        """
        if not parts:
            return
        into, cols = stored_columns(columns)
        target = f"INSERT INTO {self.staging} ({into}, _topic, _partition, _offset)"
        structure = self.file_structure(columns)
        if self.store.kind != "embedded":
            # A server cannot read our files: send each run, numbering its rows as they arrive.
            for partition, first, path in parts:
                self.store.insert_bytes(
                    f"{target} SELECT {cols}, {{topic:String}}, {{p:Int32}}, {{first:Int64}} + rowNumberInAllBlocks() "  # noqa: S608  (staging name and columns are generated, not input)
                    "FROM input({structure:String})",
                    "Avro",
                    [Path(path).read_bytes()],
                    {"topic": topic, "p": partition, "first": first, "structure": structure},
                )
            return
        select, params = containers_select(topic, cols, parts, structure)
        self.store.command(f"{target} {select}", params, settings={"input_format_avro_allow_missing_fields": 1})

    def stage_native(self, columns: Sequence[str], path: str) -> None:
        """Stage rows a Kafka reader already decoded (:class:`consumers.batch.NativeGroup`): no parsing left."""
        into, cols = stored_columns(columns)
        if self.store.kind != "embedded":
            self.store.insert_bytes(
                f"INSERT INTO {self.staging} ({into}) SELECT {cols} FROM input({{structure:String}})",  # noqa: S608  (staging name and columns are generated, not input)
                "Native",
                [Path(path).read_bytes()],
                {"structure": self.file_structure(columns)},
            )
            return
        self.store.command(
            f"INSERT INTO {self.staging} ({into}) SELECT {cols} FROM file({{path:String}}, 'Native')",  # noqa: S608  (staging name and columns are generated, not input)
            {"path": path},
        )

    # -- publish ---------------------------------------------------------------------------

    def publish(self, source: str, raw_of: RawOf | None = None) -> BatchResult:
        """Move the staged rows into ``events`` (steps 2-3); return what happened."""
        with STORE_LOCK:
            return self._publish(source, raw_of)

    def _publish(self, source: str, raw_of: RawOf | None) -> BatchResult:
        s = self.staging
        seqs = self.dossier_seqs.covering()
        behind_sql = (
            "0"
            if seqs is not None
            else f"(SELECT count() FROM {s} AS b INNER JOIN (SELECT dossier_id, max(seq) AS stored_seq "  # noqa: S608  (staging name is generated, not input)
            f"FROM dossier_state WHERE dossier_id IN (SELECT dossier_id FROM {s}) GROUP BY dossier_id) AS st "
            f"USING dossier_id WHERE b.seq <= st.stored_seq)"
        )
        total, invalid, keys, ids, behind = self.store.query(
            f"SELECT count(), countIf(NOT {valid_sql()}), uniqExact(cityHash64(dossier_id, seq)), "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"uniqExact(cityHash64(event_id)), {behind_sql} FROM {s}",
            settings=self._join,
        ).rows[0]
        result = BatchResult(received=int(total))
        if not total:
            return result
        dossiers = None
        if self.dossier_seqs.tracking():
            summary = self.store.query_arrow(
                f"SELECT sipHash64(dossier_id) AS h, min(seq), max(seq) FROM {s} GROUP BY h ORDER BY h"  # noqa: S608  (staging name is generated, not input)
            )
            hashes = np.asarray(summary.column(0).to_numpy(), dtype=np.uint64)
            if seqs is not None:
                behind = seqs.behind(hashes, summary.column(1).to_numpy())
            dossiers = run_of(hashes, summary.column(2).to_numpy())
        feed = ", ".join(FEED_COLUMNS)
        fast = not invalid and keys == total and ids == total and not behind
        if fast:  # every event new by (dossier_id, seq): an id the index knows is another event's, or a collision
            hashes = hashes_of(self.store, f"SELECT sipHash64(event_id) FROM {s}")  # noqa: S608  (staging name is generated, not input)
            fast = not self.event_ids.hits(hashes).any()
        if fast:
            self.store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM {s}", settings=self._feed)  # noqa: S608  (staging name and contract SQL are generated, not input)
            if self.engine == "Memory" or self.cluster:
                self.store.command(f"INSERT INTO events SELECT * FROM {s}", settings=self._write)  # noqa: S608  (staging name is generated, not input)
            else:
                self._attach()
            self.event_ids.add(hashes)
            result.stored = int(total)
        else:
            self._slow_path(result, source, raw_of)
        if dossiers is not None:
            self.dossier_seqs.stored(dossiers, result.stored)
        self.truncate()
        return result

    def _attach(self) -> None:
        parts = self.store.query(
            "SELECT DISTINCT partition_id FROM system.parts "
            "WHERE database = currentDatabase() AND table = {t:String} AND active",
            {"t": self.staging},
        )
        for (partition_id,) in parts.rows:
            self.store.command(
                f"ALTER TABLE events ATTACH PARTITION ID {{p:String}} FROM {self.staging}", {"p": partition_id}
            )

    def _slow_path(self, result: BatchResult, source: str, raw_of: RawOf | None) -> None:
        s = self.staging
        reason = reason_sql()
        result.fast_path = False
        stored_keys = f"SELECT dossier_id, seq FROM events WHERE dossier_id IN (SELECT dossier_id FROM {s})"  # noqa: S608  (staging name and contract SQL are generated, not input)
        # An event_id the batch already gave another (dossier, seq): a conflict, never stored under two identities.
        reused = (
            f"SELECT _topic, _partition, _offset, event_id, dossier_id, seq, concat('event_id ', event_id, "  # noqa: S608  (staging name is generated, not input)
            f"' is already the id of dossier ', first_key.1, ' seq ', toString(first_key.2), ' in this load') AS why "
            f"FROM (SELECT *, row_number() OVER w AS k, first_value(tuple(dossier_id, seq)) OVER w AS first_key "
            f"FROM {s} WINDOW w AS (PARTITION BY event_id ORDER BY _partition, _offset "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) WHERE k > 1 AND (dossier_id, seq) != first_key"
        )
        fresh = (
            f"SELECT * FROM {s} WHERE {valid_sql()} AND (dossier_id, seq) NOT IN ({stored_keys}) "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"AND (_partition, _offset) NOT IN (SELECT _partition, _offset FROM ({reused})) "
            "AND event_id NOT IN {taken:Array(String)} "
            "ORDER BY _partition, _offset LIMIT 1 BY dossier_id, seq"
        )
        taken = self._taken_ids(fresh)
        params = {"taken": sorted(taken)}
        rejects = self.store.query(
            f"SELECT _topic, _partition, _offset, event_id, dossier_id, seq, r "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"FROM (SELECT *, {reason} AS r FROM {s}) WHERE r != '' ORDER BY _partition, _offset"
        )
        fresh_count = int(self.store.query(f"SELECT count() FROM ({fresh})", params, settings=self._join).scalar() or 0)  # noqa: S608  (staging name and contract SQL are generated, not input)
        feed = ", ".join(FEED_COLUMNS)
        both = {**self._write, **self._join} if self._write and self._join else None
        feed_settings = {**self._feed, **(self._join or {})}
        # Only what is about to be stored feeds the derived tables (never a conflicting event), and
        # before it is stored: a crash in between leaves dossier_state ahead of events, which sends
        # the replay down this exact path again, never the reverse.
        self.store.command(
            f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM ({fresh})",  # noqa: S608  (staging name and contract SQL are generated, not input)
            params,
            settings=feed_settings,
        )
        # The ids of what is stored, read before: afterwards every row of ``fresh`` is stored, so it selects none.
        stored = hashes_of(self.store, f"SELECT sipHash64(event_id) FROM ({fresh})", params)  # noqa: S608  (staging name and contract SQL are generated, not input)
        self.store.command(f"INSERT INTO events {fresh}", params, settings=both)
        self.event_ids.add(stored)
        conflicts = self.store.query(
            f"SELECT s._topic, s._partition, s._offset, s.event_id, s.dossier_id, s.seq, "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"if(s.event_id != e.event_id, "
            f"concat('dossier ', s.dossier_id, ' seq ', toString(s.seq), ' is already stored as event ', e.event_id), "
            f"concat('dossier ', s.dossier_id, ' seq ', toString(s.seq), ' is already stored under the same event_id "
            f"with other content (stored hash ', lower(hex(e.hash)), ', this one ', lower(hex(s.hash)), ')')) "
            f"FROM {s} AS s INNER JOIN (SELECT dossier_id, seq, event_id, hash FROM events "
            f"WHERE dossier_id IN (SELECT dossier_id FROM {s})) AS e ON s.dossier_id = e.dossier_id AND s.seq = e.seq "
            f"WHERE (s.event_id != e.event_id OR s.hash != e.hash) AND (s._partition, s._offset) NOT IN "
            f"(SELECT _partition, _offset FROM {s} WHERE {reason} != '') "
            "ORDER BY s._partition, s._offset LIMIT 1 BY s._partition, s._offset",
            settings=self._join,
        )
        twice = self.store.query(
            f"SELECT * FROM ({reused}) WHERE (_partition, _offset) NOT IN "  # noqa: S608  (staging name and contract SQL are generated, not input)
            f"(SELECT _partition, _offset FROM {s} WHERE {reason} != '') ORDER BY _partition, _offset"
        )
        elsewhere = self._reused_elsewhere(taken)
        result.stored = fresh_count
        found = [("invalid", row) for row in rejects.rows] + [("conflict", row) for row in conflicts.rows]
        found += [("conflict", row) for row in twice.rows]
        said = {(int(row[1]), int(row[2])) for _k, row in found}
        found += [("conflict", row) for row in elsewhere if (int(row[1]), int(row[2])) not in said]
        raws = raw_of([(int(row[1]), int(row[2])) for _k, row in found]) if raw_of and found else [b""] * len(found)
        for (kind, (topic, partition, offset, event_id, dossier_id, seq, error)), raw in zip(found, raws, strict=True):
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

    def _taken_ids(self, fresh: str) -> dict[str, tuple[str, int]]:
        """Ids of events about to be stored as new that a stored event already has: id → (its dossier, seq).

        The index finds candidates by hash; each is confirmed by the id itself (a scan of ``events.event_id``,
        only when there is a candidate: a reused id, or two ids with one 64-bit hash)."""
        candidates = self.store.query_arrow(
            f"SELECT sipHash64(event_id) AS h, event_id FROM ({fresh})",  # noqa: S608  (staging name and contract SQL are generated, not input)
            {"taken": []},
            settings=self._join,
        )
        if candidates.num_rows == 0:
            return {}
        hits = self.event_ids.hits(np.asarray(candidates.column(0).to_numpy(), dtype=np.uint64))
        if not hits.any():
            return {}
        ids = candidates.column(1).to_pylist()
        suspects = sorted({str(ids[i]) for i in np.flatnonzero(hits)})
        rows = self.store.query(
            "SELECT event_id, any(dossier_id), any(seq) FROM events WHERE event_id IN {ids:Array(String)} "
            "GROUP BY event_id",
            {"ids": suspects},
        ).rows
        return {str(i): (str(d), int(q)) for i, d, q in rows}

    def _reused_elsewhere(self, taken: dict[str, tuple[str, int]]) -> list[tuple[Any, ...]]:
        """Dead-letter rows for the staged events whose id a stored event of another identity has."""
        if not taken:
            return []
        rows = self.store.query(
            f"SELECT _topic, _partition, _offset, event_id, dossier_id, seq FROM {self.staging} "  # noqa: S608  (staging name is generated, not input)
            "WHERE event_id IN {ids:Array(String)} ORDER BY _partition, _offset LIMIT 1 BY _partition, _offset",
            {"ids": sorted(taken)},
        ).rows
        out = []
        for topic, partition, offset, event_id, dossier_id, seq in rows:
            other_dossier, other_seq = taken[str(event_id)]
            if (str(dossier_id), int(seq)) == (other_dossier, other_seq):
                continue  # the stored event itself, replayed: a duplicate, not a reuse
            why = f"event_id {event_id} is already the id of dossier {other_dossier} seq {other_seq} in the store"
            out.append((topic, partition, offset, event_id, dossier_id, seq, why))
        return out

    def write_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if dead:
            self.store.insert_rows("dead_letters", DEAD_LETTER_COLUMNS, [d.row() for d in dead])


#: Memory-backed scratch only with this much free: a live batch in flight holds its Avro containers and their
#: Native decoding (~700 bytes an event), two batches at a time; a container's /dev/shm is often 64 MiB.
_SHM_MIN_FREE: Final = 1024 * 1024 * 1024
_SHM: Final = Path("/dev/shm")


def scratch_root() -> str | None:
    """Where batch files for ClickHouse's ``file()`` go: memory-backed when the system has room, else the temp dir."""
    if not (_SHM.is_dir() and os.access(_SHM, os.W_OK)):  # a private directory per batch is created inside
        return None
    stat = os.statvfs(_SHM)
    return str(_SHM) if stat.f_bavail * stat.f_frsize >= _SHM_MIN_FREE else None


def new_scratch_dir() -> Path:
    """A private directory for a batch's container files; the caller removes it (the next start does, after kill -9)."""
    return Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_root()))


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A :func:`new_scratch_dir` removed afterwards."""
    path = new_scratch_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def drop_stale_scratch() -> int:
    """Remove batch-file directories of processes that died (kill -9) before cleaning up."""
    removed = 0
    roots = {_SHM, Path(tempfile.gettempdir())}
    for entry in (e for root in roots if root.is_dir() for e in root.glob(f"{_SCRATCH_PREFIX}*")):
        pid = entry.name.removeprefix(_SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def stored_columns(names: Sequence[str]) -> tuple[str, str]:
    """How contract fields are written into ``events`` (or a staging table made ``AS events``): the column list
    of the ``INSERT`` and the ``SELECT`` list over a source with these fields.

    ``prev_hash`` and ``hash`` are stored together as ``chain = [prev_hash, hash]`` (migration 0014: each
    ``prev_hash`` then compresses against the previous event's ``hash``), and read back through ALIAS columns of
    their own names; every other field is its own column.
    """
    into = [f"`{n}`" for n in names if n not in _CHAIN]
    select = list(into)
    if any(n in _CHAIN for n in names):
        if not all(n in names for n in _CHAIN):
            raise ValueError("prev_hash and hash are stored together: give both or neither")
        into.append("`chain`")
        select.append("[`prev_hash`, `hash`]")
    return ", ".join(into), ", ".join(select)


def containers_select(
    topic: str, cols: str, parts: Sequence[tuple[int, int, str]], structure: str
) -> tuple[str, dict[str, Any]]:
    """``SELECT`` the rows of Kafka runs' Avro containers with their positions (``_topic``, ``_partition``,
    ``_offset``), and its parameters: row *i* of the container of ``(partition, first offset, file)`` was
    the message at ``first offset + i``. ``cols``: the select list of the contract fields
    (:func:`stored_columns`). The files must share a directory (one ``file()`` glob)."""
    directory = {str(Path(path).parent) for _p, _f, path in parts}
    if len(directory) != 1:
        raise ValueError("the containers of one batch must share a directory")
    names = [Path(path).name for _p, _f, path in parts]
    select = (
        f"SELECT {cols}, {{topic:String}} AS _topic, "  # noqa: S608  (columns are generated, not input)
        "transform(_file, {names:Array(String)}, {partitions:Array(Int32)}, toInt32(-1)) AS _partition, "
        "transform(_file, {names:Array(String)}, {firsts:Array(Int64)}, toInt64(-1)) + _row_number AS _offset "
        "FROM file({glob:String}, 'Avro', {structure:String})"
    )
    params = {
        "topic": topic,
        "names": names,
        "partitions": [p for p, _f, _d in parts],
        "firsts": [f for _p, f, _d in parts],
        "glob": str(Path(directory.pop()) / ("{" + ",".join(names) + "}")),
        "structure": structure,
    }
    return select, params


def drop_stale_staging(store: Store, keep: Mapping[str, object] | None = None, idle_s: int | None = None) -> int:
    """Drop staging tables left by crashed writers.

    Embedded, this process is the only writer, so every other one is stale. On a server, loaders
    renew their table's lease (its metadata time) every :data:`STAGING_LEASE_S` while they run;
    ``idle_s``: only tables not renewed for that long are dropped.
    """
    tables = "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '_staging_')"
    if idle_s is None:
        result = store.query(tables)
    else:
        idle = " AND metadata_modification_time < now() - toIntervalSecond({idle:UInt32})"
        result = store.query(tables + idle, {"idle": idle_s})
    dropped = 0
    for (name,) in result.rows:
        if _STAGING_RE.match(str(name)) and (keep is None or name not in keep):
            store.command(f"DROP TABLE IF EXISTS {name}")
            dropped += 1
    return dropped
