"""Working time in ClickHouse SQL agrees with the Python calendar, case by case."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import pytest

from inspection.worktime_sql import add_working_days_sql, add_working_us_sql, params, working_us_sql
from schemas.workingtime import HCMC_TZ, default_calendar

CAL = default_calendar()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path_factory.mktemp("wt") / "chdb"))
    yield c
    c.close()


def _random_instants(n: int, seed: int) -> list[datetime]:
    rng = random.Random(seed)
    start = datetime(2019, 1, 1, tzinfo=UTC)
    out = []
    for _ in range(n):
        t = start + timedelta(seconds=rng.randrange(0, 7 * 365 * 86400), microseconds=rng.randrange(0, 10**6))
        if rng.random() < 0.3:  # land on interesting clock times too
            local = t.astimezone(HCMC_TZ)
            hour, minute = rng.choice([(7, 0), (11, 30), (13, 30), (17, 0), (12, 0), (6, 59), (17, 1)])
            t = local.replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(UTC)
        out.append(t)
    return out


def _aware(value: datetime) -> datetime:
    """clickhouse-connect's chDB client returns UTC timestamps without tzinfo."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def test_working_time_between_matches_python(client: Any) -> None:
    a_list, b_list = _random_instants(400, 1), _random_instants(400, 2)
    sql = (
        "SELECT " + working_us_sql("a", "b") + " FROM (SELECT arrayJoin(arrayZip({a:Array(DateTime64(6,'UTC'))}, "
        "{b:Array(DateTime64(6,'UTC'))})) AS p, tupleElement(p, 1) AS a, tupleElement(p, 2) AS b)"
    )
    rows = client.query(sql, parameters={**params(), "a": a_list, "b": b_list}).result_rows
    for (got,), a, b in zip(rows, a_list, b_list, strict=True):
        assert got == CAL.working_time_between(a, b) // timedelta(microseconds=1), (a, b)


@pytest.mark.parametrize("delta_hours", [0.5, 3, 8, 24, 100, -8, -1.25])
def test_adding_working_time_matches_python(client: Any, delta_hours: float) -> None:
    instants = _random_instants(200, 3)
    delta_us = int(delta_hours * 3600 * 10**6)
    expr = add_working_us_sql("t", str(delta_us))
    sql = f"SELECT {expr} FROM (SELECT arrayJoin({{ts:Array(DateTime64(6,'UTC'))}}) AS t)"
    rows = client.query(sql, parameters={**params(), "ts": instants}).result_rows
    for (got,), t in zip(rows, instants, strict=True):
        assert _aware(got) == CAL.add_working_time(t, timedelta(hours=delta_hours)), t


def test_tet_2024_due_date_in_sql(client: Any) -> None:
    received = datetime(2024, 2, 7, 16, tzinfo=HCMC_TZ)
    sql = f"SELECT {add_working_days_sql('{r:DateTime64(6,' + chr(39) + 'UTC' + chr(39) + ')}', '3')}"
    (got,) = client.query(sql, parameters={**params(), "r": received}).result_rows[0]
    assert _aware(got) == datetime(2024, 2, 19, 16, tzinfo=HCMC_TZ)
