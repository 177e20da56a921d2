"""Per-dossier facts: reception, end, pauses, apologies, fees, ratings; one row per received dossier.

The scorecard (:mod:`inspection.scorecard`) adds these up per unit and
period; the accountability report (:mod:`inspection.accountability`) shares
the pause fold and the event-type lists. Working time is
:mod:`inspection.worktime_sql` (positions on the working calendar), so pauses
and handling times are in working time.

:func:`facts_sql` reads the ``dossier_facts`` table the loader keeps
(migration 0006: ~1 row per dossier, so a city scorecard on 10 million events
reads 0.8 million rows); :func:`facts_scan_sql` computes the same from the
raw events, the reference a test holds the table to. The table's event-type
lists and flag bits are the constants below, baked into the migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from dossier_runtime.store import Store
from inspection import worktime_sql as wt
from schemas.transitions import TRANSITIONS

WD_US: Final = 480 * 60 * 1_000_000
ONLINE_PAYMENT: Final = ("NATIONAL_PORTAL", "LOCAL_GATEWAY")  # DuocThanhToanTrucTuyen 1 and 2


#: Event types whose status never differs from the one before them (schemas.transitions): dropping them
#: changes no pause and no end.
STATUS_KEEPING: Final = ("SyncedToNational", "ApplicantNotified", "ResultCollected")
#: The rows the per-dossier facts read (besides every row whose status is 3, 7, 8, 9 or 10).
FACT_TYPES: Final = (
    "DossierReceived", "SupplementRequested", "ApologyIssued", "DossierDigitized", "ResultIssued", "FeePaid",
    "FeedbackFiled", "CitizenRated",
)  # fmt: skip
PAUSE_OPENERS: Final = ("SupplementRequested", "FinancialObligationRequested")


def _pause_closers() -> tuple[str, ...]:
    """Every event type the transition table lets move a dossier out of status 5 or 6."""
    return tuple(
        sorted(
            {
                event_type.value
                for (before, event_type), afters in TRANSITIONS.items()
                if before is not None and int(before) in (5, 6) and any(int(a) != int(before) for a in afters)
            }
        )
    )


#: The events a pause depends on: the openers and whatever can end status 5 or 6. Only these go into the
#: per-dossier pause arrays, which stay empty for the 95% of dossiers never paused.
PAUSE_TYPES: Final = tuple(sorted(set(PAUSE_OPENERS) | set(_pause_closers())))

#: Bits of the per-event flag word, OR-ed over a dossier.
F_DIGITISED, F_RESULT, F_RESULT_ELECTRONIC, F_PAID_ONLINE, F_FEE_EVENT, F_COMPLAINED = 1, 2, 4, 8, 16, 32
#: Bits of the reception word: the day number in the low 16 bits, flags above, the group id in the high 32.
R_ONLINE, R_FULL, R_PARTIAL, R_PAPER, R_FEE, R_HAS_DUE = 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21
#: Bits of the unknown word, OR-ed over a dossier (migration 0015): a fact an indicator reads that its source did
#: not say (``unknown_facts``): the due date of a reception (2.1), whether a result was electronic (4.2).
U_DUE, U_RESULT = 1, 2
#: Per event, its bits of the unknown word (the migration's view holds the same text; a test checks it).
UNKNOWN_SQL: Final = (
    f"toUInt8(\n        if(event_type = 'DossierReceived' AND has(unknown_facts, 'due_at'), {U_DUE}, 0)\n"
    f"        + if(event_type IN ('ResultIssued', 'DossierDigitized') AND has(unknown_facts, 'result_electronic'), "
    f"{U_RESULT}, 0))"
)
#: Fields of the counter word summed over a dossier (16 bits each).
C_SUPPLEMENTS, C_APOLOGIES, C_RATINGS, C_RATING_SUM = 0, 16, 32, 48


def sql_in(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _first(cond: str, value: str = "p") -> str:
    """(seq, value) of the first event (by seq) meeting ``cond``, packed in one UInt128 (0 when none)."""
    return f"minIf(bitShiftLeft(toUInt128(seq), 64) + toUInt128({value}), {cond})"


def _codes() -> dict[str, int]:
    return {name: n for n, name in enumerate(sorted(set(FACT_TYPES + PAUSE_TYPES)), start=1)}


def _is(*names: str) -> str:
    """A condition on ``tc``, the small integer code of the event type (one string lookup per row)."""
    codes = _codes()
    return f"tc IN ({', '.join(str(codes[n]) for n in names)})"


def _type_code_sql() -> str:
    codes = _codes()
    return f"toUInt8(transform(event_type, [{sql_in(list(codes))}], [{', '.join(map(str, codes.values()))}], 0))"


def _flags_sql() -> str:
    return (
        f"if({_is('DossierDigitized')}, {F_DIGITISED}, 0) + if({_is('ResultIssued')}, {F_RESULT}, 0) "
        f"+ if({_is('ResultIssued', 'DossierDigitized')} AND coalesce(result_electronic, false), "
        f"{F_RESULT_ELECTRONIC}, 0) "
        f"+ if({_is('FeePaid')} AND payment_channel IN ({sql_in(ONLINE_PAYMENT)}), {F_PAID_ONLINE}, 0) "
        f"+ if({_is('FeePaid')} AND coalesce(amount_vnd, 0) > 0, {F_FEE_EVENT}, 0) "
        f"+ if({_is('FeedbackFiled')} OR ({_is('CitizenRated')} AND rating <= 2), {F_COMPLAINED}, 0)"
    )


def _counts_sql() -> str:
    return (
        f"if({_is('SupplementRequested')}, {1 << C_SUPPLEMENTS}, 0) "
        f"+ if({_is('ApologyIssued')}, {1 << C_APOLOGIES}, 0) "
        f"+ if({_is('CitizenRated')} AND isNotNull(rating), {1 << C_RATINGS} "
        f"+ bitShiftLeft(toUInt64(least(greatest(assumeNotNull(rating), 0), 255)), {C_RATING_SUM}), 0)"
    )


def _reception_word_sql() -> str:
    """The reception's attributes packed in one UInt64 (cheap to carry through the aggregation)."""
    fee = "SELECT procedure_code FROM procedures FINAL WHERE has_fee AND coalesce(fee_vnd, 1) > 0"
    paper = "SELECT procedure_code FROM procedures FINAL WHERE paper_result"
    return (
        "bitShiftLeft(toUInt64(transform(unit_code, {grp_units:Array(String)}, {grp_ids:Array(UInt32)}, "
        "{grp_default_id:UInt32})), 32) "
        "+ toUInt64(toUInt16(toDate(occurred_at, 'Asia/Ho_Chi_Minh'))) "
        f"+ if(channel = 'ONLINE', {R_ONLINE}, 0) "
        f"+ if(service_level = 'FULL_ONLINE', {R_FULL}, 0) + if(service_level = 'PARTIAL_ONLINE', {R_PARTIAL}, 0) "
        f"+ if(procedure_code IN ({paper}), {R_PAPER}, 0) "
        f"+ if(procedure_code IN ({fee}), {R_FEE}, 0) + if(isNotNull(due_at), {R_HAS_DUE}, 0)"
    )


