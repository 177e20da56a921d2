"""Integrity verification of the whole store, in ClickHouse SQL.

``dossier inspect verify`` proves the history was not altered: for every
dossier, seq must run 1..n without gaps or repeats, no two different events
may share a (dossier, seq), each ``prev_hash`` must be the previous event's
``hash``, each ``hash`` must equal SHA-256 of the canonical encoding
recomputed from the stored columns (:func:`schemas.hashchain.canonical_sql`),
and each status change must be legal under the lifecycle table
(:data:`schemas.transitions.TRANSITIONS`). All of it runs as set-based SQL
over the raw log, so millions of events verify in seconds; only the findings
come back to Python.

Every value that varies (the dossier filter, the legal transitions) is a
bound parameter; the SQL text is built only from the project's own field
list.

Recomputing every hash is bounded by the canonical encoding and SHA-256 of
every stored byte (about 25 CPU-seconds on 10 million events), so there is
an incremental mode too: ``since`` (a previous run's ``watermark``, the
latest ``_ingested_at`` it saw) recomputes the hashes of the events stored
after it only and re-checks the chains, seq and transitions of the dossiers
those events belong to. It proves that what arrived since is sound and
linked to what was there; it cannot see an in-place change of an event
verified before (its ``_ingested_at`` does not move), which only a full run
detects, so a full run stays the reference and should be scheduled too.

Memory stays bounded whatever the size of the store. The checks of one dossier (seq, chain, transitions,
repeats) read only that dossier's events, so they run in slices of whole dossiers: ranges of ``dossier_id``,
the sort key, cut at about :data:`SLICE_ROWS` events from the primary index (``mergeTreeIndex``; a sample of
``dossier_id`` for another engine), each one query reading only its granules. The window and the grouping of a
query then hold one slice, not the store (about 0.5 KB an event). Whether an ``event_id`` is reused is a question
across the whole store: its candidates are grouped by a 64-bit hash of the id, in slices of the hash space
(``h % n``) of about :data:`ID_SLICE_ROWS` events each, and only the candidates are compared by the id itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from inspection import ledger
from schemas.events import EventType
from schemas.hashchain import canonical_sql, micros
from schemas.transitions import TRANSITIONS

#: ``query(sql, parameters) -> rows`` : how verification reaches the store.
QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

#: Events one query of the per-dossier checks reads at most, about: its window and grouping hold them
#: (about 0.5 KB an event), so this bounds the memory of a full run.
SLICE_ROWS: Final = 1_000_000
#: Events whose id hashes one query groups at most, about (about 32 bytes an event in the hash table).
ID_SLICE_ROWS: Final = 16_000_000
#: ``dossier_id`` values sampled to cut slices where the primary index cannot be read.
_SAMPLE: Final = 4096

#: A slice of dossiers: ``dossier_id`` from ``lo`` (included) to ``hi`` (excluded); None is unbounded.
Slice = tuple[str | None, str | None]

KINDS: Final = (
    "seq-gap",
    "seq-repeat",
    "conflicting-events",
    "event-id-reused",
    "prev-hash-break",
    "hash-break",
    "illegal-transition",
)


def legal_transitions() -> list[str]:
    """``"<before>|<event type>|<after>"`` for every legal step; ``0`` stands for a dossier's first event."""
    return sorted(
        f"{int(before) if before is not None else 0}|{event_type.value}|{int(after)}"
        for (before, event_type), afters in TRANSITIONS.items()
        for after in afters
    )


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    dossier_id: str
    seq: int
    detail: str


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    events: int
    dossiers: int
    findings: tuple[Finding, ...]
    first_divergence: dict[str, int]  # dossier -> first seq with a problem
    watermark: datetime | None = None  # the latest _ingested_at seen: ``since`` of the next incremental run
    entry: ledger.Entry | None = None  # what a full run can put on record (None for a partial one)
    # verify --use-ledger checked only the dossiers the ledger does not vouch for: events and dossiers count those
    ledger_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for finding in self.findings:
            out[finding.kind] += 1
        return out


