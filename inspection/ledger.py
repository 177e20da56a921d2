"""The integrity ledger: recompute a hash once, not at every audit.

Recomputing every event's SHA-256 from its stored fields costs about 2.4
CPU-microseconds per event, most of it building the canonical encoding (23.9
CPU-seconds on 10 million events, ``bench/bench_audit.py``). A full ``dossier inspect verify``
records, in migration 0008's tables, which *parts* of ``events`` it read and
which events it found broken. The audit's INTEGRITY-HASH then recomputes the
hashes of the parts the ledger does not cover, and re-examines the dossiers
with a recorded break; the link check (each ``prev_hash`` against the
previous ``hash``) stays a scan of the whole log, being cheap.

Why a part is a sound unit: a MergeTree part never changes once written.
Every insert gets a new block number, higher than any before; a merge writes a
new part over a contiguous block range holding exactly the rows of the parts
it replaces; a mutation (``ALTER … UPDATE/DELETE``, a lightweight ``DELETE``)
rewrites every part under a new data version. So an active part is covered
when either

* the ledger holds the same part (name, rows and checksum of its files), or
* it is a merge of recorded parts only: the largest recorded parts inside its
  block range, all at its data version, start at its first block, end at its
  last one, and hold together exactly as many rows as it does. A row inserted
  since has a higher block number (the range would end later); a row removed
  takes a mutation (the data version would differ) or a dropped part (the
  recorded rows would outnumber the part's), so neither can hide in the sum.

The ledger is not used (everything is recomputed) when ``events`` has an
unfinished mutation or a patch part (both change what a read returns without
renaming the part), on a cluster (each shard has its own parts), when the
table was recreated (the ledger is keyed by the table's UUID), or with
``--param full_recompute=1``.

What it cannot see: a part's files edited on disk under the same name by
someone with access to the data directory. The checksum of a recorded part is
compared, but a merge of edited parts is not; only a full run (``verify``)
reads every byte again. The ledger is as trustworthy as the accounts that can
write it: a ClickHouse user that may insert into it may also alter ``events``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from dossier_runtime.errors import StoreError

#: ``query(sql, parameters) -> rows``.
QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]


_ZERO_UUID: Final = uuid.UUID(int=0)
#: Conditions on the coverage an audit or a verify binds (:meth:`Coverage.params`).
COVERED_PART: Final = "has({integrity_covered:Array(String)}, _part)"
KNOWN_BREAK: Final = "has({integrity_known:Array(String)}, dossier_id)"

TABLE_SQL: Final = """
SELECT engine, uuid FROM system.tables WHERE database = currentDatabase() AND name = {table:String}
"""
PARTS_SQL: Final = """
SELECT name, partition_id, min_block_number, max_block_number, data_version, rows, hash_of_all_files
FROM system.parts
WHERE database = currentDatabase() AND table = {table:String} AND active
ORDER BY partition_id, min_block_number
"""
PENDING_SQL: Final = """
SELECT (SELECT count() FROM system.mutations
        WHERE database = currentDatabase() AND table = {table:String} AND NOT is_done),
       (SELECT count() FROM system.parts
        WHERE database = currentDatabase() AND table = {table:String} AND active AND startsWith(name, 'patch-'))