#: Paused working time of a dossier from ``spev``, its array of (seq, status, pos, opener) over
#: :data:`PAUSE_TYPES` sorted by seq. An opener (a SupplementRequested in status 5, a clock-stopping
#: FinancialObligationRequested in status 6) starts a pause; the first later event whose status differs closes
#: it; a later opener within the same status replaces the earlier (schemas.lifecycle). Every event that can
#: change status 5 or 6 is in the array, so the next element with another status is the closer. A fold is
#: cheap here: the array is empty for the dossiers never paused.
PAUSE_FOLD: Final = (
    "tupleElement(arrayFold((acc, x) -> ("
    "tupleElement(acc, 1) + if(tupleElement(acc, 3) != 0 AND tupleElement(x, 2) != tupleElement(acc, 3), "
    "tupleElement(x, 3) - tupleElement(acc, 2), 0), "
    "if(tupleElement(x, 4) = 1, tupleElement(x, 3), tupleElement(acc, 2)), "
    "if(tupleElement(x, 4) = 1, toInt32(tupleElement(x, 2)), "
    "if(tupleElement(x, 2) != tupleElement(acc, 3), toInt32(0), tupleElement(acc, 3)))), "
    "spev, (toInt64(0), toInt64(0), toInt32(0))), 1)"
)


