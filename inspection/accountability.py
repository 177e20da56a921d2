"""Who held each dossier, for how long, and who made it late: per official, per unit, per pair of units.

The steps are exactly the control sheet's (:mod:`inspection.controlsheet`),
rebuilt in one ClickHouse query instead of dossier by dossier (:func:`steps_sql`):

* a step opens at every hand-over event (DossierReceived, DossierTransferred,
  StepHandedOver, StepReturned, InterAgencyTransferred) and is held by its
  receiver (the actor for a reception, otherwise ``to_actor``/``to_role``
  at ``to_unit``);
* it closes at the next hand-over or at the first event that ends the
  handling (status 3, 7, 8, 9 or 10, AdminOverride excepted);
* the working time spent excludes the pauses (supplement, clock-stopping
  financial obligation) inside it; the step is late when the whole minutes
  spent exceed ``step_budget_minutes`` (or, without a budget, when it ended
  after ``step_due_at``).

Attribution: a late step's delay (spent − budget) belongs to whoever held
the dossier in that step. In a hand-over or inter-agency chain the official
who overran is charged, not the last one in line, and a late dossier's
delay is spread over exactly the steps that overran.

Coordination (``by="pair"``): for every hand-over from one unit to another,
the working time until the receiving unit's first recorded step boundary
("to first action": the events carry no separate acknowledgement of
receipt), the working time the dossier then stayed in the receiving unit,
and whether any step in that stay was late.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, Final, Literal

from dossier_runtime.store import Store
from inspection import dossier_facts as facts
from inspection import worktime_sql as wt
from inspection.controlsheet import OPENS_STEP_SQL

By = Literal["official", "unit", "pair"]
#: The audit's findings as (rule, unit_code, actor_id or None); see :func:`compute_accountability`.
FindingsFn = Callable[[], Iterable[tuple[str, str, str | None]]]
#: The control sheet's own list, so a step here is always a step there.
HANDLING_ENDS: Final = (3, 7, 8, 9, 10)
#: The step boundaries ``dossier_steps`` keeps (migration 0006 bakes this condition in; a test holds them equal):
#: the hand-overs that open a step, and the events that end the handling (AdminOverride excepted).
STEP_BOUNDARY_SQL: Final = (
    f"{OPENS_STEP_SQL} OR (status IN {HANDLING_ENDS} AND event_type NOT IN "
    f"({facts.sql_in((*facts.STATUS_KEEPING, 'AdminOverride'))}))"
)
MINUTE_US: Final = 60_000_000
HOUR_US: Final = 60 * MINUTE_US


@dataclasses.dataclass(frozen=True)
class AccountabilityQuery:
    """The period and selection; every value reaches SQL as a bound parameter."""

    by: By = "official"
    unit: str | None = None
    date_from: date | None = None  # the step's hand-over date (Asia/Ho_Chi_Minh)
    date_to: date | None = None
    procedure: str | None = None
    as_of: datetime | None = None
    limit: int | None = None


#: ``pp``: (starts, ends, open status) of a dossier's pauses folded over ``spev`` (see dossier_facts.PAUSE_FOLD).
PAUSE_FOLD_INTERVALS: Final = (
    "arrayFold((acc, x) -> ("
    "if(tupleElement(x, 4) = 1, arrayPushBack(tupleElement(acc, 1), tupleElement(x, 3)), tupleElement(acc, 1)), "
    "if(tupleElement(acc, 3) != 0 AND tupleElement(x, 2) != tupleElement(acc, 3), "
    "arrayPushBack(tupleElement(acc, 2), tupleElement(x, 3)), tupleElement(acc, 2)), "
    "if(tupleElement(x, 4) = 1, toInt32(tupleElement(x, 2)), "
    "if(tupleElement(x, 2) != tupleElement(acc, 3), toInt32(0), tupleElement(acc, 3)))), "
    "spev, (CAST([], 'Array(Int64)'), CAST([], 'Array(Int64)'), toInt32(0)))"
)


def pauses_sql() -> str:
    """``pause_starts``, ``pause_ends`` (-1: still open) of every paused dossier, from ``dossier_facts``.

    Read with ``FINAL``, not :func:`inspection.dossier_facts.merged_facts`: the filter keeps ~6% of the rows and
    ``FINAL`` is then the cheaper (1.7 s against 2.1 s at the year's store).
    """
    spev = (
        f"arraySort(arrayMap(x -> (tupleElement(x, 1), tupleElement(x, 2), "
        f"{wt.pos_sql(facts.at_us('tupleElement(x, 3)'))}, tupleElement(x, 4)), pause_events))"
    )
    return f"""
SELECT dossier_id, {PAUSE_FOLD_INTERVALS} AS pp,
    tupleElement(pp, 1) AS pause_starts,
    arrayConcat(tupleElement(pp, 2), arrayResize(CAST([], 'Array(Int64)'),
        length(tupleElement(pp, 1)) - length(tupleElement(pp, 2)), toInt64(-1))) AS pause_ends
FROM (SELECT dossier_id, {spev} AS spev FROM dossier_facts FINAL WHERE notEmpty(pause_events))
"""  # noqa: S608


def steps_sql(dossiers: str = "1") -> str:
    """One row per control-sheet step of every dossier (parameters: the calendar and ``asof_pos``).

    ``dossiers``: a condition on ``dossier_id`` (SQL of this package) keeping only some dossiers.

    The step boundaries (hand-overs and handling ends: ``dossier_steps``, kept at load time by
    migration 0006 with :data:`STEP_BOUNDARY_SQL`) are read in (dossier_id, seq) order and each start
    takes the next boundary's time with a window; the pauses come from the per-dossier
    ``dossier_facts`` and are joined to the few paused dossiers.
    """
    pos = wt.pos_sql(facts.at_us("us"))
    due = wt.pos_sql(facts.at_us("assumeNotNull(due_us)"))
    # Fixed SQL built from code; values are bound parameters.
    return f"""
SELECT dossier_id, procedure_code, seq, start_p, start_ts, end_p, end_ts, ended, budget, due_p, due_ts,
    r_actor, r_role, r_unit, g_actor, g_unit, event_type,
    toInt64(if(ended, end_p, greatest({{asof_pos:Int64}}, start_p))) AS stop_p,
    arraySum(arrayMap((a, b) -> greatest(toInt64(0), least(stop_p, if(b < 0, stop_p, b)) - greatest(start_p, a)),
        pause_starts, pause_ends)) AS paused,
    stop_p - start_p - paused AS spent,
    multiIf(NOT ended, 'in_progress',
        isNotNull(budget), multiIf(intDiv(spent, {MINUTE_US}) < budget, 'early',
                                   intDiv(spent, {MINUTE_US}) = budget, 'on_time', 'late'),
        isNotNull(due_ts), multiIf(intDiv(end_ts, {MINUTE_US}) < intDiv(assumeNotNull(due_ts), {MINUTE_US}), 'early',
                                   intDiv(end_ts, {MINUTE_US}) = intDiv(assumeNotNull(due_ts), {MINUTE_US}), 'on_time',
                                   'late'),
        'no_budget') AS outcome,
    if(outcome = 'late', if(isNotNull(budget), spent - assumeNotNull(budget) * {MINUTE_US},
                            greatest(end_p - assumeNotNull(due_p), 0)), 0) AS delay
FROM (
    SELECT dossier_id, procedure_code, seq, p AS start_p, ts AS start_ts, budget, due_p, due_ts,
        r_actor, r_role, r_unit, g_actor, g_unit, event_type, next = 1 AS ended, end_p, end_ts
    FROM (
        SELECT *,
            leadInFrame(toUInt8(1), 1, toUInt8(0)) OVER w AS next,
            leadInFrame(p, 1, toInt64(0)) OVER w AS end_p,
            leadInFrame(ts, 1, toInt64(0)) OVER w AS end_ts
        FROM (
            SELECT dossier_id, procedure_code, seq, event_type, {pos} AS p, us AS ts, is_start, budget,
                if(isNull(due_us), NULL, {due}) AS due_p, due_us AS due_ts, r_actor, r_role, r_unit, g_actor, g_unit
            FROM dossier_steps FINAL
            WHERE {dossiers}
        )
        WINDOW w AS (PARTITION BY dossier_id ORDER BY seq ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
    WHERE is_start
) AS st
LEFT JOIN ({pauses_sql()}) AS pz USING dossier_id
"""  # noqa: S608


def _where(q: AccountabilityQuery) -> tuple[str, dict[str, Any]]:
    where: list[str] = ["1"]
    params: dict[str, Any] = {}
    day = "toDate(toDateTime(intDiv(start_ts, 1000000), 'UTC'), 'Asia/Ho_Chi_Minh')"
    if q.unit:
        where.append(
            "r_unit = {unit:String}" if q.by != "pair" else "(r_unit = {unit:String} OR g_unit = {unit:String})"
        )
        params["unit"] = q.unit
    if q.procedure:
        where.append("procedure_code = {procedure:String}")
        params["procedure"] = q.procedure
    if q.date_from:
        where.append(f"{day} >= {{date_from:Date}}")
        params["date_from"] = q.date_from
    if q.date_to:
        where.append(f"{day} <= {{date_to:Date}}")
        params["date_to"] = q.date_to
    return " AND ".join(where), params


def _holder_sql(keys: str, where: str) -> str:
    return f"""
SELECT {keys},
    countIf(ended) AS steps, countIf(NOT ended) AS in_progress,
    round(sum(spent) / {HOUR_US}, 2) AS held_wh,
    countIf(outcome = 'late') AS late_steps,
    round(if(steps > 0, 100 * late_steps / steps, 0), 2) AS late_pct,
    round(sum(delay) / {HOUR_US}, 2) AS delay_wh,
    uniqExactIf(dossier_id, outcome = 'late') AS late_dossiers,
    if(max(delay) > 0, argMax(dossier_id, delay), '') AS worst_dossier,
    round(max(delay) / {HOUR_US}, 2) AS worst_delay_wh
FROM ({steps_sql()})
WHERE {where}
GROUP BY {keys}
"""  # noqa: S608


#: The dossiers that ever passed from one unit to another: a stay's first step has its giver's unit
#: (``g_unit``) other than the receiver's, so no other dossier has a pair to count (7 % of them on the
#: simulated city).
_CROSSING: Final = "dossier_id IN (SELECT dossier_id FROM dossier_steps WHERE g_unit != '' AND g_unit != r_unit)"


def _pair_sql(where: str) -> str:
    window = "PARTITION BY dossier_id ORDER BY seq"
    return f"""
SELECT from_unit, to_unit, count() AS handovers,
    round(quantileExact(0.5)(first_us) / {HOUR_US}, 2) AS first_action_median_wh,
    round(quantileExact(0.9)(first_us) / {HOUR_US}, 2) AS first_action_p90_wh,
    round(quantileExact(0.5)(stay_us) / {HOUR_US}, 2) AS in_unit_median_wh,
    round(quantileExact(0.9)(stay_us) / {HOUR_US}, 2) AS in_unit_p90_wh,
    countIf(stay_late) AS late_stays,
    round(100 * late_stays / handovers, 2) AS late_pct,
    if(max(stay_delay) > 0, argMax(dossier_id, stay_delay), '') AS worst_dossier,
    round(max(stay_delay) / {HOUR_US}, 2) AS worst_delay_wh
FROM (
    SELECT dossier_id, stay, argMin(g_unit, seq) AS from_unit, any(r_unit) AS to_unit, argMin(spent, seq) AS first_us,
        sum(spent) AS stay_us, max(outcome = 'late') AS stay_late, sum(delay) AS stay_delay, min(start_ts) AS start_ts,
        any(procedure_code) AS procedure_code, any(g_unit) AS g_any
    FROM (
        SELECT *, sum(toUInt32(r_unit != prev_unit)) OVER (
            {window} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS stay
        FROM (
            SELECT *, lagInFrame(r_unit, 1, '') OVER ({window} ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_unit
            FROM ({steps_sql(_CROSSING)})
        )
    )
    GROUP BY dossier_id, stay
)
WHERE from_unit != '' AND from_unit != to_unit AND {where.replace("r_unit", "to_unit").replace("g_unit", "from_unit")}
GROUP BY from_unit, to_unit
"""  # noqa: S608


@dataclasses.dataclass(frozen=True)
class AccountabilityReport:
    rows: list[dict[str, Any]]
    as_of: datetime | None
    query: AccountabilityQuery
    findings_hook: str


KEYS: Final = {"official": "r_actor, r_role, r_unit", "unit": "r_unit"}
RENAMES: Final = {"r_actor": "actor_id", "r_role": "role", "r_unit": "unit_code"}


def compute_accountability(
    store: Store, q: AccountabilityQuery, findings: FindingsFn | None = None
) -> AccountabilityReport:
    """The ranked report: most delay first, then most late steps, then a stable key."""
    as_of, as_of_pos = facts.as_of_position(store, q.as_of)
    where, params = _where(q)
    params.update(wt.params(), asof_pos=as_of_pos)
    if q.by == "pair":
        rows = store.query(_pair_sql(where), params).named()
        rows.sort(key=lambda r: (-r["late_stays"], -r["in_unit_p90_wh"], r["from_unit"], r["to_unit"]))
    else:
        rows = [
            {RENAMES.get(k, k): v for k, v in r.items()}
            for r in store.query(_holder_sql(KEYS[q.by], where), params).named()
        ]
        key = "actor_id" if q.by == "official" else "unit_code"
        rows.sort(
            key=lambda r: (-r["delay_wh"], -r["late_steps"], str(r[key]), str(r.get("unit_code")), str(r.get("role")))
        )
    hook = "none"
    if findings is not None and q.by != "pair":
        hook = _attach_findings(rows, findings, q)
    for n, row in enumerate(rows, start=1):
        row["rank"] = n
        row["evidence"] = f"dossier inspect replay {row['worst_dossier']}" if row.get("worst_dossier") else ""
    if q.limit is not None:
        rows = rows[: q.limit]
    return AccountabilityReport(rows, as_of, q, hook)


def _attach_findings(rows: list[dict[str, Any]], findings: FindingsFn, q: AccountabilityQuery) -> str:
    """Add ``findings`` (total) and ``findings_by_rule`` ("R10:3 R1:1") to each official's or unit's row."""
    counts: dict[tuple[str, ...], dict[str, int]] = {}
    for rule, unit_code, actor_id in findings():
        key = (actor_id or "",) if q.by == "official" else (unit_code,)
        by_rule = counts.setdefault(key, {})
        by_rule[rule] = by_rule.get(rule, 0) + 1
    for row in rows:
        key = (str(row["actor_id"]),) if q.by == "official" else (str(row["unit_code"]),)
        by_rule = counts.get(key, {})
        row["findings"] = sum(by_rule.values())
        row["findings_by_rule"] = " ".join(
            f"{r}:{n}" for r, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))
        )
    return "inspection.audit (every rule of the catalogue over the same selection)"