_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _table(name: str) -> str:
    """Table names come from code, never from input; refuse anything but a plain identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a table identifier: {name!r}")
    return name


#: Events outside the parts the integrity ledger covers, and those of the dossiers it holds a break of, read in
#: two disjoint parts: the parts not covered (pruned by name) and the dossiers named in the rest (pruned by the
#: key); one condition with OR would read every row's ``dossier_id``. The dossiers go in ``PREWHERE``: with the
#: condition on ``_part`` beside them in ``WHERE``, ClickHouse 26 reads every row and recomputes every hash (131 s
#: against 6 s at the city's year).
_NOT_COVERED: Final = f"NOT {ledger.COVERED_PART}"
_KNOWN_HASHES: Final = f"PREWHERE {ledger.KNOWN_BREAK} WHERE {ledger.COVERED_PART} AND"
#: Events stored after the watermark of an incremental run.
_NEW: Final = "_ingested_at > fromUnixTimestamp64Micro({since_us:Int64}, 'UTC')"
#: Events ``verify --use-ledger`` checks the dossiers of: in a part no run checked, or of a dossier with a finding.
_UNCHECKED: Final = (f"NOT {ledger.CHECKED_PART}", f"{ledger.CHECKED_PART} AND {ledger.FLAGGED}")


def _union(table: str, columns: str, conditions: Sequence[str]) -> str:
    """``SELECT columns FROM table WHERE c`` for each of ``conditions``, in one UNION ALL."""
    return " UNION ALL ".join(f"SELECT {columns} FROM {_table(table)} WHERE {c}" for c in conditions)  # noqa: S608


def _where(
    dossier: str | None, since_in: str | None = None, part: Slice = (None, None), unchecked_in: str | None = None
) -> str:
    """The dossier filter; ``since_in``: only the dossiers of that table with an event stored after the watermark;
    ``part``: the slice of dossiers (bound as ``slice_lo`` / ``slice_hi`` where set); ``unchecked_in``: only the
    dossiers of that table the integrity ledger does not vouch for (:data:`_UNCHECKED`)."""
    conditions = []
    if dossier is not None:
        conditions.append("dossier_id = {dossier:String}")
    conditions += _slice_terms(part)
    if since_in is not None:
        conditions.append(f"dossier_id IN (SELECT dossier_id FROM {_table(since_in)} WHERE {_NEW})")  # noqa: S608
    if unchecked_in is not None:
        # The slice's bounds inside too: the subquery then reads only the slice's granules of those parts.
        inner = " AND ".join([f"NOT {ledger.CHECKED_PART}", *_slice_terms(part)])
        unchecked = f"SELECT dossier_id FROM {_table(unchecked_in)} WHERE {inner}"  # noqa: S608
        conditions.append(f"(dossier_id IN ({unchecked}) OR {ledger.FLAGGED})")
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def _slice_terms(part: Slice) -> list[str]:
    """The conditions on ``dossier_id`` of the bounds ``part`` sets (none for an unbounded slice)."""
    bounds = (("dossier_id >= {slice_lo:String}", part[0]), ("dossier_id < {slice_hi:String}", part[1]))
    return [term for term, bound in bounds if bound is not None]


def slice_condition(part: Slice) -> str:
    """`` AND dossier_id …`` for the bounds ``part`` sets ('' for an unbounded slice), bound by
    :func:`slice_params`: appended to a condition on ``dossier_id``."""
    return "".join(f" AND {term}" for term in _slice_terms(part))


def slice_params(part: Slice) -> dict[str, str]:
    """The bound values of ``part``'s conditions in :func:`_where`."""
    return {k: v for k, v in (("slice_lo", part[0]), ("slice_hi", part[1])) if v is not None}