def opener_sql() -> str:
    return (
        "toUInt8((event_type = 'SupplementRequested' AND status = 5) OR "
        "(event_type = 'FinancialObligationRequested' AND coalesce(clock_stopped, false) AND status = 6))"
    )


def _unpack(word: str) -> tuple[str, str]:
    """(seq, value) of a :func:`_first` word."""
    return f"toUInt64(bitShiftRight({word}, 64))", f"toInt64(bitAnd({word}, 18446744073709551615))"


#: The verdicts both fact queries derive the same way from their per-dossier columns (2.1's lateness with
#: the supplement rule, completion, handling time, apologies).
_VERDICTS: Final = """n_sup > 1 OR (has_due AND (
        if(has_e, end_p - due_p - pause_wt > 0,
           if(p_sts[-1] = 5 AND n_sup > 0, last_sup_p - due_p - pause_wt > 0,
              {asof_pos:Int64} - due_p - pause_wt > 0))
    )) AS late,
    has_e, completed, if(completed, end_p - r_pos - pause_wt, 0) AS handling_us,
    n_apo > 0 AS apologised,
    has_due AND n_apo > 0 AND due_p - apo_first_p >= {lead_us:Int64} AS apology_timely"""


def facts_scan_sql(procedure: bool = False) -> str:
    """:func:`facts_sql` computed from the raw events (the reference the derived table is tested against).

    ``procedure``: only dossiers whose reception names ``{procedure:String}``. Every first/last event is
    taken by seq, as the rulebook says. Valid histories are assumed (``dossier inspect verify`` passes) for
    the shortcuts that keep this one pass over a third of the rows: status-keeping events are skipped, and
    a stop, supplement or apology comes after the reception.
    """
    pos = wt.pos_sql("occurred_at")
    due_pos = wt.pos_sql("assumeNotNull(due_at)")
    r_where = "event_type = 'DossierReceived'" + (" AND procedure_code = {procedure:String}" if procedure else "")
    r_seq, r_pos = _unpack("r_first")
    _, rw = _unpack("r_word")
    _, due_p = _unpack("r_due")
    d_seq, d_pos = _unpack("d_first")
    t_seq, t_pos = _unpack("t_first")
    s_seq, s_pos = _unpack("stop_first")
    _, last_sup_p = _unpack("sup_last")
    other_types = sorted(set(FACT_TYPES + PAUSE_TYPES) - {"DossierReceived"})
    # The SQL text is built from code only; every value (as_of, filters, calendar) is a bound parameter.
    return f"""
SELECT dossier_id, r_grp, r_day,
    {_VERDICTS},
    bitAnd(rw, {R_ONLINE}) != 0 AS online,
    bitAnd(rw, {R_ONLINE}) != 0 AND bitAnd(rw, {R_FULL}) != 0 AS online_full,
    bitAnd(rw, {R_ONLINE}) != 0 AND bitAnd(rw, {R_PARTIAL}) != 0 AS online_partial,
    (bitAnd(flags, {F_DIGITISED}) != 0 OR bitAnd(rw, {R_ONLINE}) != 0)
        AND (bitAnd(rw, {R_PAPER}) = 0 OR bitAnd(flags, {F_RESULT}) = 0 OR bitAnd(flags, {F_RESULT_ELECTRONIC}) != 0)
        AS digitised_ok,
    bitAnd(flags, {F_FEE_EVENT}) != 0 OR bitAnd(rw, {R_FEE}) != 0 AS fee_bearing,
    fee_bearing AND bitAnd(flags, {F_PAID_ONLINE}) != 0 AS paid_online,
    bitAnd(flags, {F_COMPLAINED}) != 0 AS complained,
    bitAnd(bitShiftRight(counts, {C_RATINGS}), 65535) AS rating_n,
    bitAnd(bitShiftRight(counts, {C_RATING_SUM}), 65535) AS rating_sum,
    bitAnd(unknown, {U_DUE}) != 0 AS due_unknown, bitAnd(unknown, {U_RESULT}) != 0 AS result_unknown
FROM (
    SELECT dossier_id, {rw} AS rw, {r_pos} AS r_pos, {due_p} AS due_p, flags, counts, apo_first_p, unknown,
        toUInt32(bitShiftRight(rw, 32)) AS r_grp, toDate(toUInt16(bitAnd(rw, 65535))) AS r_day,
        bitAnd(rw, {R_HAS_DUE}) != 0 AS has_due,
        {d_seq} > 0 AS has_d, {t_seq} > 0 AS has_t, {s_seq} > {r_seq} AS has_stop,
        has_d OR has_t AS completed, completed OR has_stop AS has_e,
        if(has_d, {d_pos}, if(has_t, {t_pos}, {s_pos})) AS end_p,
        bitAnd(bitShiftRight(counts, {C_SUPPLEMENTS}), 65535) AS n_sup,
        bitAnd(bitShiftRight(counts, {C_APOLOGIES}), 65535) AS n_apo,
        {last_sup_p} AS last_sup_p,
        arraySort(pev) AS spev, tupleElement(spev, 2) AS p_sts, {PAUSE_FOLD} AS pause_wt
    FROM (
        SELECT dossier_id,
            {_first("k = 1")} AS r_first,
            {_first("k = 1", "rw")} AS r_word,
            {_first("k = 1", "dp")} AS r_due,
            {_first("status = 9")} AS d_first,
            {_first("status = 10")} AS t_first,
            {_first("status IN (3, 7, 8)")} AS stop_first,
            maxIf(bitShiftLeft(toUInt128(seq), 64) + toUInt128(p), {_is("SupplementRequested")}) AS sup_last,
            minIf(p, {_is("ApologyIssued")}) AS apo_first_p,
            groupArrayIf((seq, status, p, o), {_is(*PAUSE_TYPES)}) AS pev,
            groupBitOr(fl) AS flags,
            groupBitOr(uk) AS unknown,
            sum(cn) AS counts
        FROM (
            SELECT dossier_id, seq, status, toUInt8(1) AS k, toUInt8({_codes()["DossierReceived"]}) AS tc, {pos} AS p,
                toUInt8(0) AS o,
                {_reception_word_sql()} AS rw, if(isNotNull(due_at), {due_pos}, toInt64(0)) AS dp,
                toUInt8(0) AS fl, toUInt64(0) AS cn, {UNKNOWN_SQL} AS uk
            FROM events
            WHERE {r_where}
            UNION ALL
            SELECT dossier_id, seq, status, toUInt8(0) AS k, {_type_code_sql()} AS tc, {pos} AS p,
                {opener_sql()} AS o,
                toUInt64(0) AS rw, toInt64(0) AS dp, toUInt8({_flags_sql()}) AS fl, toUInt64({_counts_sql()}) AS cn,
                {UNKNOWN_SQL} AS uk
            FROM events
            WHERE event_type IN ({sql_in(other_types)}) OR (status IN (3, 7, 8, 9, 10)
                AND event_type NOT IN ({sql_in((*STATUS_KEEPING, "DossierReceived"))}))
        )
        GROUP BY dossier_id
        HAVING r_first > 0
    )
)
"""  # noqa: S608


