"""Index-766-style scorecards computed from the event log, one ClickHouse pass.

The national index (QĐ 766/QĐ-TTg, domain.md §d) scores units from the data
synchronised to the national portal. The indicators the events can support
are computed here per dossier, then added up per unit and period:

* a dossier belongs to the unit that received it (its ``DossierReceived``),
  rolled up to the unit's ancestor at the chosen level (``--level``), and to
  the period of its reception date (Asia/Ho_Chi_Minh): a cohort view, so a
  second inspector gets the same figures whatever day the report is run;
* its outcome is judged on its whole stored history with
  :data:`schemas.rulebook.ON_TIME_2_1`, the exact definition the simulator is
  calibrated against (dossiers still in progress are judged at ``as_of``, by
  default the latest ``occurred_at`` in the store);
* working time is :mod:`inspection.worktime_sql` (positions on the working
  calendar), so pauses and handling times are in working time.

Points follow §d: full when ``ratio ≥ τ``, otherwise ``ratio × max / τ`` (no
τ means τ = 100%). Only indicators whose point value §d gives carry points;
the others show the ratio and how far it is from τ. Every indicator says
whether its formula is confirmed; the ones resting on an assumption are
marked unconfirmed with the assumption spelled out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, Literal

from dossier_runtime.store import Store
from inspection import worktime_sql as wt
from schemas.rulebook import ON_TIME_2_1
from schemas.transitions import TRANSITIONS

Level = Literal["city", "department", "district", "commune"]
Period = Literal["month", "quarter", "year", "all"]
LEVELS: Final = ("city", "department", "district", "commune")
PERIODS: Final = ("month", "quarter", "year")
WD_US: Final = 480 * 60 * 1_000_000
ONLINE_PAYMENT: Final = ("NATIONAL_PORTAL", "LOCAL_GATEWAY")  # DuocThanhToanTrucTuyen 1 and 2


@dataclasses.dataclass(frozen=True)
class Indicator:
    """One scorecard column: what it measures, its threshold and points, and how sure we are."""

    id: str
    column: str
    title: str
    formula: str
    tau: float | None  # threshold as a ratio; None: no threshold (τ = 100% for points)
    max_points: float | None  # None: monitored, or the point split is not known
    confirmed: bool
    note: str = ""

    def points(self, ratio: float | None) -> float | None:
        if self.max_points is None or ratio is None:
            return None
        tau = self.tau or 1.0
        return round(self.max_points if ratio >= tau else ratio * self.max_points / tau, 2)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "column": self.column,
            "title": self.title,
            "formula": self.formula,
            "threshold": self.tau,
            "max_points": self.max_points,
            "status": "confirmed" if self.confirmed else "unconfirmed",
            "note": self.note,
        }


INDICATORS: Final[tuple[Indicator, ...]] = (
    Indicator(
        "2.1",
        "on_time_pct",
        "Dossiers handled early or on time",
        "rulebook ON_TIME_2_1: " + ON_TIME_2_1,
        None,
        20,
        True,
        "formula per the 766 transcription [C]; 20 points from a third-party allocation [C³], linear (no τ)",
    ),
    Indicator("2.1-late", "late", "Late dossiers (count)", "dossiers counted late by 2.1", None, None, True),
    Indicator(
        "apology",
        "apology_pct",
        "Late dossiers with an apology",
        "late dossiers with an ApologyIssued after reception ÷ late dossiers",
        None,
        None,
        True,
        "not a 766 indicator: the HCMC report (every late dossier apologised for)",
    ),
    Indicator(
        "apology-timely",
        "apology_timely_pct",
        "Late dossiers with a timely apology",
        "late dossiers with an apology at least apology_lead_wd working days before the original due date ÷ late",
        None,
        None,
        True,
        "NĐ 61/2018 Đ20.1đ (1 working day, national) or HCMC QĐ 5157 (0: by the due date)",
    ),
    Indicator(
        "2.2",
        "avg_handling_wd",
        "Average handling time (working days)",
        "Σ working time from reception to the result (9, else 10), pauses excluded ÷ completed dossiers",
        None,
        None,
        True,
        "monitored, no points",
    ),
    Indicator(
        "3.3",
        "online_pct",
        "Dossiers received online",
        "received with channel ONLINE ÷ received",
        0.5,
        None,
        False,
        "the 766 formula multiplies by the sync ratio (1.4) and needs an electronic result where a paper one is "
        "required: both omitted; point split inside the online-services group (12) unknown",
    ),
    Indicator(
        "3.3-full",
        "online_full_pct",
        "Online, full-process (toàn trình)",
        "received ONLINE for a procedure at service level FULL_ONLINE at reception ÷ received",
        None,
        None,
        False,
        "3.3 split by the service level the reception event carries; not a separate 766 indicator",
    ),
    Indicator(
        "3.3-partial",
        "online_partial_pct",
        "Online, partial (một phần)",
        "received ONLINE for a procedure at service level PARTIAL_ONLINE at reception ÷ received",
        None,
        None,
        False,
        "as 3.3-full",
    ),
    Indicator(
        "3.6",
        "paid_online_pct",
        "Dossiers paid online",
        "dossiers with a FeePaid through NATIONAL_PORTAL or LOCAL_GATEWAY ÷ dossiers of fee-bearing procedures "
        "(catalogue has_fee with a non-zero fee, or a FeePaid with a non-zero amount)",
        None,
        10,
        True,
        "formula [C]; 10 points [C³], linear (no τ)",
    ),
    Indicator(
        "4.2",
        "digitised_pct",
        "Dossiers digitised",
        "dossiers with digitised components (a DossierDigitized, or submitted online) and an electronic result "
        "where the procedure requires a paper one ÷ received",
        0.8,
        None,
        False,
        "counting online submissions as digitised components is an assumption; point split inside the "
        "digitisation group (22) unknown",
    ),
    Indicator(
        "5.4",
        "satisfaction_pct",
        "Satisfaction with TTHC handling",
        "100% − (late ratio + ratio of dossiers with a FeedbackFiled or a CitizenRated rating ≤ 2)",
        0.9,
        6,
        False,
        "reading a rating ≤ 2 of 5 as a 'dislike' is an assumption; 6 points [C³]",
    ),
)
BY_COLUMN: Final = {i.column: i for i in INDICATORS}


@dataclasses.dataclass(frozen=True)
class ScorecardQuery:
    """What to score; every value reaches SQL as a bound parameter."""

    level: Level = "city"
    unit: str | None = None
    period: Period = "all"
    procedure: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    as_of: datetime | None = None
    apology_lead_wd: int = 1


@dataclasses.dataclass(frozen=True)
class Scorecard:
    rows: list[dict[str, Any]]
    as_of: datetime | None
    groups: int
    query: ScorecardQuery


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
#: Fields of the counter word summed over a dossier (16 bits each).
C_SUPPLEMENTS, C_APOLOGIES, C_RATINGS, C_RATING_SUM = 0, 16, 32, 48


def _in(values: Sequence[str]) -> str:
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
    return f"toUInt8(transform(event_type, [{_in(list(codes))}], [{', '.join(map(str, codes.values()))}], 0))"


def _flags_sql() -> str:
    return (
        f"if({_is('DossierDigitized')}, {F_DIGITISED}, 0) + if({_is('ResultIssued')}, {F_RESULT}, 0) "
        f"+ if({_is('ResultIssued', 'DossierDigitized')} AND coalesce(result_electronic, false), "
        f"{F_RESULT_ELECTRONIC}, 0) "
        f"+ if({_is('FeePaid')} AND payment_channel IN ({_in(ONLINE_PAYMENT)}), {F_PAID_ONLINE}, 0) "
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


def facts_sql(procedure: bool = False) -> str:
    """One row per received dossier with the flags every indicator needs (parameters: see :func:`params`).

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
    n_sup > 1 OR (has_due AND (
        if(has_e, end_p - due_p - pause_wt > 0,
           if(p_sts[-1] = 5 AND n_sup > 0, last_sup_p - due_p - pause_wt > 0,
              {{asof_pos:Int64}} - due_p - pause_wt > 0))
    )) AS late,
    has_e, completed, if(completed, end_p - r_pos - pause_wt, 0) AS handling_us,
    n_apo > 0 AS apologised,
    has_due AND n_apo > 0 AND due_p - apo_first_p >= {{lead_us:Int64}} AS apology_timely,
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
    bitAnd(bitShiftRight(counts, {C_RATING_SUM}), 65535) AS rating_sum
