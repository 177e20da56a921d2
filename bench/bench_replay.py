"""Replay and integrity verification on a large store, measured inside the process.

Issue 5 §8 asks for the replay of one dossier in at most 50 ms on 10 million
events. This loads nothing: point it at a data directory that already holds a
simulation (``dossier consume migrate``, ``consume load``), e.g.::

    dossier produce simulate --dossiers 1500000 --out /tmp/sim10m -q
    dossier --data-dir /tmp/bench-lead consume migrate
    dossier --data-dir /tmp/bench-lead consume load /tmp/sim10m/*.avro
    .venv/bin/python bench/bench_replay.py --data-dir /tmp/bench-lead

It times, for 50 random dossiers, fetching the history (one query) and
rebuilding the control sheet, then one full ``verify`` pass (every hash
recomputed in SQL) and one incremental pass (``--since``: the last loaded
batch only). The baseline is a ``count()`` over the same table in
the same process, so the ratios say how far each task is from a bare scan.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
from inspection.controlsheet import build_control_sheet
from inspection.history import load_history
from inspection.verify import verify


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    store = open_store(Settings(data_dir=args.data_dir), role="reader", serve=False)
    try:
        started = time.perf_counter()
        events, dossiers = store.query("SELECT count(), uniqExact(dossier_id) FROM events").rows[0]
        baseline = time.perf_counter() - started
        print(f"store: {events:,} events, {dossiers:,} dossiers; baseline count()+uniqExact: {_ms(baseline)}")
        ids = [r[0] for r in store.query("SELECT dossier_id FROM dossier_state FINAL LIMIT 200000").rows]
        sample = random.Random(7).sample(ids, args.samples)
        fetch, sheet = [], []
        for dossier_id in sample:
            t0 = time.perf_counter()
            history = load_history(store, dossier_id)
            t1 = time.perf_counter()
            build_control_sheet(history, now=datetime.now(UTC))
            t2 = time.perf_counter()
            fetch.append(t1 - t0)
            sheet.append(t2 - t1)
        total = [a + b for a, b in zip(fetch, sheet, strict=True)]
        print(
            f"replay of one dossier ({args.samples} random): median {_ms(statistics.median(total))}, "
            f"p90 {_ms(sorted(total)[int(0.9 * len(total))])}, max {_ms(max(total))} "
            f"(fetch median {_ms(statistics.median(fetch))}, control sheet median {_ms(statistics.median(sheet))})"
        )
        t0 = time.perf_counter()
        report = verify(lambda sql, params: store.query(sql, params).rows)
        elapsed = time.perf_counter() - t0
        print(
            f"verify, whole store: {elapsed:.2f} s for {report.events:,} events "
            f"({report.events / elapsed:,.0f} events/s; {elapsed / baseline:.1f}x the baseline scan); "
            f"{len(report.findings)} findings"
        )
        # Incremental: what a scheduled run after one more loaded batch checks (the latest _ingested_at).
        batches = store.query("SELECT DISTINCT _ingested_at FROM events ORDER BY _ingested_at DESC LIMIT 2").rows
        if len(batches) == 2:
            t0, cpu0 = time.perf_counter(), time.process_time()
            recent = verify(lambda sql, params: store.query(sql, params).rows, since=batches[1][0])
            print(
                f"verify --since <the batch before the last>: {time.perf_counter() - t0:.2f} s "
                f"(CPU {time.process_time() - cpu0:.2f} s) for {recent.events:,} events of "
                f"{recent.dossiers:,} dossiers; {len(recent.findings)} findings"
            )
    finally:
        store.close()


if __name__ == "__main__":
    main()
