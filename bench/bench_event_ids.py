"""The loader's index of stored event ids (:mod:`consumers.eventids`): reading it, and a batch's lookup and add.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_event_ids --events 10000000

Fills a temporary embedded store with ``--events`` rows (a random UUID as ``event_id``, untimed), then times
reading the index from the store (``SELECT sipHash64(event_id) FROM events`` and one sort) and, with the store
closed, ``--batches`` rounds of a ``--batch``-event lookup (``hits``) and ``add``, as the loader does per stored
batch. Prints wall
seconds, the process's peak RSS before and after the read, and the one-minute load average (the machine is
shared: other work moves wall times a lot).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from consumers.eventids import EventIdIndex
from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-event-ids-"))
    try:
        with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
            migrate(store)
            store.command(
                "INSERT INTO events (event_id, dossier_id, seq) SELECT toString(generateUUIDv4(number)), "
                "concat('d', toString(intDiv(number, 12))), number % 12 FROM numbers({n:UInt64})",
                {"n": args.events},
            )
            before = _rss_mib()
            index = EventIdIndex(store)
            t0 = time.monotonic()
            size = len(index)
            read_s = time.monotonic() - t0
            print(
                f"read {size:,} ids: {read_s:.2f} s; peak RSS {before:,.0f} MiB before, {_rss_mib():,.0f} after; "
                f"load average {os.getloadavg()[0]:.2f}"
            )
        # The store is closed before the lookups are timed: its background merges of the rows just inserted
        # would otherwise share the two cores with them.
        rng = np.random.default_rng(1)
        batches = [
            (rng.integers(0, 2**63, args.batch, dtype=np.uint64), rng.integers(0, 2**63, args.batch, dtype=np.uint64))
            for _ in range(args.batches)
        ]
        looked = added = 0.0
        for lookup, new in batches:
            t0 = time.monotonic()
            index.hits(lookup)
            t1 = time.monotonic()
            index.add(new)
            looked, added = looked + t1 - t0, added + time.monotonic() - t1
        n = args.batches
        print(
            f"a batch of {args.batch:,} ids: lookup {looked / n * 1000:.1f} ms, add {added / n * 1000:.1f} ms "
            f"({(looked + added) / n / args.batch * 1e6:.2f} us an id; index of {size:,} growing to {len(index):,}); "
            f"load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
