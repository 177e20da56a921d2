"""Writing the integrity ledger: what a verify run puts on record, and the owner's check of a reader's claim.

The ledger (migration 0008, read by :mod:`inspection.ledger`) tells the audit
which parts of ``events`` it may leave alone: a row in ``integrity_parts``
spares every event of that part a hash recomputation. Whoever writes it can
therefore hide an altered event from ``verify --use-ledger`` and the audit's
INTEGRITY-HASH. Three kinds of process write it:

* the process that opened the store itself (embedded, or a ClickHouse server):
  it writes the rows of its own run (:func:`write`). It could alter ``events``
  as easily, so its rows are worth what its access is; on a server, the user's
  grants decide;
* a reader that goes through the owner's loopback endpoint
  (:mod:`dossier_runtime.storeserver`). Readers run as the same OS user as the
  owner and read the same data directory, so no key the owner keeps there
  would be one they do not hold: a signed ledger would prove nothing. The
  owner instead takes no rows from them. A reader sends a :class:`Claim` (the
  table's UUID and the parts its run read, nothing else), and the owner
  (:func:`record_claim`) keeps only the parts active in ``events`` under that
  name with the same rows and checksum, recomputes the hash of every event in
  them itself (SHA-256 of :func:`schemas.hashchain.canonical_sql` against
  ``hash``, restricted to ``_part IN (…)``), and writes the breaks *it* found,
  its own counts, and the parts active before and after its recomputation.
  A claim can at most make the owner recompute parts and write down the truth
  about them. Such a run puts hash breaks on record, not the findings of the
  per-dossier checks (``Entry.checks`` None): it spares later runs hashes,
  never dossiers (:func:`inspection.ledger.checked_parts`).

The owner's check costs one more hash recomputation of the parts claimed, in
the owner's process (chDB holds the GIL meanwhile, so a loader there pauses):
a full run through the endpoint recomputes every hash twice, a
``--use-ledger`` run only the parts it recomputed. Measured on 364,321
simulated events (14 parts): the owner's query takes 0.13 s and 0.21 CPU-s,
as much as verify's own hash pass; ``dossier inspect verify`` through the
endpoint went from 1.31 s to 1.41 s (median of 21 runs, Python's start-up
included), ``--use-ledger`` right after a full run did not change.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from dossier_runtime.errors import StoreError
from schemas.hashchain import canonical_sql

#: ``query(sql, parameters) -> rows``.
QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]
#: ``append(table, jsonl) -> rows written`` (:meth:`dossier_runtime.store.Store.append`).
AppendFn = Callable[[str, bytes], int]

ZERO_UUID: Final = uuid.UUID(int=0)

# UUIDs leave the server as text: ClickHouse before 26.x cannot convert UUID into Arrow (UNKNOWN_TYPE).
TABLE_SQL: Final = """
SELECT engine, toString(uuid) AS uuid FROM system.tables WHERE database = currentDatabase() AND name = {table:String}
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
#: The events of the parts named whose stored hash is not the recomputed one: the owner's own check.
BROKEN_IN_PARTS_SQL: Final = f"""
SELECT dossier_id, seq FROM events WHERE _part IN {{parts:Array(String)}} AND SHA256({canonical_sql()}) != hash
"""  # noqa: S608 (the expression is the project's own field list)
EVENTS_SQL: Final = "SELECT count() FROM events"
CHECKS_COLUMN_SQL: Final = """
SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'integrity_runs' AND name = 'checks'
"""
#: ``Entry.checks`` of a run that put every finding on record: it checked every dossier, or those the ledger
#: did not cover (``verify --use-ledger``, :mod:`inspection.ledger`).
CHECKS: Final = ("all", "scoped")