FROM (
    SELECT dossier_id, {rw} AS rw, {r_pos} AS r_pos, {due_p} AS due_p, flags, counts, apo_first_p,
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
            sum(cn) AS counts
        FROM (
            SELECT dossier_id, seq, status, toUInt8(1) AS k, toUInt8({_codes()["DossierReceived"]}) AS tc, {pos} AS p,
                toUInt8(0) AS o,
                {_reception_word_sql()} AS rw, if(isNotNull(due_at), {due_pos}, toInt64(0)) AS dp,
                toUInt8(0) AS fl, toUInt64(0) AS cn
            FROM events
            WHERE {r_where}
            UNION ALL
            SELECT dossier_id, seq, status, toUInt8(0) AS k, {_type_code_sql()} AS tc, {pos} AS p,
                {opener_sql()} AS o,
                toUInt64(0) AS rw, toInt64(0) AS dp, toUInt8({_flags_sql()}) AS fl, toUInt64({_counts_sql()}) AS cn
            FROM events
            WHERE event_type IN ({_in(other_types)}) OR (status IN (3, 7, 8, 9, 10)
                AND event_type NOT IN ({_in((*STATUS_KEEPING, "DossierReceived"))}))
        )
        GROUP BY dossier_id
        HAVING r_first > 0
    )
)
"""  # noqa: S608


def _group_select(period: Period) -> str:
    key = {
        "month": "formatDateTime(r_day, '%Y-%m')",
        "quarter": "concat(toString(toYear(r_day)), '-Q', toString(toQuarter(r_day)))",
        "year": "toString(toYear(r_day))",
        "all": "'all'",
    }[period]
    return key


def scorecard_sql(q: ScorecardQuery) -> str:
    """Per (unit group, period): counts and sums the indicators are ratios of."""
    where = ["r_grp != 0"]
    if q.date_from:
        where.append("r_day >= {date_from:Date}")
    if q.date_to:
        where.append("r_day <= {date_to:Date}")
    # Fixed fragments with bound placeholders; nothing from input reaches the SQL text.
    return f"""
