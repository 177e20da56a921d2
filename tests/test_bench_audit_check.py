"""bench/bench_audit.py --check: a rule below 100% precision or recall against the manifest fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_audit import check
from inspection.audit import Finding


def finding(dossier: str, rule: str, seqs: tuple[int, ...]) -> Finding:
    return Finding(rule, 1, dossier, "000.00.31.H29", None, seqs, "")


def write_manifest(tmp_path: Path, *lines: tuple[str, str, list[int]]) -> Path:
    path = tmp_path / "manifest.jsonl"
    rows = [json.dumps({"dossier_id": d, "rule": r, "evidence_seqs": s}) for d, r, s in lines]
    path.write_text("".join(row + "\n" for row in rows))
    return path


def test_every_rule_matched_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, ("d1", "R1", [3, 9]), ("d2", "R17", [7]))
    found = [finding("d1", "R1", (3, 9)), finding("d2", "R17", (7,))]
    assert check(manifest, found, ["R1", "R17", "R2"]) == []
    out = capsys.readouterr().out
    assert "R17" in out and "100.0000%" in out and "not in the manifest" not in out


def test_an_extra_finding_a_miss_and_other_evidence_fail_their_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, ("d1", "R1", [3, 9]), ("d2", "R5", [4]), ("d3", "R17", [7]))
    found = [
        finding("d1", "R1", (3, 9)),
        finding("d9", "R1", (2,)),  # not in the manifest: R1 precision 50%
        finding("d3", "R17", (8,)),  # the right dossier with other evidence: wrong and missed
    ]  # d2's R5 is missed: recall 0%
    assert check(manifest, found, ["R1", "R5", "R17", "R2"]) == ["R1", "R5", "R17"]
    out = capsys.readouterr().out
    assert "found, not in the manifest: d9 evidence [2]" in out
    assert "in the manifest, not found: d2 evidence [4]" in out
    assert "found, not in the manifest: d3 evidence [8]" in out and "in the manifest, not found: d3 evidence [7]" in out


def test_a_manifest_rule_outside_the_catalogue_fails(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ("d1", "R99", [1]))
    assert check(manifest, [], ["R1"]) == ["R99"]


def test_rules_timed_on_a_store_without_its_catalogue_say_so_and_the_audit_bench_loads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store loaded by ``dossier consume load`` alone holds no procedure catalogue: R7, R16 and R20's (b) judge
    nothing there, so the ladder's rules stage names them and ``bench_audit`` loads the simulation's catalogue."""
    import argparse

    from bench.bench_audit import load
    from bench.ladder import stage_rules
    from consumers.migrations import migrate
    from dossier_runtime.settings import Settings
    from dossier_runtime.store import opened_store
    from tests.test_scorecard_support import load_city, simulate_city

    sim, data = tmp_path / "sim", tmp_path / "data"
    simulate_city(sim, dossiers=200, violations="all", seed=4)
    with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
        migrate(store)
        load_city(store, sim, tmp_path, catalogue=False)
    capsys.readouterr()
    blind = stage_rules(argparse.Namespace(data_dir=data, each=False))["not_judged"]
    assert blind == ["R7", "R16", "part (b) of R20"], blind
    assert "no procedure catalogue is loaded, so R7, R16, part (b) of R20 judged nothing" in capsys.readouterr().err

    with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
        load(store, sim, tmp_path)
        assert store.query("SELECT count() FROM procedures").scalar() > 0
    assert stage_rules(argparse.Namespace(data_dir=data, each=False))["not_judged"] == []
    assert "no procedure catalogue" not in capsys.readouterr().err
