"""What every rule's SQL is built from: a dossier's history as arrays, and the rulebook's terms.

A rule is one SQL query over the whole store. Its usual shape:

1. *candidates*: a cheap scan of one or two columns naming the dossiers that
   can possibly breach the rule (those with an ApologyIssued, a late end, …);
   the primary key ``(dossier_id, seq)`` then reads only their granules;
2. *history*: one row per candidate dossier, its events (only the types the
   rule reads) as parallel arrays ``e_<column>`` in ``(seq, event_id)`` order;
3. the rulebook's predicate over those arrays, with the rulebook's terms
   (R, D, T, E, pauses) as array indexes, 1-based, 0 when absent.

Every rule selects the same columns (:data:`FINDING_COLUMNS`). Values that vary
(rule parameters, filters, ``as_of``, the working calendar) are bound
placeholders; the SQL text comes from this package alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from inspection.dossier_facts import NONE_SEQ, merged_facts
from inspection.worktime_sql import DAY_US, TZ_OFFSET_US, day_length_us, pos_sql
from schemas.rulebook import Rule, get_rule
from schemas.workingtime import default_calendar

#: What every rule's SQL returns, in this order. ``actor_seqs``: the events whose actor answers
#: for the finding (empty when no one person does); ``holder``: that person is the event's
#: ``to_actor`` (who held the step), not its ``actor_id``. Names are attached afterwards.
FINDING_COLUMNS: Final = ("dossier_id", "evidence_seqs", "explanation", "actor_seqs", "holder")
NOBODY: Final = "CAST([], 'Array(Int64)')"

WD_US: Final = day_length_us()
MINUTE_US: Final = 60_000_000
#: "None" in an Int64 array of times or seqs (no event has it).
NO_TIME: Final = "toInt64(-9223372036854775807)"
HANDOVERS: Final = ("DossierTransferred", "StepHandedOver", "StepReturned", "InterAgencyTransferred")
CLOSERS: Final = (
    *HANDOVERS,
    "ResultApproved",
    "ResultIssued",
    "SupplementRequested",
    "FinancialObligationRequested",
    "WithdrawalRequested",
    "ProcessingStopped",
    "ReceptionRefused",
)
DOC_REQUESTS: Final = ("SupplementRequested", "ReceptionGuidanceIssued")


@dataclasses.dataclass(frozen=True)
class Scope:
    """The selection a rule runs over: a condition on ``dossier_id`` with bound placeholders only.

    ``ledger``: the integrity ledger's coverage is bound (``integrity_covered``, ``integrity_known``;
    :mod:`inspection.ledger`), so INTEGRITY-HASH may leave the hashes of covered parts alone.
    """

    dossiers: str = "1"
    ledger: bool = False


@dataclasses.dataclass(frozen=True)
class RuleSQL:
    """A rulebook rule and the function building its query."""

    rule: Rule
    build: Callable[[Scope], str]

    @property
    def id(self) -> str:
        return self.rule.id


def rule_sql(rule_id: str) -> Callable[[Callable[[Scope], str]], RuleSQL]:
    """Decorator: ``@rule_sql("R5") def r5(scope): return "SELECT …"``."""

    def wrap(build: Callable[[Scope], str]) -> RuleSQL:
        return RuleSQL(get_rule(rule_id), build)

    return wrap


def param(name: str) -> str:
    """The bound placeholder of a rule parameter (every parameter travels as an Int64)."""
    return f"{{p_{name}:Int64}}"


#: as_of travels as microseconds: a bound DateTime64 value loses its microseconds on the way.
AS_OF: Final = "fromUnixTimestamp64Micro({as_of_us:Int64}, 'UTC')"


def sql_list(values: Sequence[str]) -> str:
    """A literal list of the project's own names (event types), never of input."""
    return ", ".join(f"'{v}'" for v in values)


def pos(expr: str) -> str:
    """Working position (µs) of a DateTime64 expression."""
    return pos_sql(expr)