def findings_sql(
    table: str = "events",
    dossier: str | None = None,
    since: bool = False,
    part: Slice = (None, None),
    *,
    unchecked: bool = False,
) -> str:
    """One query returning (kind, dossier_id, seq, detail) for every integrity problem.

    ``since``: only the dossiers with an event stored after the watermark (their whole history).
    ``part``: only that slice of dossiers (:func:`slice_params`).
    ``unchecked``: only the dossiers the integrity ledger does not vouch for (their whole history), bound by
    :meth:`inspection.ledger.Coverage.check_params`.
    """
    override, table = EventType.ADMIN_OVERRIDE.value, _table(table)
    where = _where(dossier, table if since else None, part, table if unchecked else None)
    # Identifiers and the field list come from code; every value is a bound parameter.
    legal = (
        "NOT has({legal:Array(String)}, concat(toString(before), '|', event_type, '|', toString(status))) "
        f"OR (event_type = '{override}' AND status != before AND NOT ("
        "override_field = 'status' AND override_old = toString(before) AND override_new = toString(status)))"
    )
    # One pass of the window and one of the aggregate: each problem of an event becomes a row through
    # arrayJoin (a CTE referenced by several UNION branches would be computed once per branch).
    return f"""
SELECT * FROM (
SELECT tupleElement(problem, 1), dossier_id, seq, tupleElement(problem, 2)
FROM (
    SELECT dossier_id, seq, arrayJoin(arrayConcat(
        if(gap, [('seq-gap', concat('expected seq ', toString(prev_seq + 1), ', found ', toString(seq)))], []),
        if(broken, [('prev-hash-break', concat('prev_hash ', lower(hex(prev_hash)), ' is not the hash of seq ',
                     toString(prev_seq), ' (', lower(hex(expected_prev)), ')'))], []),
        if(illegal, [('illegal-transition', concat('illegal transition from ', toString(before), ' by ', event_type,
                      ' to ', toString(status)))], []))) AS problem
    FROM (
        SELECT *, seq > prev_seq + 1 AS gap, seq = prev_seq + 1 AND prev_hash != expected_prev AS broken,
               seq = prev_seq + 1 AND ({legal}) AS illegal
        FROM (
            SELECT dossier_id, seq, event_id, toString(event_type) AS event_type, status, hash, prev_hash,
                   override_field, override_old, override_new,
                   lagInFrame(seq, 1, 0) OVER w AS prev_seq,
                   lagInFrame(hash, 1, toFixedString(unhex(repeat('00', 32)), 32)) OVER w AS expected_prev,
                   lagInFrame(status, 1, 0) OVER w AS before
            FROM {table} {where}
            WINDOW w AS (PARTITION BY dossier_id ORDER BY seq, event_id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
    )
    WHERE gap OR broken OR illegal
)
UNION ALL
SELECT if(same, 'seq-repeat', 'conflicting-events'), dossier_id, seq,
       if(same, concat(toString(n), ' copies of the same event ', one_id),
          concat(toString(ids), ' different events share this seq (', toString(hashes), ' distinct hashes)'))
FROM (
    SELECT dossier_id, seq, uniqExact(event_id) AS ids, uniqExact(hash) AS hashes, count() AS n,
           any(event_id) AS one_id, ids = 1 AND hashes = 1 AS same
    FROM {table} {where}
    GROUP BY dossier_id, seq HAVING n > 1
)
)
ORDER BY 2, 3, 1
"""  # noqa: S608