"""
RECORDED_SQL: Final = """
SELECT part, partition_id, min_block, max_block, data_version, rows, checksum
FROM integrity_parts WHERE table_uuid = {table_uuid:UUID}
"""
BREAKS_SQL: Final = "SELECT DISTINCT dossier_id FROM integrity_breaks WHERE table_uuid = {table_uuid:UUID}"
LAST_RUN_SQL: Final = """
SELECT run_id, finished_at FROM integrity_runs WHERE table_uuid = {table_uuid:UUID} ORDER BY finished_at DESC LIMIT 1
"""


@dataclasses.dataclass(frozen=True)
class Part:
    """One MergeTree part of ``events`` as ``system.parts`` describes it."""

    name: str
    partition_id: str
    min_block: int
    max_block: int
    data_version: int
    rows: int
    checksum: str

    @property
    def mutation(self) -> int:
        """The mutation a part was rewritten by, 0 for none (``data_version`` is ``min_block`` then)."""
        return 0 if self.data_version == self.min_block else self.data_version

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Part:
        name, partition_id, lo, hi, version, rows, checksum = row
        return cls(str(name), str(partition_id), int(lo), int(hi), int(version), int(rows), str(checksum))


@dataclasses.dataclass(frozen=True)
class Coverage:
    """What an audit may take from the ledger: parts not to recompute, dossiers to re-examine."""

    covered: tuple[str, ...] = ()
    known_breaks: tuple[str, ...] = ()
    parts: int = 0  # active parts of events
    covered_rows: int = 0
    rows: int = 0
    last_run: str | None = None  # "<run id> at <time>" of the latest recorded run
    unused_because: str | None = None  # why the ledger was not used, when it was not

    def params(self) -> dict[str, list[str]]:
        """The bound parameters of INTEGRITY-HASH."""
        return {"integrity_covered": list(self.covered), "integrity_known": list(self.known_breaks)}

    def describe(self) -> dict[str, Any]:
        """For a report's provenance: how much was recomputed and on what the rest rests."""
        if self.unused_because:
            return {"hashes": "all recomputed", "ledger": f"not used: {self.unused_because}"}
        return {
            "hashes": f"recomputed for {self.rows - self.covered_rows:,} of {self.rows:,} events "
            f"({self.parts - len(self.covered)} of {self.parts} parts)",
            "ledger": f"verify run {self.last_run}; {len(self.known_breaks)} dossier(s) with a recorded break "
            "re-examined",
        }


def table_identity(query: QueryFn, table: str = "events") -> tuple[str, uuid.UUID] | None:
    """(engine, uuid) of ``table`` in the current database, None when it does not exist."""
    rows = query(TABLE_SQL, {"table": table})
    if not rows:
        return None
    engine, table_uuid = rows[0]
    return str(engine), uuid.UUID(str(table_uuid))


def active_parts(query: QueryFn, table: str = "events") -> list[Part]:
    return [Part.from_row(row) for row in query(PARTS_SQL, {"table": table})]


def covered_parts(active: Iterable[Part], recorded: Iterable[Part]) -> set[str]:
    """The names of the active parts whose every row a recorded run recomputed (the module docstring's rule).

    A part on record under its own name is covered only with the same rows and checksum: the same
    name with other files is a part edited in place, whatever its block range says.
    """
    by_name: dict[str, set[tuple[int, str]]] = {}
    by_partition: dict[str, list[Part]] = defaultdict(list)
    for p in recorded:
        by_name.setdefault(p.name, set()).add((p.rows, p.checksum))
        by_partition[p.partition_id].append(p)
    return {
        part.name
        for part in active
        if (part.rows, part.checksum) in by_name.get(part.name, ())
        or (part.name not in by_name and _merged_from_recorded(part, by_partition[part.partition_id]))
    }


def _merged_from_recorded(part: Part, recorded: Sequence[Part]) -> bool:
    inside = [
        r
        for r in recorded
        if part.min_block <= r.min_block and r.max_block <= part.max_block and r.mutation == part.mutation
    ]
    ranges: dict[tuple[int, int], set[int]] = defaultdict(set)
    for r in inside:
        ranges[(r.min_block, r.max_block)].add(r.rows)
    if any(len(rows) > 1 for rows in ranges.values()):
        return False  # one block range, one data version, two row counts: not the same content
    largest = sorted(
        span for span in ranges if not any(o != span and o[0] <= span[0] and span[1] <= o[1] for o in ranges)
    )
    if not largest or largest[0][0] != part.min_block or largest[-1][1] != part.max_block:
        return False
    if any(a[1] >= b[0] for a, b in itertools.pairwise(largest)):
        return False  # overlapping ranges do not come from one merge tree; do not guess
    return sum(next(iter(ranges[span])) for span in largest) == part.rows


def _unusable(query: QueryFn, table: str) -> tuple[str | None, uuid.UUID | None]:
    """Why the ledger cannot serve ``table`` now (None when it can), else the table's UUID it is keyed by."""
    identity = table_identity(query, table)
    if identity is None or not identity[0].endswith("MergeTree"):
        return f"{table} is not a MergeTree table here (a cluster?)", None
    if identity[1] == _ZERO_UUID:
        return f"{table} has no table UUID to key the ledger by", None
    if table_identity(query, "integrity_parts") is None:
        return "the store predates the ledger (run `dossier consume migrate`)", None
    mutations, patches = query(PENDING_SQL, {"table": table})[0]
    if int(mutations) or int(patches):
        return f"{table} has {int(mutations)} unfinished mutation(s), {int(patches)} patch part(s)", None
    return None, identity[1]


