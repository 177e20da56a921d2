"""Bulk load rate: ``dossier consume load`` of Avro container files into a fresh embedded store.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_load --events 1000000 --runs 3
    .venv/bin/python -m bench.bench_load --files /tmp/sim10m/events-0000?.avro --runs 1

Prints, per run, events/s (wall) and the process CPU time (chDB's threads,
background merges included), then wall/CPU seconds per phase: ``stage``
(ClickHouse parses the Avro into the staging table), ``check`` (contract and
duplicate check), ``views`` (the derived tables), ``attach`` (the parts moved
into ``events``), ``truncate`` (emptying the staging table), ``other`` (the
rest: Python, copying file parts, dead letters). Then the median. Without
``--files`` one file is written once with fastavro and the released schema
(``--codec``, default uncompressed) and loaded into a new data directory per
run (migrations excluded from the timing); with ``--files`` those files are
loaded into one new data directory per run with :func:`consumers.bulk.load_files`
(small files several to a batch; ``--one-by-one``: :func:`~consumers.bulk.load_file`
for each). ``--into DIR``: each run loads into a copy of the data directory
DIR instead of a new one, to see what a store's size does to a load (its
migrations are applied to the copy, untimed). Note ``uptime`` with it: the
machine's other work moves wall times a lot.

Each run is followed by its baseline, in the same process on the same files:
ClickHouse's own part of the load and nothing else, ``bare``: the files staged
exactly as the loader stages them (the same batches, a big file cut in two
for both cores, the same ``INSERT … SELECT … FROM file(…, 'Avro')`` into a
MergeTree table laid out as ``events``), with no contract or duplicate check,
no derived tables and no attach. A bare insert of Avro into a MergeTree part
is the most any loader on this store can do; the ratio ``loader / bare`` is
what checking, deduplicating and keeping the derived tables cost.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastavro import writer

from bench.benchdata import records
from consumers import bulk
from consumers.bulk import load_file, load_files
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.registry import current_schema

_PHASES = (
    ("INSERT INTO _staging_", "stage"),
    ("INSERT INTO events_feed", "views"),
    ("ALTER TABLE events", "attach"),
    ("SELECT DISTINCT partition_id FROM system.parts", "attach"),
    ("TRUNCATE", "truncate"),
)


def _phase(sql: str) -> str:
    text = sql.lstrip()
    for prefix, name in _PHASES:
        if text.startswith(prefix):
            return name
    return "check" if text.startswith("SELECT count(), countIf(") else "other"


def _timed(store: Store, phases: collections.defaultdict[str, float], cpu: collections.defaultdict[str, float]) -> None:
    """Wrap the store's statements to add their wall and CPU time to ``phases`` and ``cpu`` (by phase)."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(sql: str, *args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return method(sql, *args, **kwargs)
            finally:
                phases[_phase(sql)] += time.perf_counter() - started
                cpu[_phase(sql)] += time.process_time() - cpu_started

        return timed

    for name in ("query", "command", "insert_bytes"):
        setattr(store, name, wrap(getattr(store, name)))


@dataclasses.dataclass
class Run:
    stored: int
    wall: float
    cpu: float
    phases: dict[str, tuple[float, float]]  # phase: (wall s, CPU s)

    def line(self) -> str:
        shown = ", ".join(f"{name} {wall:.2f}/{cpu:.2f}" for name, (wall, cpu) in sorted(self.phases.items()))
        return (
            f"{self.stored:,} events in {self.wall:.2f} s (CPU {self.cpu:.2f} s), "
            f"{self.stored / self.wall:,.0f} events/s; phases wall/CPU s: {shown}"
        )