def local_day(expr: str) -> str:
    """Days since 1970-01-01 of the local (Asia/Ho_Chi_Minh) date of ``expr``."""
    return f"intDiv(toUnixTimestamp64Micro({expr}) + {TZ_OFFSET_US}, {DAY_US})"


def local_tod(expr: str) -> str:
    """Local time of day of ``expr`` in microseconds."""
    return f"((toUnixTimestamp64Micro({expr}) + {TZ_OFFSET_US}) % {DAY_US})"


def day_flag(day: str) -> str:
    """1 when the local day number ``day`` is a working day."""
    return f"arrayElement({{wt_flags:Array(UInt8)}}, {day} - {{wt_first_day:Int64}} + 1)"


def next_working_day(day: str) -> str:
    """The day number of the first working day after day number ``day``."""
    index = f"{day} - {{wt_first_day:Int64}} + 1"
    return (
        "toInt64(arrayElement({wt_working:Array(Int32)}, "
        f"arrayElement({{wt_cum:Array(UInt32)}}, {index}) + arrayElement({{wt_flags:Array(UInt8)}}, {index}) + 1))"
    )


def at_local(day: str, tod_us: str) -> str:
    """The UTC instant of local day number ``day`` at ``tod_us`` microseconds after midnight."""
    return f"fromUnixTimestamp64Micro(toInt64({day}) * {DAY_US} + ({tod_us}) - {TZ_OFFSET_US}, 'UTC')"


def periods_us() -> list[tuple[int, int]]:
    out = []
    for a, b in default_calendar().hours.periods:
        out.append(((a.hour * 60 + a.minute) * MINUTE_US, (b.hour * 60 + b.minute) * MINUTE_US))
    return out


def working_instant(expr: str) -> str:
    """True when ``expr`` is a working instant (a working day, inside a half-open working period)."""
    tod = local_tod(expr)
    inside = " OR ".join(f"({tod} >= {a} AND {tod} < {b})" for a, b in periods_us())
    return f"({day_flag(local_day(expr))} = 1 AND ({inside}))"


def history(
    columns: Sequence[str],
    *,
    scope: Scope,
    where: str = "1",
    candidates: str | None = None,
    names: Sequence[str] | None = None,
) -> str:
    """One row per dossier: ``dossier_id``, ``e_seq`` and ``e_<column>`` arrays in seq order.

    ``where`` keeps only the events the rule reads; ``candidates`` (a condition
    on ``dossier_id``, usually ``dossier_id IN (SELECT …)``) the dossiers it
    can breach, so the primary key skips the rest. ``names`` names the arrays
    when ``columns`` holds expressions.
    """
    fields = ", ".join(("seq", *columns))
    arrays = ", ".join(f"arrayMap(x -> tupleElement(x, {i + 2}), h) AS e_{c}" for i, c in enumerate(names or columns))
    keep = f"({scope.dossiers}) AND ({where})"
    if candidates:
        keep += f" AND ({candidates})"
    # Column names and conditions come from this package; values are placeholders.
    return (
        f"SELECT dossier_id, arrayMap(x -> tupleElement(x, 1), h) AS e_seq, {arrays} "  # noqa: S608
        f"FROM (SELECT dossier_id, arraySort(x -> tupleElement(x, 1), groupArray(tuple({fields}))) AS h "
        f"FROM events WHERE {keep} "
        "GROUP BY dossier_id)"
    )


def after(values: str, flags: str, none: str) -> str:
    """Per index i, ``values`` at the first index after i whose flag is set (``none`` when there is none).

    Elementwise (arrayReverseFill, then a shift), so it costs O(n) per dossier: a lambda that
    indexes another array (``e_us[c[i]]``) copies that array for every element.
    """
    return (
        f"arrayPushBack(arrayPopFront(arrayMap((v, f) -> if(f, v, {none}), "
        f"arrayReverseFill((v, f) -> f, {values}, {flags}), arrayReverseFill((f, g) -> g, {flags}, {flags}))), {none})"
    )


