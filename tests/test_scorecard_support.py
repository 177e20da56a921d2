"""Shared by the scorecard, accountability, process, export and sql tests: simulated stores, built once.

``simulated(factory, dossiers=…, violations=…)`` simulates with the real
simulator, loads the events and the catalogue into a fresh embedded store
with the real loader, and returns (data dir, summary). Each test opens the
store only while it queries (chDB serves one directory per process).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from consumers.bulk import load_file
from consumers.catalogue import load_catalogue
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from producers.cli_simulate import DEMO_KEY, _rates
from producers.simulator.run import SimulationSettings, simulate

_BUILT: dict[tuple[int, str, int], tuple[Path, dict[str, Any]]] = {}


def simulated(
    factory: pytest.TempPathFactory, *, dossiers: int = 2000, violations: str = "default", seed: int = 3
) -> tuple[Path, dict[str, Any]]:
    key = (dossiers, violations, seed)
    if key in _BUILT:
        return _BUILT[key]
    base = factory.mktemp(f"sim{dossiers}{violations}{seed}")
    summary = simulate_city(base / "sim", dossiers=dossiers, violations=violations, seed=seed)
    data = base / "data"
    with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
        migrate(store)
        load_city(store, base / "sim", data)
    _BUILT[key] = (data, summary)
    return data, summary


def simulate_city(out: Path, *, dossiers: int, violations: str = "default", seed: int = 3) -> dict[str, Any]:
    """The real simulator's files in ``out`` (one worker); its summary."""
    on_time = 1.0 if violations == "none" else 0.9984
    settings = SimulationSettings(dossiers=dossiers, seed=seed, out=out, rates=_rates(violations, ()),
                                  on_time=on_time, pseudonym_key=DEMO_KEY, workers=1)  # fmt: skip
    return simulate(settings)


def load_city(store: Store, sim: Path, work_dir: Path, *, catalogue: bool = True) -> None:
    """The simulation's events, by the bulk loader, and (unless ``catalogue`` is false) its catalogue."""
    sink = Sink(store, engine="MergeTree")
    try:
        for path in sorted(sim.glob("events-*.avro")):
            load_file(sink, path, work_dir)
    finally:
        sink.close()
    if catalogue:
        load_catalogue(store, sim)


@contextlib.contextmanager
def reading(data: Path) -> Iterator[Store]:
    with opened_store(Settings(data_dir=data), serve=False) as store:
        yield store


def invoke(command: click.Command, data: Path, *args: str) -> Result:
    """Run one inspect command in-process against ``data``."""
    return CliRunner().invoke(command, list(args), obj=Settings(data_dir=data), catch_exceptions=False)


def json_out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_support_builds_a_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, summary = simulated(tmp_path_factory)
    with reading(data) as store:
        assert store.query("SELECT count() FROM events").scalar() == summary["counts"]["events"]
        assert store.query("SELECT count() FROM units FINAL").scalar() > 300
