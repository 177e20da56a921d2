"""Simulator throughput: events written to Avro container files per second.

Run::

    .venv/bin/python bench/bench_simulator.py --dossiers 200000

Prints the wall time, events/s, and the achieved calibration of the default run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from producers.simulator.kinds import DEFAULT_RATES
from producers.simulator.run import SimulationSettings, simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
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
    print(f"dossiers {args.dossiers}  events {events}  seconds {elapsed:.2f}  events/s {events / elapsed:,.0f}")
    print(f"achieved {summary['achieved']}")


if __name__ == "__main__":
    main()
