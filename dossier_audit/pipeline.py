"""The demo's pipeline: simulate → publish to Kafka → live loader → the embedded store.

Everything runs on the embedded stack of one data directory: the Tansu
broker (started, or reused when one already serves the directory) and chDB.
The live loader runs in a background thread while the events are published,
exactly as ``dossier consume run`` would in another terminal, and stops once
the topic has been idle for a moment after the last delivery.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import kafka  # noqa: F401  (imported before any thread: kafka-python's package import is not thread-safe)

from consumers.catalogue import load_catalogue
from consumers.live import RunOptions, RunSummary
from consumers.migrations import cluster_of, migrate
from consumers.readerproc import load_live
from consumers.sink import Sink
from dossier_runtime.broker import BrokerHandle
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from producers.cli_simulate import outbound_from_files
from producers.publish import DeliveryReport, publish_outbound
from producers.simulator.kinds import DEFAULT_RATES
from producers.simulator.run import SimulationSettings, simulate
from schemas.pseudonym import DEMO_KEY


@dataclasses.dataclass
class PipelineResult:
    simulation: dict[str, Any]
    delivery: DeliveryReport
    loading: RunSummary
    seconds: dict[str, float]


def run_pipeline(
    settings: Settings,
    store: Store,
    broker: BrokerHandle,
    *,
    dossiers: int,
    seed: int,
    progress: Progress,
) -> PipelineResult:
    """Simulate ``dossiers``, publish them, and load them with the live loader into ``store`` (a writer)."""
    log = progress.step
    seconds: dict[str, float] = {}
    sim_dir = settings.data_dir / "demo" / "simulation"
    t0 = time.monotonic()
    log(f"simulating {dossiers:,} dossiers of Ho Chi Minh City (seed {seed}) into {sim_dir}")
    key = settings.pseudonym_key or DEMO_KEY
    if not settings.pseudonym_key:
        log("DOSSIER_PSEUDONYM_KEY is not set: applicants are pseudonymised with the documented demo key")
    simulation = SimulationSettings(
        dossiers=dossiers, seed=seed, out=sim_dir, rates=dict(DEFAULT_RATES), pseudonym_key=key
    )
    with progress.phase("simulating", dossiers, "dossiers") as simulated:
        summary = simulate(simulation, progress=simulated)
    seconds["simulate"] = time.monotonic() - t0
    events = int(summary["counts"]["events"])
    log(f"  {events:,} events in {seconds['simulate']:.1f} s")

    migrate(store, cluster=cluster_of(settings))
    load_catalogue(store, sim_dir)
    sink = Sink(store)
    stop = threading.Event()
    outcome: dict[str, RunSummary] = {}

    failure: list[BaseException] = []

    def load() -> None:
        options = RunOptions(group="dossier-demo", max_wait_s=0.5, progress_every_s=5.0, stop_after_idle_s=3.0)
        try:
            outcome["summary"] = load_live(settings, sink, broker.bootstrap, options, stop, broker=broker, log=log)
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    loader = threading.Thread(target=load, name="live-loader", daemon=True)
    t1 = time.monotonic()
    loader.start()
    log(f"publishing to topic {settings.topic} on {broker.bootstrap}; the live loader stores them as they arrive")
    with progress.phase("publishing", events) as sent:
        delivery = publish_outbound(
            broker.bootstrap, settings.topic, settings.partitions, outbound_from_files(sim_dir), progress=sent
        )
    seconds["publish"] = time.monotonic() - t1
    log(f"  {len(delivery.delivered):,} delivered in {seconds['publish']:.1f} s; waiting for the loader to catch up")
    loader.join()
    sink.close()
    if failure:
        raise failure[0]
    seconds["load"] = time.monotonic() - t1
    return PipelineResult(summary, delivery, outcome.get("summary", RunSummary()), seconds)