def coverage(query: QueryFn, *, full: bool = False, table: str = "events") -> Coverage:
    """What the ledger covers of ``table`` now (see the module docstring for when it is not used)."""
    if full:
        return Coverage(unused_because="full_recompute=1")
    reason, table_uuid = _unusable(query, table)
    if reason is not None:
        return Coverage(unused_because=reason)
    keyed = {"table_uuid": str(table_uuid)}
    last = query(LAST_RUN_SQL, keyed)
    if not last:
        return Coverage(unused_because="no verify run recorded yet (run `dossier inspect verify`)")
    parts = active_parts(query, table)
    covered = covered_parts(parts, [Part.from_row(r) for r in query(RECORDED_SQL, keyed)])
    return Coverage(
        covered=tuple(sorted(covered)),
        known_breaks=tuple(sorted(str(r[0]) for r in query(BREAKS_SQL, keyed))),
        parts=len(parts),
        covered_rows=sum(p.rows for p in parts if p.name in covered),
        rows=sum(p.rows for p in parts),
        last_run=f"{last[0][0]} at {_iso(last[0][1])}",
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


@dataclasses.dataclass(frozen=True)
class Entry:
    """What one full verification run puts in the ledger."""

    table_uuid: uuid.UUID
    parts: tuple[Part, ...]  # the parts it read (active before and after it ran, hence read)
    breaks: tuple[tuple[str, int], ...]  # (dossier_id, seq) of every event whose hash did not match
    events: int
    run_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    finished_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows per ledger table, JSON-ready."""
        run, table = str(self.run_id), str(self.table_uuid)
        stamp = self.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return {
            "integrity_runs": [
                {
                    "run_id": run,
                    "finished_at": stamp,
                    "table_uuid": table,
                    "events": self.events,
                    "parts": len(self.parts),
                    "breaks": len(self.breaks),
                }
            ],
            "integrity_parts": [
                {
                    "run_id": run,
                    "table_uuid": table,
                    "partition_id": p.partition_id,
                    "part": p.name,
                    "min_block": p.min_block,
                    "max_block": p.max_block,
                    "data_version": p.data_version,
                    "rows": p.rows,
                    "checksum": p.checksum,
                }
                for p in self.parts
            ],
            "integrity_breaks": [
                {"run_id": run, "table_uuid": table, "dossier_id": d, "seq": s} for d, s in self.breaks
            ],
        }


def read_parts(before: Sequence[Part], after: Sequence[Part]) -> tuple[Part, ...]:
    """The parts a query that ran between two snapshots certainly read: active in both.

    A part never becomes active again once replaced, so one active before and
    after a query was active when the query took its snapshot of the table.
    """
    later = {(p.name, p.rows, p.checksum) for p in after}
    return tuple(p for p in before if (p.name, p.rows, p.checksum) in later)


def jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """JSONEachRow text of ledger rows."""
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


def record(append: Callable[[str, bytes], int], entry: Entry) -> None:
    """Write one run to the ledger through ``append(table, jsonl)`` (:meth:`Store.append`).

    Breaks first, parts next, the run last: a part is never on record without the breaks found in it,
    whatever step fails.
    """
    rows = entry.rows()
    for table in ("integrity_breaks", "integrity_parts", "integrity_runs"):
        if rows[table]:
            append(table, jsonl(rows[table]))


def record_and_tell(append: Callable[[str, bytes], int], entry: Entry | None) -> str:
    """:func:`record` a full run, and say in words what happened (a refusal is reported, not raised)."""
    if entry is None:
        return "not recorded: only a full run of a MergeTree log with the ledger's tables goes on record"
    try:
        record(append, entry)
    except StoreError as exc:
        return f"not recorded: {exc}"
    return f"recorded run {entry.run_id}: {len(entry.parts)} parts, {len(entry.breaks)} hash break(s)"


def recordable(query: QueryFn, table: str = "events") -> uuid.UUID | None:
    """The UUID to record a full run of ``table`` under, or None when a run of it cannot go on record."""
    return _unusable(query, table)[1]
