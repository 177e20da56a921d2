"""Replay of one dossier from a store, warm and read from disk (``bench_replay.py`` times it warm only,
beside a full verify).

Run (from the repository root), on a store that exists (``dossier consume load`` of simulated files)::

    .venv/bin/python -m bench.bench_replay_disk --data-dir /tmp/store --samples 100
    .venv/bin/python -m bench.bench_replay_disk --data-dir /tmp/store --samples 100 --cold

Each sample is a different dossier, drawn with a fixed seed from ``dossier_state``: its events read
as ``dossier inspect replay`` reads them (:func:`inspection.history.load_history`) and its control
sheet built. Warm, the store's files stay in the page cache and ClickHouse's caches are kept, as in a
long-running process. ``--cold``: before each sample every file of the store is dropped from the page
cache (``posix_fadvise(DONTNEED)``) and ClickHouse's mark, uncompressed, primary index and query
condition caches are emptied, so the read comes from disk: the case of a store larger than the
memory the machine gives it, or of the first dossier an inspector opens. Needs the writer role
(``SYSTEM DROP … CACHE``): stop the loaders.

Prints p50, p90, p99 and the slowest, and the process's first sample on its own: it pays the
process's one-time costs (first use of each code path, of each column's reader) that no later
sample does, and that every ``dossier inspect replay`` command pays.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from dossier_runtime.settings import Settings
from dossier_runtime.store import STORE_SUBDIR, Store, open_store
from inspection.controlsheet import build_control_sheet
from inspection.history import load_history

_CACHES = ("MARK CACHE", "UNCOMPRESSED CACHE", "PRIMARY INDEX CACHE", "QUERY CONDITION CACHE")


def evict(root: Path) -> None:
    """Drop every file under ``root`` from the page cache."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def replay_times(store: Store, data_dir: Path, samples: int, *, cold: bool) -> list[float]:
    """Seconds per sample, in the order sampled."""
    ids = [r[0] for r in store.query("SELECT dossier_id FROM dossier_state FINAL LIMIT 200000").rows]
    took = []
    for dossier_id in random.Random(7).sample(ids, min(samples, len(ids))):
        if cold:
            evict(data_dir / STORE_SUBDIR)
            for cache in _CACHES:
                store.command(f"SYSTEM DROP {cache}")
        started = time.perf_counter()
        build_control_sheet(load_history(store, dossier_id), now=datetime.now(UTC))
        took.append(time.perf_counter() - started)
    return took


def summary(took: list[float]) -> str:
    first, rest = took[0], sorted(took[1:])
    if not rest:
        return f"1 sample: {1e3 * first:.1f} ms"

    def at(q: float) -> float:
        return 1e3 * rest[min(len(rest) - 1, int(q * len(rest)))]

    return (
        f"first {1e3 * first:.1f} ms; the next {len(rest)}: p50 {1e3 * statistics.median(rest):.1f} ms, "
        f"p90 {at(0.9):.1f} ms, p99 {at(0.99):.1f} ms, slowest {1e3 * rest[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the store's data directory")
    parser.add_argument("--samples", type=int, default=100, help="dossiers replayed, each a different one")
    parser.add_argument("--cold", action="store_true", help="read each from disk (see above)")
    args = parser.parse_args()
    if not (args.data_dir / STORE_SUBDIR).is_dir():
        parser.error(f"{args.data_dir} holds no store ({STORE_SUBDIR}/ is missing)")
    store = open_store(Settings(data_dir=args.data_dir), role="writer" if args.cold else "reader", serve=False)
    try:
        took = replay_times(store, args.data_dir, args.samples, cold=args.cold)
    finally:
        store.close()
    if not took:
        raise SystemExit(f"{args.data_dir}: the store holds no dossier to replay")
    kind = "read from disk" if args.cold else "warm"
    print(f"replay ({kind}), load average {os.getloadavg()[0]:.2f}: {summary(took)}")


if __name__ == "__main__":
    main()