SELECT r_grp, {_group_select(q.period)} AS period,
    count() AS n_received, countIf(late) AS n_late, countIf(has_e) AS n_ended,
    countIf(late AND apologised) AS n_late_apologised, countIf(late AND apology_timely) AS n_late_apology_timely,
    countIf(completed) AS n_completed, sum(handling_us) AS sum_handling_us,
    countIf(online) AS n_online, countIf(online_full) AS n_online_full, countIf(online_partial) AS n_online_partial,
    countIf(digitised_ok) AS n_digitised, countIf(fee_bearing) AS n_fee_bearing, countIf(paid_online) AS n_paid_online,
    countIf(complained) AS n_complained, sum(rating_n) AS n_ratings, sum(rating_sum) AS sum_rating
FROM ({facts_sql(procedure=q.procedure is not None)})
WHERE {" AND ".join(where)}
GROUP BY r_grp, period
"""  # noqa: S608


def unit_groups(store: Store, level: Level, unit: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(reception unit → group unit, group unit → name) from the units catalogue.

    A unit's group is its ancestor-or-self at ``level``; with ``unit``, the
    unit itself for it and every unit below it. Units without such an
    ancestor are left out (a department's dossiers have no district).
    """
    rows = store.query(
        "SELECT unit_code, argMax(name, valid_from), argMax(level, valid_from), argMax(parent_code, valid_from) "
        "FROM units FINAL GROUP BY unit_code"
    ).rows
    parent = {str(code): (str(p) if p else None) for code, _n, _l, p in rows}
    names = {str(code): str(name) for code, name, _l, _p in rows}
    levels = {str(code): str(lv) for code, _n, lv, _p in rows}
    mapping: dict[str, str] = {}
    for code in parent:
        node: str | None = code
        seen: set[str] = set()
        while node is not None and node not in seen:
            seen.add(node)
            if (unit is not None and node == unit) or (unit is None and levels.get(node) == level):
                mapping[code] = node
                break
            node = parent.get(node)
    return mapping, names