#: "None yet" in the derived table's first-event columns (a seq no event has).
NONE_SEQ: Final = 9223372036854775807


def merged_facts(columns: str, dossiers: str = "1", where: str = "1") -> str:
    """``dossier_id, columns`` of ``dossier_facts``, one merged row per dossier, as ``FINAL`` reads them.

    ``FINAL`` merges every row through the aggregate functions, a hash set per array even for a dossier held in
    one row, and the parts of a store loaded over months all span the whole key range (a dossier id starts with
    its unit), so nothing is skipped: 15 s for the year's 23.5M dossiers on 2 cores (BENCHMARKS.md). A row of a
    dossier no other row names is already what ``FINAL`` would give (each row's arrays are sets, made by the
    view's ``groupUniqArray``); only the dossiers held in several rows, parts not merged yet, go through
    ``FINAL``, which then reads just their granules. They are found by ``key_hash`` (migration 0015), 8 bytes a
    row, so a query that needs no id reads none; a hash two dossiers share only sends both through ``FINAL``.
    ``dossiers``: a condition on ``dossier_id`` alone (applied before the merge); ``where``: one on the merged
    columns (after it). The text is this package's; values are bound placeholders.
    """
    several = f"SELECT key_hash FROM dossier_facts WHERE {dossiers} GROUP BY key_hash HAVING count() > 1"  # noqa: S608
    their_ids = f"SELECT dossier_id FROM dossier_facts WHERE ({dossiers}) AND key_hash IN ({several})"  # noqa: S608
    return f"""
SELECT dossier_id, {columns} FROM dossier_facts WHERE ({dossiers}) AND key_hash NOT IN ({several}) AND ({where})
UNION ALL
SELECT dossier_id, {columns} FROM dossier_facts FINAL WHERE ({dossiers}) AND dossier_id IN ({their_ids}) AND ({where})
"""  # noqa: S608