def load_run(files: list[Path], data_dir: Path, work_dir: Path, *, one_by_one: bool = False) -> Run:
    """Load ``files`` into a new store in ``data_dir`` (migrations not timed), in batches or ``one_by_one``."""
    wall_by: collections.defaultdict[str, float] = collections.defaultdict(float)
    cpu_by: collections.defaultdict[str, float] = collections.defaultdict(float)
    with opened_store(Settings(data_dir=data_dir), role="writer", serve=False) as store:
        migrate(store)
        _timed(store, wall_by, cpu_by)
        sink = Sink(store, engine="MergeTree")
        wall_by.clear()
        cpu_by.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        stored = 0
        loads = (load_file(sink, p, work_dir) for p in files) if one_by_one else load_files(sink, files, work_dir)
        for loaded in loads:
            stored += loaded.result.stored
            assert not loaded.result.dead, loaded.row()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        sink.close()
    wall_by["other"] += wall - sum(wall_by.values())
    cpu_by["other"] += cpu - sum(cpu_by.values())
    return Run(stored, wall, cpu, {name: (wall_by[name], cpu_by[name]) for name in wall_by})


def bare_run(files: list[Path], data_dir: Path, work_dir: Path) -> tuple[int, float, float]:
    """The baseline (see the module docstring): (events, wall s, CPU s) of staging ``files`` as the loader does."""
    with opened_store(Settings(data_dir=data_dir), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        events = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in bulk._batches(files):  # the loader's own batching and staging, nothing after it
            with contextlib.ExitStack() as stack:
                sources: list[bulk.Source] = []
                for path in batch:
                    buf, header_end, blocks = stack.enter_context(bulk._opened(path))
                    sources.append((bulk.file_topic(path), path, buf, header_end, blocks, bulk._bases(blocks)))
                    events += sum(count for _s, _e, count in blocks)
                bulk._stage_blocks(sink, sources, work_dir)
            sink.truncate()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        sink.close()
    return events, wall, cpu


def _written(path: Path, events: int, codec: str) -> Iterator[Path]:
    started = time.perf_counter()
    with path.open("wb") as handle:
        writer(handle, current_schema().parsed, records(events), codec=codec, sync_interval=256 * 1024)
    seconds = time.perf_counter() - started
    print(f"wrote {events:,} events ({path.stat().st_size / 1e6:.0f} MB, {codec}) in {seconds:.1f} s")
    yield path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codec", default="null")
    parser.add_argument("--files", nargs="+", type=Path, help="load these container files instead of writing one")
    parser.add_argument("--one-by-one", action="store_true", help="publish file by file (load_file), not in batches")
    parser.add_argument("--into", type=Path, help="load into a copy of this data directory, not a new one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = args.files or list(_written(Path(tmp) / "events.avro", args.events, args.codec))
        size = sum(f.stat().st_size for f in files)
        print(f"loading {len(files)} file(s), {size / 1e6:.0f} MB; load average {os.getloadavg()[0]:.2f}")
        rates, ratios = [], []
        for run in range(args.runs):
            data_dir = Path(tmp) / f"data{run}"
            if args.into:
                shutil.copytree(args.into, data_dir, symlinks=True)
            result = load_run(files, data_dir, Path(tmp), one_by_one=args.one_by_one)
            shutil.rmtree(data_dir, ignore_errors=True)
            if not args.files:
                assert result.stored == args.events, result.stored
            rates.append(result.stored / result.wall)
            print(f"run {run + 1}: {result.line()}; load average {os.getloadavg()[0]:.2f}")
            events, wall, cpu = bare_run(files, Path(tmp) / f"bare{run}", Path(tmp))
            ratios.append(rates[-1] / (events / wall))
            print(
                f"  bare insert: {events:,} events in {wall:.2f} s (CPU {cpu:.2f} s), {events / wall:,.0f} events/s; "
                f"loader / bare {ratios[-1]:.2f}; load average {os.getloadavg()[0]:.2f}"
            )
        print(
            f"bulk load median: {statistics.median(rates):,.0f} events/s over {args.runs} runs of {result.stored:,}; "
            f"loader / bare insert median {statistics.median(ratios):.2f}"
        )


if __name__ == "__main__":
    main()
