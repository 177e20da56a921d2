"""Bulk load rate: ``dossier consume load`` of one Avro container file into a fresh embedded store.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_load --events 1000000 --runs 3

Prints events/s per run and the median. The file is written once with fastavro
and the released schema (uncompressed), then loaded into a new data directory
per run (migrations excluded from the timing).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastavro import writer

from bench.benchdata import records
from consumers.bulk import load_file
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.registry import current_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codec", default="null")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.avro"
        started = time.perf_counter()
        with path.open("wb") as handle:
            writer(handle, current_schema().parsed, records(args.events), codec=args.codec, sync_interval=256 * 1024)
        print(
            f"wrote {args.events:,} events ({path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        rates = []
        for run in range(args.runs):
            with opened_store(Settings(data_dir=Path(tmp) / f"data{run}"), role="writer", serve=False) as store:
                migrate(store)
                sink = Sink(store, engine="MergeTree")
                loaded = load_file(sink, path, Path(tmp))
                sink.close()
            assert loaded.result.stored == args.events, loaded.row()
            rate = args.events / loaded.seconds
            rates.append(rate)
            print(f"run {run + 1}: {loaded.seconds:.2f} s, {rate:,.0f} events/s")
        print(f"bulk load median: {statistics.median(rates):,.0f} events/s over {args.runs} runs of {args.events:,}")


if __name__ == "__main__":
    main()
