"""Benchmark of the scorecard and accountability reports (issue 5 §8: each ≤ 2 s on 10M events, in-process).

Exact command (the figures in BENCHMARKS.md come from it)::

    dossier produce simulate --dossiers 1500000 --out /tmp/sim10m          # ~18M events in 123 files
    dossier --data-dir /tmp/rep-bench consume migrate
    dossier --data-dir /tmp/rep-bench consume load-catalogue /tmp/sim10m
    dossier --data-dir /tmp/rep-bench consume load $(ls /tmp/sim10m/events-*.avro | head -68)   # ~10M events
    python bench/bench_reports.py --data-dir /tmp/rep-bench --repeat 3

A store loaded before migration 0006 (the per-dossier ``dossier_facts`` the scorecard
and the accountability pauses read) gets it, backfilled from its events, with
``dossier --data-dir /tmp/rep-bench consume migrate`` (12 s on 10M events).

Each report is timed inside the process around the library call (the store
already open, as a long-running inspector session has it): wall clock and
process CPU time (chDB runs in-process, so CPU time is the query's; on a
quiet machine wall ≈ CPU / cores). The best and median of ``--repeat`` runs
are printed, with the machine's load average so a busy machine is visible.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection.accountability import AccountabilityQuery, compute_accountability
from inspection.scorecard import ScorecardQuery, compute_scorecard


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        cpu, wall = _cpu(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    return walls, cpus, result


def run(store: Store, repeat: int) -> list[dict[str, Any]]:
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("scorecard --level city", lambda: compute_scorecard(store, ScorecardQuery(level="city"))),
        ("scorecard --level district --period quarter",
         lambda: compute_scorecard(store, ScorecardQuery(level="district", period="quarter"))),
        ("accountability --by official --no-findings",
         lambda: compute_accountability(store, AccountabilityQuery(by="official"))),
        ("accountability --by unit --no-findings",
         lambda: compute_accountability(store, AccountabilityQuery(by="unit"))),
        ("accountability --by pair", lambda: compute_accountability(store, AccountabilityQuery(by="pair"))),
    ]  # fmt: skip
    rows = []
    for name, fn in cases:
        walls, cpus, result = _time(fn, repeat)
        rows.append(
            {
                "report": name,
                "best_s": round(min(walls), 3),
                "median_s": round(statistics.median(walls), 3),
                "cpu_s": round(min(cpus), 3),
                "rows": len(result.rows),
            }
        )
        print(f"{name:48s} best {min(walls):6.3f} s  median {statistics.median(walls):6.3f} s  "
              f"cpu {min(cpus):6.3f} s  rows {len(result.rows)}", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="A data dir already loaded (see the docstring).")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with opened_store(Settings(data_dir=args.data_dir), serve=False) as store:
        events, dossiers = store.query("SELECT count(), uniqExact(dossier_id) FROM events").rows[0]
        print(f"store: {events:,} events, {dossiers:,} dossiers; cores {os.cpu_count()}; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        store.query("SELECT count() FROM events WHERE event_type = 'DossierReceived'")  # warm the page cache
        run(store, args.repeat)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