def having(where: str, *, scope: Scope, extra: str = "") -> str:
    """``dossier_id IN (SELECT dossier_id FROM events WHERE …)``: dossiers with an event matching ``where``."""
    tail = f" GROUP BY dossier_id HAVING {extra}" if extra else ""
    return f"dossier_id IN (SELECT dossier_id FROM events WHERE ({scope.dossiers}) AND ({where}){tail})"  # noqa: S608


# -- the rulebook's terms over the history arrays (aliases reusable in the same SELECT) -------------

#: Index of R, the first DossierReceived.
R_INDEX: Final = "indexOf(e_event_type, 'DossierReceived')"
#: Index of D (the first event with status 9) and T (status 10).
D_INDEX: Final = "indexOf(e_status, 9)"
T_INDEX: Final = "indexOf(e_status, 10)"


def end_index(r: str = "r", d: str = "d", t: str = "t") -> str:
    """Index of E: D, else T, else the first event after R with status 3, 7 or 8; 0 without R."""
    return (
        f"if({r} = 0, 0, if({d} > 0, {d}, if({t} > 0, {t}, "
        f"arrayFirstIndex((s, q) -> q > e_seq[{r}] AND s IN (3, 7, 8), e_status, e_seq))))"
    )


def pause_wt() -> str:
    """The paused working time (µs) over closed pauses: needs ``e_event_type, e_status, e_clock_stopped, e_pos``.

    A pause opens at a SupplementRequested in status 5 (a FinancialObligationRequested
    with clock_stopped in status 6) and closes at the first later event of another
    status; an opener while already paused restarts the pause (schemas.lifecycle).
    """
    opener = (
        "arrayMap((ty, st, ck) -> (ty = 'SupplementRequested' AND st = 5) OR "
        "(ty = 'FinancialObligationRequested' AND ifNull(ck, false) AND st = 6), "
        "e_event_type, e_status, e_clock_stopped)"
    )
    close = "arrayFirstIndex((st, j) -> j > i AND st != e_status[i], e_status, arrayEnumerate(e_status))"
    reopen = "arrayFirstIndex((o, j) -> j > i AND o, ops, arrayEnumerate(ops))"
    counted = (
        f"arraySum(i -> if(ops[i] AND {close} > 0 AND ({reopen} = 0 OR {reopen} >= {close}), "
        f"e_pos[{close}] - e_pos[i], 0), arrayEnumerate(ops))"
    )
    return f"if(has(({opener}) AS ops, true), {counted}, 0)"


def positions(column: str = "e_occurred_at") -> str:
    """The working positions of a timestamp array."""
    return f"arrayMap(x -> {pos('x')}, {column})"


def evidence(array: str) -> str:
    """Sorted distinct seqs."""
    return f"arraySort(arrayDistinct({array}))"


def local_text(expr: str) -> str:
    """A timestamp as local 'YYYY-MM-DD HH:MM' for explanations."""
    return f"formatDateTime({expr}, '%Y-%m-%d %H:%i', 'Asia/Ho_Chi_Minh')"


def wd_text(us: str) -> str:
    """Working microseconds as 'N.NN WD' for explanations."""
    return f"concat(toString(round(({us}) / {WD_US}, 2)), ' WD')"


def minutes_text(us: str) -> str:
    return f"concat(toString(round(({us}) / {MINUTE_US}, 1)), ' min')"


#: The history columns :func:`procedure_of` reads.
PROCEDURE_COLUMNS: Final = ("procedure_code", "procedure_version", "occurred_at")
#: Where a missing ``valid_from`` / ``valid_to`` puts a version: in force since always / still in force.
_SINCE_ALWAYS: Final = "toDate32('1900-01-01')"
_STILL_IN_FORCE: Final = "toDate32('2299-12-31')"


