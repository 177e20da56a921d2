"""``inspect sql``: bound parameters, read-only refusals; hostile input through every option of these commands."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from inspection.cli_accountability import accountability_cmd
from inspection.cli_export import export_cmd
from inspection.cli_process import flow_cmd, variants_cmd
from inspection.cli_scorecard import scorecard_cmd
from inspection.cli_sql import sql_cmd
from tests.test_scorecard_support import invoke, json_out, reading, simulated

HOSTILE = "x' OR '1'='1"


def test_parameters_are_bound_server_side(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    with reading(data) as store:
        some = store.query("SELECT dossier_id FROM events ORDER BY dossier_id LIMIT 1").scalar()
    sql = "SELECT seq, event_type FROM events WHERE dossier_id = {id:String} ORDER BY seq"
    rows = json_out(invoke(sql_cmd, data, sql, "--param", f"id={some}", "--format", "json", "-q"))["rows"]
    assert rows and rows[0]["seq"] == 1
    hostile = json_out(invoke(sql_cmd, data, sql, "--param", f"id={HOSTILE}", "--format", "json", "-q"))
    assert hostile["rows"] == []
    echoed = json_out(invoke(sql_cmd, data, "SELECT {v:String} AS v", "--param", f"v={HOSTILE}", "--format", "json"))
    assert echoed["rows"] == [{"v": HOSTILE}]
    typed = invoke(sql_cmd, data, "SELECT {n:UInt32} AS n", "--param", f"n={HOSTILE}")
    assert typed.exit_code == 1 and "cannot be parsed as UInt32" in typed.output


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("DROP TABLE events", "DROP is not a reading statement"),
        ("INSERT INTO units (unit_code) VALUES ('x')", "INSERT is not a reading statement"),
        ("SELECT count() FROM events SETTINGS readonly = 0", "SETTINGS clauses are not allowed"),
        ("SELECT file('/etc/hostname')", "function file() is not allowed"),
        ("SELECT count() FROM numbers(1000000000000)", "--max-rows-to-read"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "table function file() is not allowed"),
        ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')", "table function url() is not allowed"),
        ("SELECT 1 INTO OUTFILE 'leak.txt'", "INTO OUTFILE is not allowed"),
        ("SELECT 1; DROP TABLE events", "one statement at a time"),
        ("SELECT 1 FORMAT CSV", "--format"),
        ("SELECT {missing:String}", "--param missing=VALUE"),
    ],
)
def test_writes_and_escapes_are_refused_with_a_sentence(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, message: str
) -> None:
    data, summary = simulated(tmp_path_factory)
    monkeypatch.chdir(tmp_path)
    result = invoke(sql_cmd, data, query, "-q")
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "leak.txt").exists()
    with reading(data) as store:
        assert store.query("SELECT count() FROM events").scalar() == summary["counts"]["events"]


def test_max_rows_stops_and_says_so(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    result = invoke(sql_cmd, data, "SELECT number FROM numbers(50)", "--max-rows", "7", "--format", "csv")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["number", *map(str, range(7))]
    assert "stopped at 7 rows" in result.stderr


HOSTILE_RUNS = [
    (scorecard_cmd, ["--unit", HOSTILE]),
    (scorecard_cmd, ["--procedure", HOSTILE]),
    (scorecard_cmd, ["--level", "district", "--procedure", HOSTILE, "--period", "month"]),
    (accountability_cmd, ["--unit", HOSTILE, "--no-findings"]),
    (accountability_cmd, ["--procedure", HOSTILE, "--no-findings"]),
    (accountability_cmd, ["--by", "pair", "--unit", HOSTILE]),
    (accountability_cmd, ["--by", "unit", "--unit", HOSTILE, "--procedure", HOSTILE, "--no-findings"]),
    (variants_cmd, ["--unit", HOSTILE]),
    (variants_cmd, ["--procedure", HOSTILE, "--by", "all"]),
    (flow_cmd, ["--unit", HOSTILE]),
    (flow_cmd, ["--view", "handovers", "--procedure", HOSTILE]),
    (export_cmd, ["--format", "jsonl", "--unit", HOSTILE]),
    (export_cmd, ["--format", "ocel", "--procedure", HOSTILE]),
]


@pytest.mark.parametrize(
    ("command", "args"),
    HOSTILE_RUNS,
    ids=[f"{c.name} {' '.join(a[:-1] if a[-1] == HOSTILE else a)}" for c, a in HOSTILE_RUNS],
)
def test_hostile_values_select_nothing_and_break_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    command: click.Command,
    args: list[str],
) -> None:
    """A hostile value is a value: it matches no dossier, which the command says (exit 1), and changes nothing."""
    data, summary = simulated(tmp_path_factory)
    fmt = [] if command is export_cmd else ["--format", "json"]
    result = invoke(command, data, *args, *fmt, "-q")
    assert result.exit_code == 1, result.output
    assert "no dossier in the store" in result.output and "nothing to report" in result.output
    assert result.stdout == ""
    with reading(data) as store:
        assert store.query("SELECT count() FROM events").scalar() == summary["counts"]["events"]


def test_hostile_dates_and_choices_are_usage_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    for command, args in [
        (scorecard_cmd, ["--from", HOSTILE]),
        (scorecard_cmd, ["--level", HOSTILE]),
        (accountability_cmd, ["--to", HOSTILE]),
        (accountability_cmd, ["--by", HOSTILE]),
        (variants_cmd, ["--unit-level", HOSTILE]),
        (flow_cmd, ["--view", HOSTILE]),
        (export_cmd, ["--format", HOSTILE]),
        (sql_cmd, ["SELECT 1", "--param", HOSTILE]),
    ]:
        assert invoke(command, data, *args).exit_code == 2, (command.name, args)
