"""Index-766-style scorecards computed from the event log, one ClickHouse pass.

The national index (QĐ 766/QĐ-TTg, domain.md §d) scores units from the data
synchronised to the national portal. The indicators the events can support
(:mod:`inspection.indicators`) are computed per dossier
(:mod:`inspection.dossier_facts`), then added up here per unit and period:

* a dossier belongs to the unit that received it (its ``DossierReceived``),
  rolled up to the unit's ancestor at the chosen level (``--level``), and to
  the period of its reception date (Asia/Ho_Chi_Minh): a cohort view, so a
  second inspector gets the same figures whatever day the report is run;
* its outcome is judged on its whole stored history with
  :data:`schemas.rulebook.ON_TIME_2_1`, the exact definition the simulator is
  calibrated against (dossiers still in progress are judged at ``as_of``, by
  default the latest ``occurred_at`` in the store).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, Literal

from dossier_runtime.store import Store
from inspection import worktime_sql as wt
from inspection.dossier_facts import WD_US, as_of_position, facts_sql
from inspection.indicators import BY_COLUMN, INDICATORS, Indicator, max_points

__all__ = [
    "BY_COLUMN",
    "INDICATORS",
    "LEVELS",
    "PERIODS",
    "Indicator",
    "Scorecard",
    "ScorecardQuery",
    "as_of_position",
    "compute_scorecard",
    "max_points",
]

Level = Literal["city", "department", "district", "commune"]
Period = Literal["month", "quarter", "year", "all"]
LEVELS: Final = ("city", "department", "district", "commune")
PERIODS: Final = ("month", "quarter", "year")


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

    def coverage(self) -> dict[str, dict[str, Any]]:
        """Per indicator that can lose dossiers to an unknown fact: on how many of the received it stands."""
        received = sum(int(r["received"]) for r in self.rows)
        out = {}
        for ind, (column, fact) in JUDGED.items():
            judged = sum(int(r[column]) for r in self.rows)
            out[ind] = {
                "assessed": judged,
                "not_assessable": {f"{fact} unknown": received - judged} if received - judged else {},
            }
        return out


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
    countIf(complained) AS n_complained, sum(rating_n) AS n_ratings, sum(rating_sum) AS sum_rating,
    countIf(due_unknown) AS n_due_unknown, countIf(late AND NOT due_unknown) AS n_late_known,
    countIf(result_unknown) AS n_result_unknown, countIf(digitised_ok AND NOT result_unknown) AS n_digitised_known
FROM ({facts_sql(procedure=q.procedure is not None)}) AS f
WHERE {" AND ".join(where)}
GROUP BY r_grp, period
"""  # noqa: S608


#: Indicator id -> (row column holding the dossiers it is computed on, the fact whose absence leaves one out).
JUDGED: Final = {"2.1": ("on_time_of", "due_at"), "4.2": ("digitised_of", "result_electronic")}


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


def _pct(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 4) if den else None


def _row(grp: str, name: str, r: Mapping[str, Any]) -> dict[str, Any]:
    received, late = int(r["n_received"]), int(r["n_late_known"])
    complained, completed, ratings = int(r["n_complained"]), int(r["n_completed"]), int(r["n_ratings"])
    timed = received - int(r["n_due_unknown"])  # dossiers whose due date the source said
    judged_digitised = received - int(r["n_result_unknown"])
    row: dict[str, Any] = {
        "unit_code": grp,
        "unit_name": name,
        "period": r["period"],
        "received": received,
        "on_time_pct": _pct(timed - late, timed),
        "on_time_of": timed,
        "late": late,
        "apology_pct": _pct(int(r["n_late_apologised"]), late),
        "apology_timely_pct": _pct(int(r["n_late_apology_timely"]), late),
        "avg_handling_wd": round(int(r["sum_handling_us"]) / WD_US / completed, 3) if completed else None,
        "online_pct": _pct(int(r["n_online"]), received),
        "online_full_pct": _pct(int(r["n_online_full"]), received),
        "online_partial_pct": _pct(int(r["n_online_partial"]), received),
        "digitised_pct": _pct(int(r["n_digitised_known"]), judged_digitised),
        "digitised_of": judged_digitised,
        "paid_online_pct": _pct(int(r["n_paid_online"]), int(r["n_fee_bearing"])),
        "fee_bearing": int(r["n_fee_bearing"]),
        "satisfaction_pct": round(max(0.0, 100.0 - 100.0 * (late + complained) / received), 4) if timed else None,
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