def reused_candidates_sql(
    table: str = "events",
    dossier: str | None = None,
    since: bool = False,
    sliced: bool = False,
    *,
    unchecked: bool = False,
) -> str:
    """The 64-bit hashes (``cityHash64``) of event ids that more than one stored event has: candidates of reuse.

    A grouping of one UInt64 per event, not of the strings. With ``dossier`` or ``since``, only the hashes of
    those events' ids, counted over the whole log. ``sliced``: only the hashes ``h`` with
    ``h % {id_slices:UInt64} = {id_slice:UInt64}`` (each slice groups its share of the ids). ``unchecked``: only
    the ids of the events no run checked and of the dossiers with a finding on record (:data:`_UNCHECKED`): two
    events in parts a run checked were both stored at the latest such run, which found their reuse, so their
    dossiers have a finding on record.
    """
    table = _table(table)
    scope = _where(dossier, table if since else None)
    if unchecked:
        conditions = [f"h IN ({_union(table, 'cityHash64(event_id)', _UNCHECKED)})"]
    else:
        conditions = [f"h IN (SELECT cityHash64(event_id) FROM {table} {scope})"] if scope else []  # noqa: S608
    if sliced:
        conditions.append("h % {id_slices:UInt64} = {id_slice:UInt64}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT h FROM (SELECT cityHash64(event_id) AS h FROM {table}) {where} GROUP BY h HAVING count() > 1"  # noqa: S608


def reused_id_sql(table: str = "events") -> str:
    """(kind, dossier_id, seq, detail) of every event whose event_id another stored event (other dossier or seq) has.

    An event_id is an event's identity outside the store; two events under one id are two claims to it. The
    candidates (``{candidates:Array(UInt64)}``, from :func:`reused_candidates_sql`) are compared by the id itself:
    two different ids that share a hash are no reuse, nor is one event stored twice under the same (dossier, seq).
    """
    return f"""
SELECT 'event-id-reused', tupleElement(k, 1), tupleElement(k, 2),
       concat('event_id ', event_id, ' is the id of ', toString(length(keys)), ' different stored events (',
              arrayStringConcat(arrayMap(x -> concat(tupleElement(x, 1), ' seq ', toString(tupleElement(x, 2))),
                                         arraySort(keys)), ', '), ')')
FROM (
    SELECT event_id, groupUniqArray(tuple(dossier_id, seq)) AS keys
    FROM {_table(table)} WHERE cityHash64(event_id) IN {{candidates:Array(UInt64)}}
    GROUP BY event_id HAVING length(keys) > 1
)
ARRAY JOIN keys AS k
"""  # noqa: S608


def confirmed_reuse(query: QueryFn, candidates: Sequence[int], table: str = "events") -> list[Sequence[Any]]:
    """The event-id-reused findings among the ids whose hash is in ``candidates`` (:func:`reused_id_sql`)."""
    if not candidates:
        return []
    return list(query(reused_id_sql(table), {"candidates": sorted({int(h) for h in candidates})}))


def _reused(
    query: QueryFn,
    table: str,
    dossier: str | None,
    since: bool,
    rows: int,
    params: dict[str, Any],
    unchecked: bool = False,
) -> list[Sequence[Any]]:
    """Every event-id-reused finding: candidates hash slice by hash slice, then confirmed by the ids."""
    slices = max(1, math.ceil(rows / ID_SLICE_ROWS))
    candidates: list[int] = []
    for n in range(slices):
        sql = reused_candidates_sql(table, dossier, since, sliced=slices > 1, unchecked=unchecked)
        candidates += [int(r[0]) for r in query(sql, {**params, "id_slices": slices, "id_slice": n})]
    return confirmed_reuse(query, candidates, table)


def hash_sql(table: str = "events", dossier: str | None = None, since: bool = False, use_ledger: bool = False) -> str:
    """(kind, dossier_id, seq, detail) of every event whose stored hash is not the recomputed one.

    A plain filtering scan, separate from the window over each dossier: recomputing
    the canonical encoding is the expensive part, and here it runs once per event,
    in parallel, comparing raw bytes; hex is built only for the findings.
    ``use_ledger``: not in the parts the integrity ledger covers, except the dossiers it
    holds a break of (:mod:`inspection.ledger`; ``integrity_covered``, ``integrity_known``).
    """
    recomputed = f"SHA256({canonical_sql()})"
    only = (["dossier_id = {dossier:String}"] if dossier is not None else []) + ([_NEW] if since else [])
    columns = f"""'hash-break', dossier_id, seq, concat(toString(event_type),
       ' content does not match its hash (stored ', lower(hex(hash)), ', recomputed ', lower(hex({recomputed})), ')')"""
    # The filters first: AND evaluates its next argument only for the rows the ones before it kept.
    check = f"{recomputed} != hash"
    if not use_ledger:
        return _union(table, columns, [" AND ".join([*only, check])])
    new = _union(table, columns, [" AND ".join([*only, _NOT_COVERED, check])])
    known = f"SELECT {columns} FROM {_table(table)} {_KNOWN_HASHES} {' AND '.join([*only, check])}"  # noqa: S608
    return f"{new} UNION ALL {known}"


def totals_sql(
    table: str = "events",
    dossier: str | None = None,
    since: bool = False,
    part: Slice = (None, None),
    *,
    unchecked: bool = False,
) -> str:
    """Events and dossiers checked: with ``since``, the events stored after it and the dossiers they touch; with
    ``unchecked``, the dossiers the ledger does not vouch for and their events."""
    where = _where(dossier, part=part, unchecked_in=table if unchecked else None)
    if since:
        where = f"{where} AND {_NEW}" if where else f"WHERE {_NEW}"
    return f"SELECT count(), uniqExact(dossier_id) FROM {_table(table)} {where}"  # noqa: S608


def scope_sql(
    table: str = "events", dossier: str | None = None, since: bool = False, *, unchecked: bool = False
) -> str:
    """The events the per-dossier checks read (with ``since`` or ``unchecked``, the whole histories of the
    dossiers touched)."""
    where = _where(dossier, table if since else None, unchecked_in=table if unchecked else None)
    return f"SELECT count() FROM {_table(table)} {where}"  # noqa: S608


def dossier_slices(query: QueryFn, table: str, rows: int, slice_rows: int = SLICE_ROWS) -> list[Slice]:
    """Ranges of ``dossier_id`` of about ``slice_rows`` of ``rows`` events each, in order, covering every value.

    Cut on the primary index's marks (a ``dossier_id`` and the rows of its granule each) where ``table`` is a
    MergeTree sorted by ``dossier_id``, else on a sample of the stored ``dossier_id`` values. The cuts only
    balance the slices; any cuts give the same findings, since a dossier is never split.
    """
    wanted = math.ceil(rows / slice_rows)
    if wanted <= 1:
        return [(None, None)]
    table = _table(table)
    keyed = query(
        "SELECT engine LIKE '%MergeTree' AND startsWith(primary_key, 'dossier_id') FROM system.tables "
        "WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    )
    if keyed and keyed[0][0]:
        sql = f"SELECT dossier_id, rows_in_granule FROM mergeTreeIndex(currentDatabase(), {table}) ORDER BY 1"  # noqa: S608
    else:
        sql = f"SELECT arrayJoin(groupArraySample({_SAMPLE}, 1)(dossier_id)) AS d, 1 FROM {table} ORDER BY 1"  # noqa: S608
    marks = [(str(key), int(n)) for key, n in query(sql, {})]
    total = sum(n for _key, n in marks)
    cuts: list[str | None] = []
    seen = 0
    for key, n in marks:
        if len(cuts) < wanted - 1 and seen >= total * (len(cuts) + 1) / wanted and (not cuts or key > str(cuts[-1])):
            cuts.append(key)
        seen += n
    bounds = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def _latest_ingested(query: QueryFn, table: str) -> datetime | None:
    """The latest ``_ingested_at`` (None for a table without the loader's columns, or empty)."""
    has = query(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "AND name = '_ingested_at'",
        {"t": _table(table)},
    )
    if not has[0][0]:
        return None
    latest = query(f"SELECT maxOrNull(_ingested_at) FROM {_table(table)}", {})[0][0]  # noqa: S608 (checked name)
    if not isinstance(latest, datetime):
        return None
    return latest if latest.tzinfo else latest.replace(tzinfo=UTC)


def _per_dossier(
    query: QueryFn,
    table: str,
    dossier: str | None,
    since: bool,
    scope: int,
    params: dict[str, Any],
    unchecked: bool = False,
) -> tuple[list[Sequence[Any]], int, int]:
    """The findings of the per-dossier checks, and the events and dossiers checked, slice by slice of dossiers."""
    rows: list[Sequence[Any]] = []
    events = dossiers = 0
    for part in dossier_slices(query, table, scope, SLICE_ROWS):
        sliced = {**params, **slice_params(part)}
        rows += query(findings_sql(table, dossier, since, part, unchecked=unchecked), sliced)
        counted = query(totals_sql(table, dossier, since, part, unchecked=unchecked), sliced)[0]
        events, dossiers = events + int(counted[0]), dossiers + int(counted[1])
    return rows, events, dossiers


def verify(
    query: QueryFn,
    *,
    table: str = "events",
    dossier: str | None = None,
    since: datetime | None = None,
    coverage: ledger.Coverage | None = None,
) -> VerifyReport:
    """Run verification through ``query`` and gather the report.

    ``since``: incremental mode (see the module's docstring); the report's ``watermark`` is what to pass
    next time. The watermark is read first, so an event stored while this runs is checked again next time.
    ``coverage``: what the integrity ledger covers (:func:`inspection.ledger.coverage`); hashes are then
    recomputed only outside it, the per-dossier checks and the reuse of ids run only for the dossiers it does
    not vouch for (``Coverage.checks_unused_because`` says why every dossier is checked when they are), and the
    entry for the ledger holds the parts recomputed this time.
    The per-dossier checks and the totals run slice by slice of dossiers, the reuse of ids slice by slice of
    their hashes (see the module's docstring): the same findings in bounded memory.
    """
    params: dict[str, Any] = {"legal": legal_transitions()}
    if dossier is not None:
        params["dossier"] = dossier
    if since is not None:
        params["since_us"] = micros(since.astimezone(UTC))  # microseconds: a bound DateTime64 would lose them
    incremental = since is not None
    latest = _latest_ingested(query, table)
    table_uuid = ledger.recordable(query, table) if dossier is None and not incremental else None
    before = ledger.active_parts(query, table) if table_uuid else []
    use_ledger = coverage is not None and coverage.unused_because is None
    covered = set(coverage.covered) if coverage is not None and use_ledger else set()
    unchecked = use_ledger and coverage is not None and coverage.checks_unused_because is None
    if use_ledger and coverage is not None:
        params.update(coverage.params())
    if unchecked and coverage is not None:
        params.update(coverage.check_params())
    scope = int(query(scope_sql(table, dossier, incremental, unchecked=unchecked), params)[0][0])
    rows, events, dossiers = _per_dossier(query, table, dossier, incremental, scope, params, unchecked)
    # The ids compared are those of the events of the dossiers just checked, or fewer: their count sizes the slices.
    rows += _reused(query, table, dossier, incremental, scope, params, unchecked)
    hash_rows = query(hash_sql(table, dossier, incremental, use_ledger), params)
    rows += hash_rows
    found = sorted((str(d), int(s), str(k), str(t)) for k, d, s, t in rows)
    findings = tuple(Finding(k, d, s, t) for d, s, k, t in found)
    first: dict[str, int] = {}
    for finding in findings:
        first[finding.dossier_id] = min(first.get(finding.dossier_id, finding.seq), finding.seq)
    watermark = latest if latest is not None and (since is None or latest > since) else since
    entry = None
    if table_uuid is not None and ledger.recordable(query, table) == table_uuid:
        kinds = ledger.records_checks(query)
        entry = ledger.Entry(
            table_uuid,
            tuple(p for p in ledger.read_parts(before, ledger.active_parts(query, table)) if p.name not in covered),
            tuple(sorted({(str(d), int(s)) for _, d, s, _ in hash_rows})),
            int(query(f"SELECT count() FROM {_table(table)}", {})[0][0]) if unchecked else events,  # noqa: S608
            checks=("scoped" if unchecked else "all") if kinds else None,
            findings=tuple((f.dossier_id, f.seq, f.kind) for f in findings if f.kind != "hash-break") if kinds else (),
        )
    return VerifyReport(events, dossiers, findings, first, watermark, entry, ledger_checked=unchecked)
