"""Accountability: the SQL steps agree with the control sheet, delays go to whoever overran, ranked output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inspection import worktime_sql as wt
from inspection.accountability import MINUTE_US, AccountabilityQuery, compute_accountability, steps_sql
from inspection.cli_accountability import accountability_cmd
from inspection.controlsheet import build_control_sheet
from inspection.history import load_history
from tests.test_scorecard_support import invoke, json_out, reading, simulated

FAR: datetime = datetime(2030, 1, 1, tzinfo=UTC)


def _sample(store, where: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    sql = f"SELECT DISTINCT dossier_id FROM events WHERE {where} ORDER BY dossier_id LIMIT {n}"
    return [r[0] for r in store.query(sql).rows]


def test_steps_agree_with_the_control_sheet(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory, violations="all", dossiers=3000)
    with reading(data) as store:
        ids = _sample(store, "event_type IN ('InterAgencyTransferred', 'SupplementRequested', 'StepReturned', "
                      "'FinancialObligationRequested')", 60)  # fmt: skip
        ids += _sample(store, "event_type = 'ApologyIssued'", 20) + _sample(store, "seq = 1", 40)
        far = wt.params()
        rows = store.query(
            f"SELECT dossier_id, seq, r_actor, r_unit, spent, paused, outcome, delay FROM ({steps_sql()}) "
            "WHERE dossier_id IN {ids:Array(String)} ORDER BY dossier_id, seq",
            {**far, "asof_pos": 0, "ids": ids},
        ).rows
        sheets = {d: build_control_sheet(load_history(store, d), now=FAR) for d in set(ids)}
    got = {(d, s): (a, u, sp, pa, o, de) for d, s, a, u, sp, pa, o, de in rows}
    checked = late = 0
    for dossier, sheet in sheets.items():
        for step in sheet.steps:
            if step.ended_at is None:
                continue
            actor, unit, spent, paused, outcome, delay = got[(dossier, step.seq)]
            assert (actor or None, unit) == (step.receiver.actor_id, step.receiver.unit_code), (dossier, step.seq)
            assert spent == step.spent // timedelta(microseconds=1), (dossier, step.seq)
            assert paused == step.paused // timedelta(microseconds=1), (dossier, step.seq)
            assert outcome == step.outcome, (dossier, step.seq)
            if outcome == "late" and step.budget is not None:
                late += 1
                assert delay == spent - (step.budget // timedelta(minutes=1)) * MINUTE_US
            checked += 1
    assert checked > 300 and late > 0


def test_delay_is_charged_to_whoever_overran_not_the_last_in_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory, violations="all", dossiers=3000)
    with reading(data) as store:
        report = compute_accountability(store, AccountabilityQuery(by="official"))
        late = store.query(
            f"SELECT dossier_id, r_actor, seq, max(seq) OVER (PARTITION BY dossier_id) AS last_seq, delay "
            f"FROM ({steps_sql()}) WHERE outcome = 'late' AND isNotNull(budget)",
            {**wt.params(), "asof_pos": 0},
        ).rows
    charged: dict[str, float] = {}
    for r in report.rows:
        charged[r["actor_id"]] = charged.get(r["actor_id"], 0.0) + r["delay_wh"]
    for _dossier, actor, _seq, _last, delay in late:
        assert charged[actor] > 0, actor
        assert delay > 0
    assert any(seq < last for _d, _a, seq, last, _x in late), "some overrun happens before the last step"
    delays = [r["delay_wh"] for r in report.rows]
    assert delays == sorted(delays, reverse=True)
    assert report.rows[0]["evidence"].startswith("dossier inspect replay ")


def test_units_and_pairs(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    units = json_out(invoke(accountability_cmd, data, "--by", "unit", "--no-findings", "--format", "json", "-q"))
    assert units["rows"] and {"unit_code", "steps", "held_wh", "delay_wh"} <= set(units["rows"][0])
    pairs = json_out(invoke(accountability_cmd, data, "--by", "pair", "--format", "json", "-q"))["rows"]
    assert pairs and all(p["from_unit"] != p["to_unit"] for p in pairs)
    assert all(p["first_action_median_wh"] <= p["first_action_p90_wh"] for p in pairs)
    assert all(p["in_unit_median_wh"] <= p["in_unit_p90_wh"] for p in pairs)
    one = pairs[0]["to_unit"]
    only = json_out(invoke(accountability_cmd, data, "--by", "pair", "--unit", one, "--format", "json", "-q"))["rows"]
    assert only and all(one in (p["from_unit"], p["to_unit"]) for p in only)


def test_period_filter_and_findings(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    whole = json_out(invoke(accountability_cmd, data, "--no-findings", "--format", "json", "-q"))["rows"]
    march = json_out(invoke(accountability_cmd, data, "--no-findings", "--from", "2023-03-01", "--to", "2023-03-31",
                            "--format", "json", "-q"))["rows"]  # fmt: skip
    assert 0 < sum(r["steps"] for r in march) < sum(r["steps"] for r in whole)
    try:
        import inspection.audit  # noqa: F401
    except ImportError:
        pytest.skip("the audit library is not importable right now")
    with_findings = invoke(accountability_cmd, data, "--limit", "5", "--format", "json", "-q")
    rows = json_out(with_findings)["rows"]
    assert all("findings_by_rule" in r for r in rows)


def test_pairs_read_only_the_dossiers_that_cross_units_and_lose_none(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspection import accountability

    data, _ = simulated(tmp_path_factory)
    with reading(data) as store:
        query = AccountabilityQuery(by="pair")
        fast = compute_accountability(store, query).rows
        monkeypatch.setattr(accountability, "_CROSSING", "1")  # every dossier, as before the prefilter
        every = compute_accountability(store, query).rows
        crossing = store.query(
            "SELECT uniqExact(dossier_id) FROM dossier_steps WHERE g_unit != '' AND g_unit != r_unit"
        ).scalar()
        total = store.query("SELECT uniqExact(dossier_id) FROM dossier_steps").scalar()
    assert fast and fast == every
    assert 0 < crossing < total  # the prefilter keeps a part of the dossiers, not all of them
