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
  block range, none older than its mutation, start at its first block, end at
  its last one, and hold together exactly as many rows as it does. A row
  inserted since has a higher block number (the range would end later); a row
  removed takes a mutation or a dropped part (the recorded rows would outnumber
  the part's), so neither can hide in the sum. A mutation rewrites the parts
  whose data version is below its own and gives them its version; a merge
  takes the highest mutation of the parts it joins. So a recorded part whose
  data version is at least the merged part's mutation was not rewritten since
  (a new part merged with parts a mutation rewrote before the run counts).

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
    records_checks,
    table_identity,
    unusable,
)
from dossier_runtime.ledgerrecord import write as record

__all__ = [
    "BREAKS_SQL",
    "CHECKED_PART",
    "COVERED_PART",
    "FLAGGED",
    "KNOWN_BREAK",
    "LAST_RUN_SQL",
    "NOT_ASKED",
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
    "checked_parts",
    "coverage",
    "covered_parts",
    "jsonl",
    "read_parts",
    "record",
    "record_and_tell",
    "recordable",
    "records_checks",
    "removed_rows",
    "table_identity",
]

#: Conditions on the coverage an audit or a verify binds (:meth:`Coverage.params`).
#: ``IN`` with an array makes a set of it: a lookup a row, where ``has`` scans the array, and the primary key and
#: the part names can prune what is read.
COVERED_PART: Final = "(_part IN {integrity_covered:Array(String)})"
KNOWN_BREAK: Final = "(dossier_id IN {integrity_known:Array(String)})"
#: Conditions of ``verify --use-ledger``'s per-dossier checks (:meth:`Coverage.check_params`): the parts whose
#: dossiers a run checked, the dossiers with a finding on record.
CHECKED_PART: Final = "(_part IN {integrity_checked:Array(String)})"
FLAGGED: Final = "(dossier_id IN {integrity_flagged:Array(String)})"

RECORDED_SQL: Final = """
SELECT part, partition_id, min_block, max_block, data_version, rows, checksum
FROM integrity_parts WHERE table_uuid = {table_uuid:UUID}
"""
BREAKS_SQL: Final = "SELECT DISTINCT dossier_id FROM integrity_breaks WHERE table_uuid = {table_uuid:UUID}"
#: After migration 0016 the ledger holds findings of every kind; the hashes re-examine the hash breaks.
HASH_BREAKS_SQL: Final = f"{BREAKS_SQL} AND kind = 'hash-break'"
#: The runs that put every finding on record, oldest first (migration 0016).
CHECKED_RUNS_SQL: Final = """
SELECT toString(run_id) AS run_id, checks, finished_at FROM integrity_runs
WHERE table_uuid = {table_uuid:UUID} AND checks IN ('all', 'scoped')
ORDER BY finished_at, run_id
"""
_OF_RUNS: Final = " AND has({runs:Array(String)}, toString(run_id))"
#: The parts and the dossiers with a finding of the runs named (``runs``).
RUN_PARTS_SQL: Final = RECORDED_SQL.rstrip() + _OF_RUNS
RUN_FINDINGS_SQL: Final = BREAKS_SQL + _OF_RUNS
LAST_RUN_SQL: Final = """
SELECT toString(run_id) AS run_id, finished_at FROM integrity_runs WHERE table_uuid = {table_uuid:UUID}
ORDER BY finished_at DESC LIMIT 1
"""


#: ``Coverage.checks_unused_because`` of a coverage asked for the hashes alone (the audit's).
NOT_ASKED: Final = "not asked"


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
    # The per-dossier checks (seq, links, transitions, id reuse) of verify --use-ledger (:func:`checked_parts`):
    checked: tuple[str, ...] = ()  # active parts whose every dossier a run since the baseline checked
    flagged: tuple[str, ...] = ()  # dossiers with a finding of any kind at such a run since the baseline
    checked_rows: int = 0
    checks_run: str | None = None  # "<run id> at <time>" of the baseline, the latest run that checked every dossier
    checks_unused_because: str | None = NOT_ASKED  # why every dossier is checked again, when it is

    def params(self) -> dict[str, list[str]]:
        """The bound parameters of INTEGRITY-HASH."""
        return {"integrity_covered": list(self.covered), "integrity_known": list(self.known_breaks)}

    def check_params(self) -> dict[str, list[str]]:
        """The bound parameters of the per-dossier checks when the ledger spares some (:data:`CHECKED_PART`)."""
        return {"integrity_checked": list(self.checked), "integrity_flagged": list(self.flagged)}

    def describe(self) -> dict[str, Any]:
        """For a report's provenance: how much was recomputed and on what the rest rests."""
        if self.unused_because:
            return {"hashes": "all recomputed", "ledger": f"not used: {self.unused_because}"}
        described = {
            "hashes": f"recomputed for {self.rows - self.covered_rows:,} of {self.rows:,} events "
            f"({self.parts - len(self.covered)} of {self.parts} parts)",
            "ledger": f"verify run {self.last_run}; {len(self.known_breaks)} dossier(s) with a recorded break "
            "re-examined",
        }
        if self.checks_unused_because == NOT_ASKED:
            return described  # the audit's: it checks no dossier's seq or transitions
        if self.checks_unused_because is not None:
            described["dossiers"] = f"all checked again: {self.checks_unused_because}"
        else:
            described["dossiers"] = (
                f"checked again: those with an event in the {self.parts - len(self.checked)} of {self.parts} parts "
                f"({self.rows - self.checked_rows:,} events) no run checked, and the {len(self.flagged)} with a "
                f"finding on record since verify run {self.checks_run}; the others rest on the runs since that one"
            )
        return described


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