def params(q: ScorecardQuery, as_of_pos: int) -> dict[str, Any]:
    out: dict[str, Any] = {**wt.params(), "asof_pos": as_of_pos, "lead_us": q.apology_lead_wd * WD_US}
    if q.procedure:
        out["procedure"] = q.procedure
    if q.date_from:
        out["date_from"] = q.date_from
    if q.date_to:
        out["date_to"] = q.date_to
    return out


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


def _pct(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 4) if den else None


def _row(grp: str, name: str, r: Mapping[str, Any]) -> dict[str, Any]:
    received, late = int(r["n_received"]), int(r["n_late"])
    complained, completed, ratings = int(r["n_complained"]), int(r["n_completed"]), int(r["n_ratings"])
    row: dict[str, Any] = {
        "unit_code": grp,
        "unit_name": name,
        "period": r["period"],
        "received": received,
        "on_time_pct": _pct(received - late, received),
        "late": late,
        "apology_pct": _pct(int(r["n_late_apologised"]), late),
        "apology_timely_pct": _pct(int(r["n_late_apology_timely"]), late),
        "avg_handling_wd": round(int(r["sum_handling_us"]) / WD_US / completed, 3) if completed else None,
        "online_pct": _pct(int(r["n_online"]), received),
        "online_full_pct": _pct(int(r["n_online_full"]), received),
        "online_partial_pct": _pct(int(r["n_online_partial"]), received),
        "digitised_pct": _pct(int(r["n_digitised"]), received),
        "paid_online_pct": _pct(int(r["n_paid_online"]), int(r["n_fee_bearing"])),
        "fee_bearing": int(r["n_fee_bearing"]),
        "satisfaction_pct": round(max(0.0, 100.0 - 100.0 * (late + complained) / received), 4) if received else None,
        "ratings": ratings,
        "avg_rating": round(int(r["sum_rating"]) / ratings, 3) if ratings else None,
    }
    total = 0.0
    for ind in INDICATORS:
        value = row.get(ind.column)
        pts = ind.points(value / 100.0 if isinstance(value, float) else None)
        if ind.max_points is not None:
            row[f"pts_{ind.id}"] = pts
            total += pts or 0.0
    row["points"] = round(total, 2)
    return row


def max_points() -> float:
    return sum(i.max_points for i in INDICATORS if i.max_points is not None)


def rank(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank within each period: points, then on-time rate, then unit code (a stable order)."""
    out: list[dict[str, Any]] = []
    by_period: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_period.setdefault(str(row["period"]), []).append(row)
    for period in sorted(by_period):
        ranked = sorted(by_period[period], key=lambda r: (-r["points"], -(r["on_time_pct"] or 0.0), r["unit_code"]))
        for n, row in enumerate(ranked, start=1):
            out.append({"period": period, "rank": n, **{k: v for k, v in row.items() if k != "period"}})
    return out


def compute_scorecard(store: Store, q: ScorecardQuery) -> Scorecard:
    """Score every unit group of ``q.level`` (or ``q.unit``) per period; rows ranked."""
    if q.level == "city" and q.unit is None:
        city = store.query("SELECT unit_code, name FROM units FINAL WHERE level = 'city' ORDER BY unit_code").rows
        code, name = (str(city[0][0]), str(city[0][1])) if city else ("(all units)", "")
        groups, mapping, default_id = [code], {}, 1
        names = {code: name}
    else:
        mapping_codes, names = unit_groups(store, q.level, q.unit)
        groups = sorted(set(mapping_codes.values()))
        ids = {g: n for n, g in enumerate(groups, start=1)}
        mapping, default_id = {u: ids[g] for u, g in mapping_codes.items()}, 0
    as_of, as_of_pos = as_of_position(store, q.as_of)
    p = params(q, as_of_pos)
    p.update(grp_units=list(mapping), grp_ids=list(mapping.values()), grp_default_id=default_id)
    result = store.query(scorecard_sql(q), p).named()
    rows = []
    for r in result:
        code = groups[int(r["r_grp"]) - 1]
        rows.append(_row(code, names.get(code, ""), r))
    return Scorecard(rank(rows), as_of, len({r["unit_code"] for r in rows}), q)
