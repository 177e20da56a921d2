"""No "OK" about nothing: a subject that does not exist is named and exits 1, and a reading command never creates
a store where it was pointed by mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dossier_audit.cli import main
from tests.test_scorecard_support import simulated

READING = [
    ["inspect", "audit", "R1"],
    ["inspect", "replay", "000.00.31.H29-240207-0042"],
    ["inspect", "scorecard"],
    ["inspect", "verify"],
    ["inspect", "sql", "SELECT 1"],
    ["inspect", "export", "--format", "csv"],
    ["inspect", "flow"],
    ["consume", "status"],
]


@pytest.mark.parametrize("args", READING, ids=lambda a: " ".join(a[:2]))
def test_a_mistyped_data_directory_is_named_and_not_created(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "dosier-data"
    out = CliRunner().invoke(main, ["--data-dir", str(typo), *args])
    assert out.exit_code == 1, out.output
    assert f"no store in {typo}: the directory does not exist" in out.output
    assert "Traceback" not in out.output
    assert not typo.exists()


def test_an_empty_directory_is_named_too(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "inspect", "verify"])
    assert out.exit_code == 1
    assert f"no store in {tmp_path}: the directory holds no store" in out.output
    assert list(tmp_path.iterdir()) == []


def test_verify_of_a_dossier_that_is_not_there_is_not_ok(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    out = CliRunner().invoke(
        main, ["--data-dir", str(data), "inspect", "verify", "--dossier", "000.00.99.H29-240101-0001"]
    )
    assert out.exit_code == 1
    assert "no events of dossier 000.00.99.H29-240101-0001 in the store" in out.output
    assert "OK" not in out.output


def test_verify_says_how_much_it_checked(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, summary = simulated(tmp_path_factory)
    out = CliRunner().invoke(main, ["--data-dir", str(data), "inspect", "verify", "-q"])
    events = summary["counts"]["events"]  # the simulation injects an altered event: a problem, still counted
    assert f"({events:,} event(s) of 2,000 dossier(s) checked)" in " ".join(out.output.split())  # wrapped to fit


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["--unit", "000.00.99.H29"], "--unit 000.00.99.H29: no dossier in the store was received there"),
        (["--procedure", "9.999999"], "--procedure 9.999999: no dossier in the store matches it"),
        (["--from", "2031-01-01"], "--from 2031-01-01 --to …: no dossier in the store matches it"),
    ],
)
@pytest.mark.parametrize(
    "command", [["inspect", "audit", "R1"], ["inspect", "flow"], ["inspect", "export", "--format", "csv"]]
)
def test_a_filter_that_matches_nothing_says_so(
    tmp_path_factory: pytest.TempPathFactory, filters: list[str], message: str, command: list[str]
) -> None:
    data, _ = simulated(tmp_path_factory)
    out = CliRunner().invoke(main, ["--data-dir", str(data), *command, *filters, "-q"])
    assert out.exit_code == 1, out.output
    assert message in out.output
