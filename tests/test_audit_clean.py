"""A clean simulation gives no finding; a default one gives exactly its manifest (own module: one store per process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.simulator.kinds import DEFAULT_RATES
from tests.test_audit_simulated import compare, simulated


def test_a_clean_run_gives_no_finding(tmp_path: Path) -> None:
    for store, expected in simulated(tmp_path, dossiers=2000, seed=5, rates={}, on_time=1.0):
        assert expected == {}
        assert store.findings() == {}


@pytest.mark.slow
def test_a_default_run_matches_its_manifest(tmp_path: Path) -> None:
    for store, expected in simulated(tmp_path, dossiers=40000, seed=3, rates=dict(DEFAULT_RATES)):
        assert expected
        found = store.findings()
        assert not compare(found, expected), "\n".join(compare(found, expected))