def _largest(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The block ranges inside no other of ``spans``, in order: the parts a merge joined last."""
    spans = set(spans)
    return sorted(s for s in spans if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans))


def _merged_from_recorded(part: Part, recorded: Sequence[Part]) -> bool:
    inside = [
        r
        for r in recorded
        if part.min_block <= r.min_block and r.max_block <= part.max_block and r.data_version >= part.mutation
    ]
    ranges: dict[tuple[int, int], set[int]] = defaultdict(set)
    for r in inside:
        ranges[(r.min_block, r.max_block)].add(r.rows)
    if any(len(rows) > 1 for rows in ranges.values()):
        return False  # one block range, one data version, two row counts: not the same content
    largest = _largest(ranges)
    if not largest or largest[0][0] != part.min_block or largest[-1][1] != part.max_block:
        return False
    if any(a[1] >= b[0] for a, b in itertools.pairwise(largest)):
        return False  # overlapping ranges do not come from one merge tree; do not guess
    return sum(next(iter(ranges[span])) for span in largest) == part.rows


def coverage(query: QueryFn, *, full: bool = False, table: str = "events", dossiers: bool = True) -> Coverage:
    """What the ledger covers of ``table`` now (see the module docstring for when it is not used).

    ``dossiers``: also which dossiers the per-dossier checks may leave alone (:func:`checked_parts`), which only
    ``verify`` reads; the audit's INTEGRITY-HASH asks for the hashes alone.
    """
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
    kinds = records_checks(query)
    coverage = Coverage(
        covered=tuple(sorted(covered)),
        known_breaks=tuple(sorted(str(r[0]) for r in query(HASH_BREAKS_SQL if kinds else BREAKS_SQL, keyed))),
        parts=len(parts),
        covered_rows=sum(p.rows for p in parts if p.name in covered),
        rows=sum(p.rows for p in parts),
        last_run=f"{last[0][0]} at {_iso(last[0][1])}",
    )
    if not dossiers:
        return coverage
    if not kinds:
        return dataclasses.replace(
            coverage, checks_unused_because="the ledger predates per-dossier records (run `dossier consume migrate`)"
        )
    return checked_parts(query, coverage, parts, keyed)


def checked_parts(query: QueryFn, coverage: Coverage, parts: Sequence[Part], keyed: dict[str, str]) -> Coverage:
    """``coverage`` with what the per-dossier checks of ``verify --use-ledger`` may leave alone.

    A run that put every finding on record ("all", "scoped") saw every dossier's findings. The baseline is the
    latest "all" run; the chain is it and the runs after it that recorded every finding. A dossier needs no check
    when all its events lie in parts those runs read (:func:`covered_parts` of their parts) and it had no finding
    at any of them (the union, not the latest run's: runs may overlap): its events are then those a run of the
    chain judged whole, none added (a new row has a higher block number, so it lies in a part no run read) and
    none removed, which this checks:

    * every part the chain read lies inside an active part of the same partition, rewritten by no mutation newer
      than the part's data: a dropped or detached part lies in none, and a mutation (which can delete rows) gives
      the parts it rewrites its own version, above every block it applies to (a merge takes the highest mutation
      of the parts it joins, so a new part merged with one a mutation rewrote before keeps counting);
    * no active part holds fewer rows than the largest parts of the chain inside it (a merge keeps every row).

    When either fails, or there is no such run, every dossier is checked again (``checks_unused_because``).
    """
    runs = [(str(r[0]), str(r[1]), r[2]) for r in query(CHECKED_RUNS_SQL, keyed)]
    baseline = max((i for i, run in enumerate(runs) if run[1] == "all"), default=None)
    if baseline is None:
        return dataclasses.replace(
            coverage,
            checks_unused_because="no full verify has put every finding on record yet (run `dossier inspect verify`)",
        )
    chain = runs[baseline:]
    recorded = [Part.from_row(r) for r in query(RUN_PARTS_SQL, {**keyed, "runs": [run[0] for run in chain]})]
    removed = removed_rows(parts, recorded)
    if removed is not None:
        return dataclasses.replace(coverage, checks_unused_because=removed)
    checked = covered_parts(parts, recorded)
    flagged = sorted(str(r[0]) for r in query(RUN_FINDINGS_SQL, {**keyed, "runs": [run[0] for run in chain]}))
    base = chain[0]
    return dataclasses.replace(
        coverage,
        checked=tuple(sorted(checked)),
        flagged=tuple(flagged),
        checked_rows=sum(p.rows for p in parts if p.name in checked),
        checks_run=f"{base[0]} at {_iso(base[2])}",
        checks_unused_because=None,
    )


def removed_rows(active: Sequence[Part], recorded: Sequence[Part]) -> str | None:
    """Why rows a recorded run read may be gone from ``active`` (None when none can be): see :func:`checked_parts`."""
    by_partition: dict[str, list[Part]] = defaultdict(list)
    for part in active:
        by_partition[part.partition_id].append(part)
    inside: dict[str, list[Part]] = defaultdict(list)
    for r in recorded:
        holder = next(
            (a for a in by_partition[r.partition_id] if a.min_block <= r.min_block and r.max_block <= a.max_block),
            None,
        )
        if holder is None:
            return f"part {r.name}, read by a recorded run, is gone (dropped or detached)"
        if holder.mutation > r.data_version:  # a merge takes the highest mutation of its parts, never a newer one
            return f"part {r.name}, read by a recorded run, was rewritten by a mutation (now {holder.name})"
        inside[holder.name].append(r)
    for a in active:
        spans = {(r.min_block, r.max_block): r.rows for r in inside[a.name]}
        if sum(spans[s] for s in _largest(spans)) > a.rows:
            return f"part {a.name} holds fewer rows than the recorded parts merged into it"
    return None


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
