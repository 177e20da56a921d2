"""Every option that reaches a query binds its value: hostile values through each of them inject nothing.

Each value goes through each free-text option of the reading commands (units, procedures, rule parameters, dossier
ids, console parameters) against one store: it is a value that matches nothing, which the command says (exit 1),
or a value the option refuses (exit 2); never rows, never a traceback, and the store is unchanged afterwards.
RELIABILITY.md counts the runs (values × options) with the console's hostile-statement table
(``tests/test_sql_guard.py``). CI runs four of the values through every option (each run opens the store: the
whole table takes about 16 minutes on a loaded 2-core machine); ``DOSSIER_HOSTILE_VALUES=all`` runs every one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

import click
import pytest

from inspection.cli_accountability import accountability_cmd
from inspection.cli_audit import audit_cmd
from inspection.cli_export import export_cmd
from inspection.cli_process import flow_cmd, variants_cmd
from inspection.cli_replay import replay_cmd
from inspection.cli_scorecard import scorecard_cmd
from inspection.cli_sql import sql_cmd
from inspection.cli_verify import verify_cmd
from tests.test_scorecard_support import invoke, reading, simulated

#: Quoting, comments, statement breaks, placeholders, format tricks, encodings, sizes.
HOSTILE_VALUES: Final = [
    "x' OR '1'='1",
    "x' OR 1=1 --",
    "x') OR ('1'='1",
    "'; DROP TABLE events; --",
    "x'; INSERT INTO units (unit_code) VALUES ('evil'); --",
    '" OR ""="',
    "x\\' OR 1=1 --",
    "\\",
    "'",
    "''",
    "`events`",
    "x/* comment */",
    "x -- comment",
    "x # comment",
    "{unit:String}",
    "{x:Identifier}",
    "x}' OR {y:String}",
    "%s",
    "?",
    "$1",
    "x' UNION SELECT applicant_ref, 1 FROM events --",
    "x' || file('/etc/passwd') || '",
    "x' SETTINGS readonly=0 --",
    "x\nSELECT 1",
    "x\r\nDROP TABLE events",
    "x\x00y",
    "\u202eevil",
    "ＯＲ １＝１",
    "x' AND sleep(3) --",
    "0x27204f52202731273d2731",
    "%27%20OR%20%271%27%3D%271",
    "*",
    "%",
    "_",
    "000.00.31.H29' OR '1'='1",
    "1.001612' OR '1'='1",
    "x" * 10_000,
]

#: What CI runs: a quote, a statement break, a placeholder, an escaped quote.
VALUES: Final = (
    HOSTILE_VALUES
    if os.environ.get("DOSSIER_HOSTILE_VALUES") == "all"
    else [HOSTILE_VALUES[0], HOSTILE_VALUES[3], HOSTILE_VALUES[14], HOSTILE_VALUES[6]]
)

#: (command, options before the value) for every free-text option that reaches a query.
RUNS: Final[list[tuple[click.Command, Sequence[str], str]]] = [
    (scorecard_cmd, ["--unit"], ""),
    (scorecard_cmd, ["--procedure"], ""),
    (accountability_cmd, ["--unit"], ""),
    (accountability_cmd, ["--procedure"], ""),
    (variants_cmd, ["--unit"], ""),
    (variants_cmd, ["--procedure"], ""),
    (flow_cmd, ["--unit"], ""),
    (flow_cmd, ["--procedure"], ""),
    (export_cmd, ["--format", "jsonl", "--unit"], ""),
    (export_cmd, ["--format", "csv", "--procedure"], ""),
    (audit_cmd, ["--unit"], ""),
    (audit_cmd, ["--procedure"], ""),
    (audit_cmd, ["--param"], "max_apologies="),
    (replay_cmd, [], ""),
    (verify_cmd, ["--dossier"], ""),
]


@pytest.mark.parametrize(("command", "before", "prefix"), RUNS, ids=[f"{c.name} {' '.join(b)}" for c, b, _ in RUNS])
def test_hostile_values_through_every_option_select_nothing(
    tmp_path_factory: pytest.TempPathFactory, command: click.Command, before: Sequence[str], prefix: str
) -> None:
    data, summary = simulated(tmp_path_factory, dossiers=200)
    fmt = [] if command is export_cmd else ["--format", "json"]
    for value in VALUES:
        result = invoke(command, data, *before, prefix + value, *fmt, "-q")
        assert result.exit_code in (1, 2), (value, result.exit_code, result.output[:500])
        assert result.stdout == "", (value, result.stdout[:500])
    with reading(data) as store:
        assert store.query("SELECT count() FROM events").scalar() == summary["counts"]["events"]
        assert store.query("SELECT count() FROM units WHERE unit_code = 'evil'").scalar() == 0


def test_hostile_console_parameters_come_back_as_values(tmp_path_factory: pytest.TempPathFactory) -> None:
    import json

    data, _ = simulated(tmp_path_factory, dossiers=200)
    for value in VALUES:
        result = invoke(sql_cmd, data, "SELECT {v:String} AS v", "--param", f"v={value}", "--format", "json", "-q")
        assert result.exit_code == 0, (value, result.output[:300])
        assert json.loads(result.stdout)["rows"] == [{"v": value}]
