"""Where the live loader's CPU goes: per process, and per statement of the store's owner.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_live_cpu --events 1000000

Publishes ``--events`` messages to a fresh embedded broker (as ``bench_consumer``
does), then runs ``dossier consume run``'s path (the Kafka reader in a child
process, the store in this one) and prints, from the group assignment to the
last event stored:

* CPU per event of the owner (this process: Python and chDB's threads), of the
  reader (the child) and of the broker, from ``/proc/<pid>/stat``; the live
  ratio target (0.85 of raw consume) needs owner plus reader to fit two cores;
* the owner's CPU by statement (staging, the check, the derived views' feed,
  the part write), timed around each :class:`dossier_runtime.store.Store` call;
* how long the owner waited for the reader's next message (a pipeline bubble
  shows there; a store-bound loader waits little).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_consumer import live_load, produce
from bench.bench_merges import threads_cpu_s
from consumers import readerproc
from consumers.live import DEFAULT_MAX_EVENTS
from dossier_runtime import store as store_module
from dossier_runtime.broker import start_broker, stop_broker

#: statement (normalised) -> [calls, CPU seconds, wall seconds]
_BY_STATEMENT: collections.defaultdict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])


def _statement(sql: object) -> str:
    text = re.sub(r"_staging_[0-9a-f]+", "<staging>", " ".join(str(sql).split()))
    return text[:80]


def _timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, sql: object, *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return call(self, sql, *args, **kwargs)
        finally:
            entry = _BY_STATEMENT[f"{name}: {_statement(sql)}"]
            entry[0] += 1
            entry[1] += time.process_time() - cpu
            entry[2] += time.perf_counter() - wall

    return wrapper


#: [seconds] the owner spent handling the reader's messages (storing batches); the rest of the wall time it
#: waited for the reader.
_BUSY: list[float] = [0.0]


def _instrument() -> None:
    """Time every statement the owner sends (``query`` goes through ``query_arrow``, so only the latter),
    and the owner's handling of the reader's messages."""
    for name in ("command", "query_arrow", "insert_bytes"):
        setattr(store_module.Store, name, _timed(name, getattr(store_module.Store, name)))
    handle = readerproc._Owner.handle

    def busy(self: Any) -> None:
        started = time.perf_counter()
        try:
            handle(self)
        finally:
            _BUSY[0] += time.perf_counter() - started

    readerproc._Owner.handle = busy  # type: ignore[method-assign]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reader_pid() -> int:
    """The Kafka reader: this process's child running ``consumers.readerproc``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if b"consumers.readerproc" in cmdline and parent == os.getpid():
                return int(entry.name)
        time.sleep(0.05)
    raise RuntimeError("the reader process did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS)
    args = parser.parse_args()
    n = args.events
    marks: dict[str, tuple[float, float, float, float]] = {}
    threads: dict[str, collections.Counter[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(log_path=Path(tmp) / "broker.log")
        try:
            broker_pid = broker.pid
            assert broker_pid is not None
            produce(broker.bootstrap, n)
            reader: list[int] = []

            def snapshot(name: str) -> None:
                marks[name] = (time.monotonic(), time.process_time(), _cpu_s(reader[0]), _cpu_s(broker_pid))
                threads[name] = threads_cpu_s()

            def started(_when: float) -> None:
                if "start" not in marks:
                    reader.append(_reader_pid())
                    _BY_STATEMENT.clear()
                    _BUSY[0] = 0.0
                    snapshot("start")

            live_load(
                broker.bootstrap,
                n,
                Path(tmp) / "data",
                args.max_events,
                on_assign=started,
                on_done=lambda: snapshot("end"),
                prepare=_instrument,
            )
        finally:
            stop_broker(broker)
    (t0, owner0, reader0, broker0), (t1, owner1, reader1, broker1) = marks["start"], marks["end"]
    wall = t1 - t0
    print(f"{n:,} events in {wall:.2f} s: {n / wall:,.0f} events/s; load average {os.getloadavg()[0]:.2f}")
    for name, cpu in (("owner", owner1 - owner0), ("reader", reader1 - reader0), ("broker", broker1 - broker0)):
        print(f"  {name:7s} {cpu:6.2f} CPU-s  {1e6 * cpu / n:6.2f} µs/event  {100 * cpu / wall:4.0f} % of a core")
    print(f"  the owner waited for the reader (no message to handle) {max(wall - _BUSY[0], 0.0):.2f} s")
    print("owner by thread name (CPU-s; threads that ended meanwhile are missing; MergeMutate: background merges):")
    for thread, centiseconds in (threads["end"] - threads["start"]).most_common(6):
        print(f"  {centiseconds / 100:6.2f}  {thread}")
    print("owner by statement (CPU-s, wall s, calls, CPU µs/event):")
    for statement, (calls, cpu, spent) in sorted(_BY_STATEMENT.items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"  {cpu:6.2f} {spent:6.2f} {int(calls):5d}  {1e6 * cpu / n:5.2f}  {statement}")


if __name__ == "__main__":
    main()