def at_us(us: str) -> str:
    """The DateTime64 of a time stored as microseconds (what :mod:`inspection.worktime_sql` takes)."""
    return f"fromUnixTimestamp64Micro({us}, 'UTC')"


def facts_sql(procedure: bool = False) -> str:
    """One row per received dossier with the flags every indicator needs, from the ``dossier_facts`` table.

    ``dossier_facts`` (migration 0006) holds a few aggregates per dossier kept at load time, read one row per
    dossier by :func:`merged_facts` (far cheaper than a GROUP BY over the string keys); the working calendar
    (positions) and the procedure catalogue are applied here, on ~1 row per dossier. The result is that of
    :func:`facts_scan_sql` over the events (a test holds them equal). ``procedure``: only dossiers whose
    reception names ``{procedure:String}``.
    """
    pos = wt.pos_sql
    fee = "SELECT procedure_code FROM procedures FINAL WHERE has_fee AND coalesce(fee_vnd, 1) > 0"
    paper = "SELECT procedure_code FROM procedures FINAL WHERE paper_result"
    only = " AND tupleElement(reception, 6) = {procedure:String}" if procedure else ""
    # The SQL text is built from code only; every value (as_of, filters, calendar) is a bound parameter.
    return f"""
SELECT dossier_id, r_grp, r_day,
    {_VERDICTS},
    online,
    online AND tupleElement(r, 5) = 'FULL_ONLINE' AS online_full,
    online AND tupleElement(r, 5) = 'PARTIAL_ONLINE' AS online_partial,
    (bitAnd(flags, {F_DIGITISED}) != 0 OR online)
        AND (NOT paper OR bitAnd(flags, {F_RESULT}) = 0 OR bitAnd(flags, {F_RESULT_ELECTRONIC}) != 0) AS digitised_ok,
    bitAnd(flags, {F_FEE_EVENT}) != 0 OR fee AS fee_bearing,
    fee_bearing AND bitAnd(flags, {F_PAID_ONLINE}) != 0 AS paid_online,
    bitAnd(flags, {F_COMPLAINED}) != 0 AS complained,
    length(ratings) AS rating_n,
    arraySum(x -> toUInt64(least(greatest(tupleElement(x, 2), 0), 255)), ratings) AS rating_sum,
    bitAnd(unknown, {U_DUE}) != 0 AS due_unknown, bitAnd(unknown, {U_RESULT}) != 0 AS result_unknown
FROM (
    SELECT dossier_id, r, flags, ratings, unknown,
        toUInt32(transform(tupleElement(r, 3), {{grp_units:Array(String)}}, {{grp_ids:Array(UInt32)}},
            {{grp_default_id:UInt32}})) AS r_grp,
        toDate({at_us("tupleElement(r, 2)")}, 'Asia/Ho_Chi_Minh') AS r_day,
        tupleElement(r, 4) = 'ONLINE' AS online,
        tupleElement(r, 6) IN ({paper}) AS paper,
        tupleElement(r, 6) IN ({fee}) AS fee,
        tupleElement(r, 7) != -1 AS has_due,
        {pos(at_us("tupleElement(r, 2)"))} AS r_pos,
        if(has_due, {pos(at_us("tupleElement(r, 7)"))}, toInt64(0)) AS due_p,
        tupleElement(done, 1) != {NONE_SEQ} AS has_d,
        tupleElement(returned, 1) != {NONE_SEQ} AS has_t,
        arraySort(stops)[1] AS first_stop,
        notEmpty(stops) AND tupleElement(first_stop, 1) > tupleElement(r, 1) AS has_stop,
        has_d OR has_t AS completed, completed OR has_stop AS has_e,
        if(has_d, {pos(at_us("tupleElement(done, 2)"))},
           if(has_t, {pos(at_us("tupleElement(returned, 2)"))}, {pos(at_us("tupleElement(first_stop, 2)"))})) AS end_p,
        length(supplements) AS n_sup,
        length(apologies) AS n_apo,
        if(n_sup > 0, {pos(at_us("tupleElement(arraySort(supplements)[-1], 2)"))}, toInt64(0)) AS last_sup_p,
        if(n_apo > 0, {pos(at_us("arrayMin(x -> tupleElement(x, 2), apologies)"))}, toInt64(0)) AS apo_first_p,
        if(empty(pause_events), CAST([], 'Array(Tuple(Int64, Int32, Int64, UInt8))'),
           arraySort(arrayMap(x -> (tupleElement(x, 1), tupleElement(x, 2), {pos(at_us("tupleElement(x, 3)"))},
                tupleElement(x, 4)), pause_events))) AS spev,
        tupleElement(spev, 2) AS p_sts, if(empty(spev), toInt64(0), {PAUSE_FOLD}) AS pause_wt
    FROM ({
        merged_facts(
            "reception AS r, done, returned, stops, supplements, apologies, pause_events, flags, ratings, unknown",
            where=f"tupleElement(reception, 1) != {NONE_SEQ}{only}",
        )
    })
)
"""  # noqa: S608


def as_of_position(store: Store, as_of: datetime | None) -> tuple[datetime | None, int]:
    """The instant dossiers in progress are judged at (default: the latest event) and its working position."""
    if as_of is None:
        sql = f"SELECT max(occurred_at), {wt.pos_sql('max(occurred_at)')} FROM events"  # noqa: S608
        row = store.query(sql, wt.params()).rows[0]
    else:
        t = "{t:DateTime64(6, 'UTC')}"
        sql = f"SELECT {t}, {wt.pos_sql(t)}"
        row = store.query(sql, {**wt.params(), "t": as_of}).rows[0]
    return row[0], int(row[1] or 0)