def catalogue_join(proc_code: str = "proc_code") -> str:
    """``LEFT JOIN`` of the procedure catalogue: one row per code, ``cat_versions`` sorted by valid_from.

    Each version is ``(version, component_codes, same_day, paper_result, valid_from, valid_to)``, the
    dates made total (missing valid_from: 1900-01-01; missing valid_to: 2299-12-31). The rule's
    subquery names its dossier's procedure with :func:`procedure_of`; :func:`catalogue_index` then
    picks the version. A code the catalogue lacks joins an empty ``cat_versions``.
    """
    version = (
        f"tuple(version, component_codes, same_day, paper_result, ifNull(valid_from, {_SINCE_ALWAYS}), "
        f"ifNull(valid_to, {_STILL_IN_FORCE}))"
    )
    return (
        "LEFT JOIN (SELECT procedure_code AS cat_code, "  # noqa: S608 (fixed text)
        f"arraySort(x -> (tupleElement(x, 5), tupleElement(x, 1)), groupArray({version})) "
        "AS cat_versions FROM procedures FINAL GROUP BY procedure_code) AS cat "
        f"ON cat.cat_code = {proc_code}"
    )


def catalogue_index(proc_version: str = "proc_version", proc_day: str = "proc_day") -> str:
    """Index into ``cat_versions`` of the version the dossier is judged against (0: none).

    The one place the version is chosen (domain.md §0: a dossier is pinned to the version in force
    at its reception). The version the events name, when they name one; otherwise the version in
    force on ``proc_day``, the local (Asia/Ho_Chi_Minh) date of reception: ``valid_from <= day <=
    valid_to``. So a version is in force from 00:00 local on its valid_from (17:00 UTC the day
    before) up to and including the whole of its valid_to, the last day in force (the catalogue's
    convention: district units end 2025-06-30, abolished the next day). Overlapping versions: the
    latest valid_from wins. :func:`catalogue_gap` says why the index is 0.
    """
    in_force = (
        f"arrayLastIndex(x -> tupleElement(x, 5) <= {proc_day} AND {proc_day} <= tupleElement(x, 6), cat_versions)"
    )
    return (
        f"if(isNull({proc_version}), {in_force}, "
        f"arrayFirstIndex(x -> tupleElement(x, 1) = {proc_version}, cat_versions))"
    )


#: Why a dossier has no catalogue version (:func:`catalogue_gap`); '' when it has one.
GAP_NO_PROCEDURE: Final = "procedure not in the catalogue"
GAP_NO_VERSION: Final = "version not in the catalogue"
GAP_NOT_IN_FORCE: Final = "no version in force at reception"


def catalogue_gap(ci: str = "ci", proc_version: str = "proc_version") -> str:
    """Why the dossier is not judged against the catalogue ('' when it is: ``ci`` > 0).

    A rule that needs the catalogue does not fire on such a dossier: it is not assessable.
    """
    return (
        f"multiIf({ci} > 0, '', empty(cat_versions), '{GAP_NO_PROCEDURE}', "
        f"isNotNull({proc_version}), '{GAP_NO_VERSION}', '{GAP_NOT_IN_FORCE}')"
    )


def procedure_of(r: str = "r") -> str:
    """``proc_code``, ``proc_version``, ``proc_day``: those of R, else of the first event.

    ``proc_day`` is the local date of reception (R's occurred_at, else the first event's). Needs the
    history columns :data:`PROCEDURE_COLUMNS`.
    """
    return (
        f"if({r} > 0, e_procedure_code[{r}], e_procedure_code[1]) AS proc_code, "
        f"if({r} > 0, e_procedure_version[{r}], e_procedure_version[1]) AS proc_version, "
        f"toDate32(if({r} > 0, e_occurred_at[{r}], e_occurred_at[1]), 'Asia/Ho_Chi_Minh') AS proc_day"
    )


