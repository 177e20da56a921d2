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
reads every byte again.

Who may write it: the ledger is as trustworthy as what writes it. A process
that opens the store itself writes its own run (on a server, as far as the
user's grants let it: a user that may insert into the ledger may also alter
``events``, unless the grants say otherwise). A reader that goes through the
owner's loopback endpoint sends only a claim (the table's UUID and the parts
it read); the owner keeps the parts active under those names with the same
rows and checksum, recomputes their hashes itself and records the breaks it
found (:mod:`dossier_runtime.ledgerrecord`, which also says why a key would
not help). :func:`record_and_tell` takes ``Store.record_run``, which picks
the way.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from dossier_runtime.errors import StoreError
from dossier_runtime.ledgerrecord import (
    PARTS_SQL,
    PENDING_SQL,
    TABLE_SQL,
    Claim,
    Entry,
    Part,
    QueryFn,
    Recorded,
    active_parts,
    jsonl,
    read_parts,
    recordable,
    table_identity,
    unusable,
)
from dossier_runtime.ledgerrecord import write as record

__all__ = [
    "BREAKS_SQL",
    "COVERED_PART",
    "KNOWN_BREAK",
    "LAST_RUN_SQL",
    "PARTS_SQL",
    "PENDING_SQL",
    "RECORDED_SQL",
    "TABLE_SQL",
    "Claim",
    "Coverage",
    "Entry",
    "Part",
    "QueryFn",
    "Recorded",
    "active_parts",
    "coverage",
    "covered_parts",
    "jsonl",
    "read_parts",
    "record",
    "record_and_tell",
    "recordable",
    "table_identity",
]

#: Conditions on the coverage an audit or a verify binds (:meth:`Coverage.params`).
COVERED_PART: Final = "has({integrity_covered:Array(String)}, _part)"
KNOWN_BREAK: Final = "has({integrity_known:Array(String)}, dossier_id)"

RECORDED_SQL: Final = """
SELECT part, partition_id, min_block, max_block, data_version, rows, checksum
FROM integrity_parts WHERE table_uuid = {table_uuid:UUID}
"""
BREAKS_SQL: Final = "SELECT DISTINCT dossier_id FROM integrity_breaks WHERE table_uuid = {table_uuid:UUID}"
LAST_RUN_SQL: Final = """
SELECT toString(run_id) AS run_id, finished_at FROM integrity_runs WHERE table_uuid = {table_uuid:UUID}
ORDER BY finished_at DESC LIMIT 1
"""


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


def coverage(query: QueryFn, *, full: bool = False, table: str = "events") -> Coverage:
    """What the ledger covers of ``table`` now (see the module docstring for when it is not used)."""
    if full:
        return Coverage(unused_because="full_recompute=1")
    reason, table_uuid = unusable(query, table)
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


def record_and_tell(record_run: Callable[[Entry], Recorded], entry: Entry | None) -> str:
    """Put a full run on record through ``record_run`` (``Store.record_run``), and say in words what happened.

    A refusal is reported, not raised. Through an owner's endpoint the figures are the owner's: it recomputed
    the hashes of the parts claimed, and leaves out those merged away meanwhile.
    """
    if entry is None:
        return "not recorded: only a full run of a MergeTree log with the ledger's tables goes on record"
    try:
        done = record_run(entry)
    except StoreError as exc:
        return f"not recorded: {exc}"
    left_out = f"; {done.left_out} part(s) merged away meanwhile left out" if done.left_out else ""
    return f"recorded run {done.run_id}: {done.parts} parts, {done.breaks} hash break(s){left_out}"
