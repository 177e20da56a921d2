"""``dossier inspect audit`` and ``dossier inspect rules`` through the real CLI and a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dossier_audit.cli import main
from schemas.events import EventType
from schemas.rulebook import RULE_IDS, RULES
from tests.eventfactory import history
from tests.test_audit_store import AuditStore

E = EventType
HOSTILE = "x' OR '1'='1"
LATE = "000.00.31.H29-240115-0001"
CLEAN = "000.00.31.H29-240115-0002"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli")
    store = AuditStore(path)
    overridden = history(
        (E.DOSSIER_RECEIVED, 2, {"form_code": "01"}), (E.ADMIN_OVERRIDE, 2), dossier_id=LATE
    )  # fmt: skip
    clean = history((E.DOSSIER_RECEIVED, 2, {"form_code": "01"}), dossier_id=CLEAN)
    store.add(overridden + clean)
    store.add_procedure()
    store.close()
    yield path


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "inspect", *args])


def test_findings_exit_3_with_evidence_and_provenance(data_dir: Path) -> None:
    result = run(data_dir, "audit", "R13", "--format", "json", "-q")
    assert result.exit_code == 3, result.output
    out = json.loads(result.stdout)
    assert out["findings"] == [
        {
            "rule": "R13", "version": 1, "dossier_id": LATE, "unit_code": "000.00.31.H29", "actor_id": "admin-01",
            "evidence_seqs": [2], "explanation": "administrative override of due_at",
        }
    ]  # fmt: skip
    computed_on = out["computed_on"]
    assert computed_on["events"] == 3 and computed_on["rules"] == {"R13": 1}
    assert computed_on["as_of"].startswith("2024-01-15")


def test_no_fail_and_a_clean_selection_exit_0(data_dir: Path) -> None:
    assert run(data_dir, "audit", "R13", "--no-fail", "-q").exit_code == 0
    clean = run(data_dir, "audit", "R9", "-q")  # the store's one dossier has no transfer to judge late
    assert clean.exit_code == 0 and "no finding" in clean.stdout
    nothing = run(data_dir, "audit", "R13", "--procedure", "9.999999", "-q")  # a selection of nothing is not clean
    assert nothing.exit_code == 1 and "--procedure 9.999999: no dossier in the store matches it" in nothing.output


def test_parameters_are_reported_and_change_the_result(data_dir: Path) -> None:
    result = run(data_dir, "audit", "R12", "--param", "backdate_threshold_minutes=0", "--format", "json", "-q")
    assert json.loads(result.stdout)["computed_on"]["params"] == {"backdate_threshold_minutes": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["R99"], "unknown rule 'R99'"),
        (["--param", "nope=1"], "unknown rule parameter 'nope'"),
        (["--param", "apology_lead_wd=-1"], "whole number"),
        (["--param", "transfer_cutoff=15:60"], "HH:MM"),
        (["--param", "apology_lead_wd"], "not NAME=VALUE"),
        (["--as-of", "2099-01-01"], "does not cover"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "--from is after --to"),
    ],
)
def test_usage_errors_exit_2(data_dir: Path, args: list[str], message: str) -> None:
    result = run(data_dir, "audit", *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--unit", HOSTILE],
        ["--procedure", HOSTILE],
        ["--unit", f"000.00.31.H29{HOSTILE}"],
        ["--param", f"transfer_cutoff={HOSTILE}"],
        ["--param", f"{HOSTILE}=1"],
        ["--param", f"max_apologies=1{HOSTILE}"],
        ["--as-of", HOSTILE],
        ["--from", HOSTILE],
        ["--unit-level", HOSTILE],
        [HOSTILE],
        ["--format", HOSTILE],
    ],
)
def test_hostile_input_neither_leaks_nor_breaks(data_dir: Path, args: list[str]) -> None:
    result = run(data_dir, "audit", *args, "-q")
    assert result.exit_code in (1, 2), result.output  # refused as usage, or bound and matching nothing (said so)
    assert LATE not in result.output and "Traceback" not in result.output and "SYNTAX" not in result.output
    assert run(data_dir, "rules", *[a for a in args if a.startswith(HOSTILE[:1])]).exit_code in (0, 2)


def test_hostile_rule_ids_in_rules_are_refused(data_dir: Path) -> None:
    result = run(data_dir, "rules", HOSTILE)
    assert result.exit_code == 2 and "unknown rule" in result.output
    assert run(data_dir, "rules", "--format", HOSTILE).exit_code == 2


def test_the_store_still_holds_everything_after_hostile_input(data_dir: Path) -> None:
    run(data_dir, "audit", "--unit", HOSTILE, "-q")
    result = run(data_dir, "audit", "R13", "--format", "json", "-q")
    assert json.loads(result.stdout)["computed_on"]["events"] == 3


def test_rules_lists_the_catalogue(data_dir: Path) -> None:
    result = run(data_dir, "rules", "--format", "json")
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == list(RULE_IDS)
    r8 = next(r for r in rows if r["id"] == "R8")
    assert r8["expressible"] == "partial" and "national database" in r8["not_expressed"]
    assert next(r for r in rows if r["id"] == "R9")["parameters"].startswith("transfer_cutoff=15:00")
    table = run(data_dir, "rules", "R1", "R5").stdout
    assert RULES["R5"].title in table and RULES["R2"].title not in table


def test_every_command_documents_itself() -> None:
    for command in ("audit", "rules"):
        result = CliRunner().invoke(main, ["inspect", command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_one_dossier_and_own_queries_state_the_store_without_counting_its_dossiers(data_dir: Path) -> None:
    """Counting the dossiers reads every event's id: reports state it, replay and the console do not."""
    audit = json.loads(run(data_dir, "audit", "R13", "--format", "json", "-q").stdout)["computed_on"]
    assert (audit["events"], audit["dossiers"]) == (3, 2)
    replay = json.loads(run(data_dir, "replay", LATE, "--format", "json").stdout)["computed_on"]
    assert "dossiers" not in replay
    assert {k: replay[k] for k in ("events", "last_recorded_at", "kafka_offsets")} == {
        k: audit[k] for k in ("events", "last_recorded_at", "kafka_offsets")
    }
    console = run(data_dir, "sql", "SELECT count() AS n FROM events", "--format", "table")
    assert console.exit_code == 0, console.output
    block = console.stdout[console.stdout.index("computed on") :].split("data as of")[0]  # wrapped to the terminal
    stated = " ".join(block.split())
    assert stated.startswith("computed on embedded chDB in") and stated.endswith(": 3 events"), stated


def test_verify_states_the_dossiers_it_counted_as_it_checked_them(data_dir: Path) -> None:
    """A full run counts the store's dossiers as it checks them; a run over some of them states only those."""
    full = run(data_dir, "verify", "--no-record", "--format", "json", "-q")
    assert full.exit_code == 0, full.output
    stated = json.loads(full.stdout)["computed_on"]
    assert (stated["events"], stated["dossiers"], stated["checked_dossiers"]) == (3, 2, 2)
    one = run(data_dir, "verify", "--dossier", LATE, "--no-record", "--format", "json", "-q")
    assert one.exit_code == 0, one.output
    stated = json.loads(one.stdout)["computed_on"]
    assert "dossiers" not in stated and (stated["events"], stated["checked_dossiers"]) == (3, 1)
