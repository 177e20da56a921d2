"""What it costs this machine to give a process memory it has not touched (the loader's start-up at the year).

A loader starting on a large store allocates its indexes at once (the event-id index: 8 bytes an event, 2.2 GB at
the city's year). On most machines the page faults of 1 GiB of new memory take a fraction of a second; on a virtual
machine whose host takes back the guest's free memory they can take seconds, and that time is then part of every
start-up figure. Run it (from the repository root) in a fresh process, and again at once::

    .venv/bin/python -m bench.bench_first_touch --gib 1

Each round allocates ``--gib`` GiB, writes every page, and frees it; the first round pays the faults, the second
reuses what the first freed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="GiB to allocate and touch, each round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not 0 < args.gib <= 64 or args.rounds < 1:
        parser.error("--gib must be in (0, 64] and --rounds at least 1")
    values = int(args.gib * (1 << 30)) // 8
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for round_ in range(1, args.rounds + 1):
        started = time.perf_counter()
        memory = np.empty(values, dtype=np.uint64)
        memory.fill(1)
        took = time.perf_counter() - started
        del memory
        print(f"round {round_}: {args.gib:g} GiB allocated and written in {took:.2f} s ({args.gib / took:.2f} GiB/s)")


if __name__ == "__main__":
    main()
