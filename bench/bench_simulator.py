"""Simulator throughput: events written to Avro container files per second.

Run::

    .venv/bin/python bench/bench_simulator.py --dossiers 200000 --runs 3
    .venv/bin/python bench/bench_simulator.py --dossiers 100000 --workers 1 --runs 3   # per core

Prints each run's wall time and events/s with the 1-minute load average
before it (the figure depends on what else the machine is running), then the
median and the achieved calibration of the last run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from producers.simulator.kinds import DEFAULT_RATES
from producers.simulator.run import SimulationSettings, simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rates: list[float] = []
    for run in range(1, args.runs + 1):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            settings = SimulationSettings(
                dossiers=args.dossiers,
                out=Path(tmp),
                rates=dict(DEFAULT_RATES),
                pseudonym_key=b"b" * 32,
                workers=args.workers,
            )
            t0 = time.perf_counter()
            summary = simulate(settings)
            elapsed = time.perf_counter() - t0
        events = summary["counts"]["events"]
        rates.append(events / elapsed)
        print(
            f"run {run}  load {load:.2f}  dossiers {args.dossiers}  events {events}  "
            f"seconds {elapsed:.2f}  events/s {events / elapsed:,.0f}",
            flush=True,
        )
    if args.runs > 1:
        print(f"median events/s {statistics.median(rates):,.0f}")
    print(f"achieved {summary['achieved']}")


if __name__ == "__main__":
    main()