class LedgerClaimError(StoreError):
    """The owner refused a reader's claim: nothing went on record."""


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
class Claim:
    """What a reader may ask the owner to record: its run read these parts of the table with this UUID.

    No breaks, counts or run ids: the owner finds those itself. A part is (name, rows, checksum).
    """

    table_uuid: uuid.UUID
    parts: tuple[tuple[str, int, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "table_uuid": str(self.table_uuid),
            "parts": [{"name": n, "rows": r, "checksum": c} for n, r, c in self.parts],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Claim:
        """Parse a request body strictly; ValueError (or TypeError) with what is wrong."""
        extra = set(body) - {"table_uuid", "parts"}
        if extra:
            raise ValueError(
                f"the owner takes no {', '.join(sorted(extra))} from a reader: it records only what it finds itself "
                "(send table_uuid and parts)"
            )
        parts = body["parts"]
        if not isinstance(parts, list):
            raise TypeError("parts must be a list of {name, rows, checksum}")
        claimed = []
        for item in parts:
            if not isinstance(item, dict) or set(item) != {"name", "rows", "checksum"}:
                raise ValueError(f"a claimed part is {{name, rows, checksum}}, not {item!r}")
            name, rows, checksum = item["name"], item["rows"], item["checksum"]
            if not isinstance(name, str) or not isinstance(rows, int) or not isinstance(checksum, str):
                raise TypeError(f"a claimed part is {{name: str, rows: int, checksum: str}}, not {item!r}")
            claimed.append((name, rows, checksum))
        return cls(uuid.UUID(str(body["table_uuid"])), tuple(claimed))


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What went on record: the run's id and the owner's own figures."""

    run_id: str
    parts: int
    breaks: int
    events: int
    left_out: int = 0  # claimed parts no longer active (merged away since the reader's run): not recorded

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Recorded:
        return cls(str(body["run_id"]), int(body["parts"]), int(body["breaks"]), int(body["events"]),
                   int(body.get("left_out", 0)))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Entry:
    """What one verification run puts in the ledger."""

    table_uuid: uuid.UUID
    parts: tuple[Part, ...]  # the parts it read (active before and after it ran, hence read)
    breaks: tuple[tuple[str, int], ...]  # (dossier_id, seq) of every event whose hash did not match
    events: int
    run_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    finished_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    # What else went on record (migration 0016): None, the hash breaks only, in the layout of 0008 (a claim, or a
    # store not migrated yet); "all" or "scoped", every finding too (``findings``) after a run that checked every
    # dossier, or the dossiers the ledger did not cover (:data:`CHECKS`).
    checks: str | None = None
    findings: tuple[tuple[str, int, str], ...] = ()  # (dossier_id, seq, kind) of every finding but the hash breaks

    def claim(self) -> Claim:
        """What a reader sends the owner instead of these rows (:func:`record_claim`)."""
        return Claim(self.table_uuid, tuple((p.name, p.rows, p.checksum) for p in self.parts))

    def recorded(self, left_out: int = 0) -> Recorded:
        return Recorded(str(self.run_id), len(self.parts), len(self.breaks), self.events, left_out)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows per ledger table, JSON-ready."""
        run, table = str(self.run_id), str(self.table_uuid)
        stamp = self.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if self.checks is None:
            breaks: list[dict[str, Any]] = [
                {"run_id": run, "table_uuid": table, "dossier_id": d, "seq": s} for d, s in self.breaks
            ]
            checks: dict[str, str] = {}
        else:
            found = [(d, s, "hash-break") for d, s in self.breaks] + list(self.findings)
            breaks = [{"run_id": run, "table_uuid": table, "dossier_id": d, "seq": s, "kind": k} for d, s, k in found]
            checks = {"checks": self.checks}
        return {
            "integrity_runs": [
                {
                    "run_id": run,
                    "finished_at": stamp,
                    "table_uuid": table,
                    "events": self.events,
                    "parts": len(self.parts),
                    "breaks": len(self.breaks),
                    **checks,
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
            "integrity_breaks": breaks,
        }


def table_identity(query: QueryFn, table: str = "events") -> tuple[str, uuid.UUID] | None:
    """(engine, uuid) of ``table`` in the current database, None when it does not exist."""
    rows = query(TABLE_SQL, {"table": table})
    if not rows:
        return None
    engine, table_uuid = rows[0]
    return str(engine), uuid.UUID(str(table_uuid))


def records_checks(query: QueryFn) -> bool:
    """Whether the ledger takes every finding of a run (migration 0016), not only its hash breaks."""
    return bool(query(CHECKS_COLUMN_SQL, {})[0][0])


def active_parts(query: QueryFn, table: str = "events") -> list[Part]:
    return [Part.from_row(row) for row in query(PARTS_SQL, {"table": table})]


def unusable(query: QueryFn, table: str = "events") -> tuple[str | None, uuid.UUID | None]:
    """Why the ledger cannot serve ``table`` now (None when it can), else the table's UUID it is keyed by."""
    identity = table_identity(query, table)
    if identity is None or not identity[0].endswith("MergeTree"):
        return f"{table} is not a MergeTree table here (a cluster?)", None
    if identity[1] == ZERO_UUID:
        return f"{table} has no table UUID to key the ledger by", None
    if table_identity(query, "integrity_parts") is None:
        return "the store predates the ledger (run `dossier consume migrate`)", None
    mutations, patches = query(PENDING_SQL, {"table": table})[0]
    if int(mutations) or int(patches):
        return f"{table} has {int(mutations)} unfinished mutation(s), {int(patches)} patch part(s)", None
    return None, identity[1]


def recordable(query: QueryFn, table: str = "events") -> uuid.UUID | None:
    """The UUID to record a full run of ``table`` under, or None when a run of it cannot go on record."""
    return unusable(query, table)[1]


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


def write(append: AppendFn, entry: Entry) -> None:
    """Write one run to the ledger through ``append(table, jsonl)``.

    Breaks first, parts next, the run last: a part is never on record without the breaks found in it,
    whatever step fails.
    """
    rows = entry.rows()
    for table in ("integrity_breaks", "integrity_parts", "integrity_runs"):
        if rows[table]:
            append(table, jsonl(rows[table]))


def record_claim(query: QueryFn, append: AppendFn, claim: Claim) -> Recorded:
    """The owner's side of a reader's request: check ``claim`` against the store, recompute, record.

    Refused (:class:`LedgerClaimError`, nothing written) when the ledger cannot serve ``events`` now, the
    claim names another table, or a claimed part is active with other rows or another checksum (the same
    name always holds the same content, so that is no race). A claimed part that is not active is left out:
    a merge since the reader's run removes parts legitimately, and nothing is recorded about it.
    """
    reason, table_uuid = unusable(query)
    if reason is not None:
        raise LedgerClaimError(f"the owner records no run now: {reason}")
    if claim.table_uuid != table_uuid:
        raise LedgerClaimError(f"the claim is about table {claim.table_uuid}; events here is table {table_uuid}")
    active = {p.name: p for p in active_parts(query)}
    for name, rows, checksum in claim.parts:
        part = active.get(name)
        if part is not None and (part.rows, part.checksum) != (rows, checksum):
            raise LedgerClaimError(
                f"part {name} of events holds {part.rows} rows with checksum {part.checksum}, "
                f"not the {rows} rows with checksum {checksum} claimed"
            )
    claimed = dict.fromkeys(name for name, _, _ in claim.parts)
    before = [active[name] for name in claimed if name in active]
    broken = query(BROKEN_IN_PARTS_SQL, {"parts": [p.name for p in before]}) if before else []
    events = int(query(EVENTS_SQL, {})[0][0])
    parts = read_parts(before, active_parts(query))
    if recordable(query) != table_uuid:
        raise LedgerClaimError("events changed while the owner recomputed its hashes (a mutation?); verify again")
    entry = Entry(table_uuid, parts, tuple(sorted({(str(d), int(s)) for d, s in broken})), events)
    write(append, entry)
    return entry.recorded(left_out=len(claimed) - len(parts))
