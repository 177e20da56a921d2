"""Output for people (#19 §2): tables fit the terminal, listings are limited, the header is a short block,
and machine formats are unchanged.

Widths through CliRunner's env: ``COLUMNS`` is what a terminal sets; without it, off a terminal, 100.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dossier_audit.cli import main
from schemas.rendering import DEFAULT_LIMIT, DEFAULT_WIDTH, render, render_records, render_table, table_width
from tests.test_scorecard_support import reading, simulated

ROWS = [
    {"id": "000.00.31.H29-230207-0042", "n": 12345, "note": "a long explanation " * 8, "code": "R1"},
    {"id": "000.00.31.H29-230207-0043", "n": 7, "note": "short", "code": "INTEGRITY-HASH"},
]


def lines(text: str) -> list[str]:
    return text.splitlines()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_table_fits_by_cutting_prose_with_an_ellipsis_never_identifiers_or_numbers() -> None:
    table = render_table(ROWS, ["id", "n", "note", "code"], 80)
    assert max(len(line) for line in lines(table)) <= 80
    assert "000.00.31.H29-230207-0042" in table and "12345" in table and "INTEGRITY-HASH" in table
    assert "  a long explanation a long exp…  R1" in table
    wide = render_table(ROWS, ["id", "n", "note", "code"])  # --wide: every character
    assert ("a long explanation " * 8).rstrip() in wide and "…" not in wide


def test_columns_that_cannot_fit_are_left_out_named_and_the_chosen_ones_first() -> None:
    table = render_table(ROWS, ["id", "n", "note", "code"], 45, hide_first=["n"])
    assert lines(table)[0].split() == ["id", "code"]
    assert flat(table).endswith("(2 more column(s): n, note; --wide shows every column)")
    assert max(len(line) for line in lines(table)) <= 45
    roomier = render_table(ROWS, ["id", "n", "note", "code"], 50, hide_first=["n"])
    assert lines(roomier)[0].split() == ["id", "n", "code"]  # put back where it fits after all


def test_machine_formats_are_never_fitted() -> None:
    assert json.loads(render(ROWS, "json", width=20)) == ROWS
    assert next(csv.DictReader(io.StringIO(render(ROWS, "csv", width=20))))["note"] == ROWS[0]["note"]


def test_records_wrap_prose_to_the_width() -> None:
    text = render_records(ROWS, ["id", "note"], 40)
    assert max(len(line) for line in lines(text)) <= 40
    assert " ".join(text.split()).count("a long explanation") == 8


def test_the_width_is_columns_else_the_terminal_else_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert table_width() == 80
    monkeypatch.delenv("COLUMNS")
    assert table_width() == DEFAULT_WIDTH == 100  # pytest's stdout is no terminal


def dossier(data: Path, *args: str, columns: str | None = None) -> Result:
    env = {"COLUMNS": columns} if columns else {}
    return CliRunner().invoke(main, ["--data-dir", str(data), "inspect", *args], env=env)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated(tmp_path_factory)[0]


@pytest.mark.parametrize("columns", ["80", "100", None])
@pytest.mark.parametrize(
    "command",
    [
        ["accountability"],
        ["accountability", "--by", "pair"],
        ["scorecard", "--level", "district"],
        ["variants"],
        ["audit", "--no-fail"],
        ["verify"],
        ["flow", "--view", "handovers"],
        ["rules"],
        ["rules", "--full"],
    ],
    ids=" ".join,
)
def test_every_table_fits_the_terminal(data: Path, command: list[str], columns: str | None) -> None:
    out = dossier(data, *command, "-q" if command[0] != "rules" else "--format=table", columns=columns)
    assert out.exit_code in (0, 3), out.output
    width = int(columns or DEFAULT_WIDTH)
    too_wide = [line for line in lines(out.stdout) if len(line) > width]
    assert not too_wide, too_wide
    assert "{'" not in out.stdout  # no Python reprs in the header


def test_a_long_listing_is_limited_on_a_table_and_says_how_to_see_all(data: Path) -> None:
    everything = json.loads(dossier(data, "accountability", "--no-findings", "--format", "json", "-q").stdout)["rows"]
    assert len(everything) > DEFAULT_LIMIT  # machine formats: every row unless --limit says otherwise
    table = dossier(data, "accountability", "--no-findings", "-q", columns="80").stdout
    body = lines(table)[lines(table).index("") + 3 :]  # after the header block, the column names and the rule
    assert body[-1] == f"({len(everything) - DEFAULT_LIMIT:,} more; use --limit 0 for all)"
    assert len([line for line in body if line[:1] not in ("(", " ")]) == DEFAULT_LIMIT
    every = dossier(data, "accountability", "--no-findings", "-q", "--limit", "0").stdout
    assert "more; use --limit 0" not in every and len(lines(every)) > len(everything)
    five = dossier(data, "accountability", "--no-findings", "-q", "--limit", "5", "--format", "csv").stdout
    assert len(lines(five)) == 6  # the header and five rows, no note in a machine format


def test_wide_shows_every_column_in_full(data: Path) -> None:
    fitted = dossier(data, "accountability", "--no-findings", "-q", columns="80").stdout
    wide = dossier(data, "accountability", "--no-findings", "-q", "--wide", columns="80").stdout
    assert "more column(s)" in fitted and "more column(s)" not in wide
    header = next(line for line in lines(wide) if line.startswith("actor_id"))
    assert header.split() == [
        "actor_id", "role", "unit_code", "rank", "steps", "in_progress", "held_wh", "late_steps", "late_pct",
        "delay_wh", "late_dossiers", "worst_delay_wh", "evidence",
    ]  # fmt: skip
    assert max(len(line) for line in lines(wide)) > 80


def test_the_header_is_a_short_block_and_machine_formats_keep_the_full_record(data: Path) -> None:
    table = dossier(data, "audit", "R1", "R9", "--unit-level", "district", "--no-fail", "-q", columns="80").stdout
    head = lines(table)[1 : lines(table).index("")]
    assert head[0].startswith("computed on ") and " events of " in flat(" ".join(head[:3]))
    assert any(line.startswith("data as of ") for line in head)
    assert any(line.startswith("selection ") and "unit_level district" in line for line in head)
    assert any(line.startswith("rules ") and "v1: R1, R9" in line for line in head)
    assert "kafka" not in table and "offsets" not in table
    csv_run = dossier(data, "audit", "R1", "--no-fail", "--format", "csv")
    record = json.loads(csv_run.stderr.split("computed on: ", 1)[1].splitlines()[0])
    assert record["rules"] == {"R1": 1} and "kafka_offsets" in record and "params" in record


@pytest.mark.parametrize(
    "command",
    [["scorecard"], ["accountability"], ["variants"], ["audit", "R1"], ["flow"]],
    ids=" ".join,
)
def test_a_unit_that_matches_nothing_is_named(data: Path, command: list[str]) -> None:
    out = dossier(data, *command, "--unit", "000.00.99.H29", "-q")
    assert out.exit_code == 1, out.output
    assert "--unit 000.00.99.H29: no dossier in the store" in out.output and "nothing to report" in out.output


def test_known_at_alone_judges_at_the_end_of_what_was_known_not_today(data: Path) -> None:
    with reading(data) as store:
        dossier_id, received = store.query(
            "SELECT dossier_id, min(occurred_at) FROM events GROUP BY dossier_id "
            "HAVING countIf(event_type = 'ResultReturned') = 1 ORDER BY dossier_id LIMIT 1"
        ).rows[0]
    known = received.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    sheet = json.loads(dossier(data, "replay", dossier_id, "--known-at", known, "--format", "json").stdout)
    as_of = datetime.fromisoformat(sheet["as_of"])
    assert as_of <= datetime.fromisoformat(known)
    assert sheet["verdict"]["late_by_minutes"] == 0  # judged then, not years later by today's clock
    table = dossier(data, "replay", dossier_id, "--known-at", known).stdout
    assert "view: as of " in table and "as of now" not in table


def test_calendar_show_names_its_sources_in_the_table() -> None:
    out = CliRunner().invoke(main, ["calendar", "show", "2024"], env={"COLUMNS": "80"})
    assert out.exit_code == 0
    assert " src" in lines(out.stdout)[1] and "[1]" in out.stdout
    assert "Sources:" in out.stdout and "Bộ luật Lao động 2019" in out.stdout
    assert max(len(line) for line in lines(out.stdout)) <= 80