def catalogue_versions(scope: Scope, *, first_rows: bool = False) -> str:
    """One row per dossier in scope: its procedure, the catalogue version it is judged against, or why none.

    Columns ``dossier_id, proc_code, proc_version`` (as the events name it, NULL when they do not),
    ``proc_day``, ``ci`` (:func:`catalogue_index`), ``version`` ('' when none) and ``gap``
    (:func:`catalogue_gap`): what a coverage report counts as not assessable by R7, R16 and R20.

    The procedure is :func:`procedure_of`'s (R's, else the first event's), taken with ``argMin`` by seq rather
    than from the whole history: a dossier costs two small states, not its every event (at a year of the city,
    275M events, the history arrays would not fit in memory).

    ``first_rows``: read only the events that can be R or the first one, the DossierReceived events and those
    with seq 1 (~2 of a dossier's ~12 rows, 3.6 → 1 s a slice of 16M events at the year). A dossier with
    neither (its history starts after seq 1 and has no R, which ``verify`` reports) is then missing: the caller
    counts the rows against the dossiers in scope and asks again without it when they differ.
    """
    fields = f"tuple({', '.join(PROCEDURE_COLUMNS)})"
    rows = " AND (event_type = 'DossierReceived' OR seq = 1)" if first_rows else ""
    first = f"""
SELECT dossier_id, if(countIf(event_type = 'DossierReceived') > 0,
                      argMinIf({fields}, seq, event_type = 'DossierReceived'), argMin({fields}, seq)) AS p,
       tupleElement(p, 1) AS proc_code, tupleElement(p, 2) AS proc_version,
       toDate32(tupleElement(p, 3), 'Asia/Ho_Chi_Minh') AS proc_day
FROM events WHERE ({scope.dossiers}){rows}
GROUP BY dossier_id
"""  # noqa: S608
    return f"""
SELECT dossier_id, proc_code, proc_version, proc_day, ({catalogue_index()}) AS ci,
       if(ci > 0, tupleElement(cat_versions[ci], 1), '') AS version, {catalogue_gap()} AS gap
FROM ({first}) AS d
{catalogue_join()}
"""  # noqa: S608


def end_facts(scope: Scope) -> str:
    """One row per dossier with R: ``r_seq``, ``due0`` (NULL when R has none), ``end_seq`` (0 without E), ``end_at``,
    and ``kept_end``.

    Read from ``dossier_facts`` (migration 0006: one row per dossier, kept at load time), whose ``done``,
    ``returned`` and ``stops`` leave out the status-keeping events: the end is the rulebook's for every dossier
    but those with ``kept_end``, which a rule built on this must also take as candidates.

    ``kept_end``: the dossier's D, T or first stop is a status-keeping event. In a legal history a
    status-keeping event (a SyncedToNational, …) carries the status it found, so it never comes before the
    event that set an end status; in an illegal one it can (``verify`` reports the transition), and then the
    rulebook's D, T or E is that event. The facts keep the least seq of those events per end status
    (``kept_done``, ``kept_returned``, ``kept_stop``, migration 0021); one of them before the facts' own D, T
    or E (``fd``, ``ft``, ``fe``) is such a dossier.
    """
    none = f"toInt64({NONE_SEQ})"
    return f"""
SELECT dossier_id, r_seq, if(due_us < 0, NULL, fromUnixTimestamp64Micro(due_us, 'UTC')) AS due0,
       arrayFirst(x -> tupleElement(x, 1) > r_seq, arraySort(stops)) AS first_stop,
       multiIf(tupleElement(done, 1) != {NONE_SEQ}, done, tupleElement(returned, 1) != {NONE_SEQ}, returned,
               tupleElement(first_stop, 1) > 0, first_stop, (toInt64(0), toInt64(0))) AS e,
       tupleElement(e, 1) AS end_seq, fromUnixTimestamp64Micro(tupleElement(e, 2), 'UTC') AS end_at,
       tupleElement(done, 1) AS fd, tupleElement(returned, 1) AS ft,
       if(end_seq > 0, end_seq, {none}) AS fe,
       kept_done < fd OR kept_returned < ft OR kept_stop < fe AS kept_end
FROM ({
        merged_facts(
            "tupleElement(reception, 1) AS r_seq, tupleElement(reception, 7) AS due_us, done, returned, stops, "
            "kept_done, kept_returned, kept_stop",
            scope.dossiers,
            f"tupleElement(reception, 1) != {NONE_SEQ}",
        )
    })
"""  # noqa: S608
