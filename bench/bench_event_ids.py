"""The loader's index of stored event ids (:mod:`consumers.eventids`): reading it, and a batch's lookup and add.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_event_ids --events 10000000

Fills a temporary embedded store with ``--events`` rows (a random UUID as ``event_id``, untimed), then times a
loader's start-up, from making the index to its first lookup, ``--rounds`` times each way:

* without a saved index: every stored id read (``SELECT sipHash64(event_id) FROM events`` and one sort); the
  index is then saved next to the store (timed apart: it runs after the start, in the background);
* with the saved index, after ``--after`` more events were stored by someone else: the file read and checked,
  and only the parts numbered after it read from the store.

Then, with the store closed, ``--batches`` rounds of a ``--batch``-event lookup (``hits``) and ``add``, as the
loader does per stored batch. Prints wall seconds, the saved file's size, the process's peak RSS, and the
one-minute load average (the machine is shared: other work moves wall times a lot).
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

from consumers import eventidfile
from consumers.eventids import EventIdIndex
from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start(store: Store) -> tuple[EventIdIndex, float]:
    """A loader's start-up: the index made, and its first lookup answered (seconds)."""
    started = time.monotonic()
    index = EventIdIndex(store)
    index.hits(np.zeros(1, dtype=np.uint64))
    return index, time.monotonic() - started


def start_up(store: Store, rounds: int, after: int) -> EventIdIndex:
    """Time start-ups without and with the saved index; return the last index (it covers the store)."""
    path = eventidfile.saved_path(store.local_path or Path())
    cold, warm, saves = [], [], []
    index: EventIdIndex | None = None
    for n in range(rounds):
        path.unlink(missing_ok=True)
        index, seconds = _start(store)
        cold.append(seconds)
        t0 = time.monotonic()
        index.close()  # the save the start began in the background
        saves.append(time.monotonic() - t0)
        store.command(
            "INSERT INTO events (event_id, dossier_id, seq) SELECT toString(generateUUIDv4(number)), "
            "concat('late', toString({round:UInt32}), '-', toString(intDiv(number, 12))), number % 12 "
            "FROM numbers({n:UInt64})",
            {"n": after, "round": n},
        )
        index, seconds = _start(store)
        warm.append(seconds)
    assert index is not None
    size = path.stat().st_size if path.exists() else 0
    print(
        f"start-up without the saved index (every id read): {_runs(cold)}; the save after it {_runs(saves)} "
        f"({size / 2**20:,.1f} MiB)"
    )
    print(
        f"start-up with the saved index, {after:,} events stored after it: {_runs(warm)} "
        f"(x{min(cold) / min(warm):,.1f} faster); index of {len(index):,} ids; peak RSS {_rss_mib():,.0f} MiB; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return index


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f} s" for s in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--after", type=int, default=50_000, help="events stored between a save and the next start")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    if min(args.events, args.rounds, args.batch, args.batches) < 1 or args.after < 0:
        parser.error("--events, --rounds, --batch and --batches must be at least 1, --after at least 0")
    data = Path(tempfile.mkdtemp(prefix="bench-event-ids-"))
    try:
        with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
            migrate(store)
            store.command(
                "INSERT INTO events (event_id, dossier_id, seq) SELECT toString(generateUUIDv4(number)), "
                "concat('d', toString(intDiv(number, 12))), number % 12 FROM numbers({n:UInt64})",
                {"n": args.events},
            )
            print(f"{args.events:,} events stored; peak RSS {_rss_mib():,.0f} MiB")
            index = start_up(store, args.rounds, args.after)
            size = len(index)
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
