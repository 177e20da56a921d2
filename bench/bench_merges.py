"""What background merges cost the live loader, by batch size, and what reads pay for merging less.

Run (from the repository root; Avro containers of events in stream order, a simulator run for instance)::

    .venv/bin/python -m bench.bench_merges --files /tmp/sim10m/events-000??.avro --events 3000000 --batch 100000
    .venv/bin/python -m bench.bench_merges ... --setting merge_selector_base=20

On a fresh embedded store with the released migrations, the files' events are
first copied, in order, into a source table; then they are stored the way the
live loader stores a batch (:meth:`consumers.sink.Sink.publish` on a Memory
staging table), ``--batch`` events at a time, ``--events`` in all. Printed:

* the process CPU while loading, split by thread name: ``MergeMutate`` is
  ClickHouse's background merges, ``ThreadPool`` and ``python`` the statements;
* the merges still to do when loading stops (run until none is left), so a
  setting that only postpones merges past the end of the load shows as such;
* the parts left per table, and two reads over the result: one dossier's
  history by id (median and 90th percentile of 50) and a scan grouped by unit.

``--setting`` (repeatable) applies a MergeTree setting to ``events`` and the
derived tables before loading, to weigh a merge policy against its read cost.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time
from pathlib import Path

from bench.benchdata import fresh_store
from consumers.sink import Sink, stored_columns
from dossier_runtime.store import Store
from schemas.events import FIELD_NAMES

TABLES = ("events", "dossier_state", "dossier_facts", "dossier_steps")


def threads_cpu_s() -> collections.Counter[str]:
    """CPU of this process's live threads in centiseconds, summed by thread name (chDB names its pools)."""
    out: collections.Counter[str] = collections.Counter()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            head, tail = (task / "stat").read_text().rsplit(")", 1)
        except OSError:  # the thread ended meanwhile
            continue
        fields = tail.split()
        name = re.sub(r"\d+$", "", head.split("(", 1)[1])
        out[name] += round((int(fields[11]) + int(fields[12])) / tick * 100)  # centiseconds, to stay integral
    return out


def settle(store: Store) -> None:
    """Wait until no merge runs and none starts for 3 s."""
    quiet_since = None
    while quiet_since is None or time.monotonic() - quiet_since < 3:
        if int(store.query("SELECT count() FROM system.merges").scalar() or 0):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", nargs="+", type=Path, required=True)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--setting", action="append", default=[], help="a MergeTree setting, name=value")
    args = parser.parse_args()
    with fresh_store() as store:
        into, columns = stored_columns(FIELD_NAMES)
        sink = Sink(store)
        # The source keeps the files' order: rn numbers the events as they stream in.
        store.command("CREATE TABLE source AS events ENGINE = MergeTree ORDER BY tuple()")
        store.command("ALTER TABLE source ADD COLUMN rn UInt64")
        copied = 0
        for path in sorted(args.files):
            if copied >= args.events:
                break
            store.command(
                f"INSERT INTO source ({into}, rn) SELECT {columns}, {{base:UInt64}} + _row_number "  # noqa: S608 (names from code)
                "FROM file({path:String}, 'Avro', {structure:String})",
                {"base": copied, "path": str(path), "structure": sink.file_structure()},
            )
            copied = int(store.query("SELECT count() FROM source").scalar() or 0)
        events = min(copied, args.events)
        for setting in args.setting:
            name, value = setting.split("=", 1)
            if not re.fullmatch(r"[a-z_]+", name.strip()) or not re.fullmatch(r"[0-9A-Za-z_.]+", value.strip()):
                parser.error(f"--setting {setting!r}: expected name=value")
            for table in TABLES:
                store.command(f"ALTER TABLE {table} MODIFY SETTING {name.strip()} = {value.strip()}")
        settle(store)
        print(f"{events:,} events in batches of {args.batch:,}; settings: {', '.join(args.setting) or 'released'}")

        before, cpu0, wall0 = threads_cpu_s(), time.process_time(), time.perf_counter()
        for first in range(0, events, args.batch):
            sink.truncate()
            store.command(
                f"INSERT INTO {sink.staging} SELECT * EXCEPT rn FROM source "  # noqa: S608 (names from code)
                "WHERE rn >= {first:UInt64} AND rn < {last:UInt64}",
                {"first": first, "last": min(first + args.batch, events)},
            )
            result = sink.publish("kafka")
            assert result.fast_path and result.stored == result.received, "the source must be in stream order"
        loaded, cpu1, wall1 = threads_cpu_s(), time.process_time(), time.perf_counter()
        settle(store)
        after = threads_cpu_s()

        def cs(counter: collections.Counter[str], name: str) -> float:
            return counter[name] / 100

        during = loaded - before
        print(
            f"loading: {wall1 - wall0:.2f} s, CPU {cpu1 - cpu0:.2f} s ({1e6 * (cpu1 - cpu0) / events:.2f} µs/event): "
            f"merges {cs(during, 'MergeMutate'):.2f}, statements {cs(during, 'ThreadPool') + cs(during, 'python'):.2f}"
        )
        print(f"merges left when loading stopped: {cs(after - loaded, 'MergeMutate'):.2f} CPU-s")
        sample = "SELECT DISTINCT dossier_id FROM events ORDER BY cityHash64(dossier_id) LIMIT 50"
        ids = [str(row[0]) for row in store.query(sample).rows]
        latencies = []
        for dossier in ids:
            started = time.perf_counter()
            store.query("SELECT * FROM events WHERE dossier_id = {d:String} ORDER BY seq", {"d": dossier})
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        started = time.perf_counter()
        store.query("SELECT unit_code, count() FROM events GROUP BY unit_code")
        scan = time.perf_counter() - started
        print(
            f"history by id: median {1000 * latencies[len(latencies) // 2]:.1f} ms, "
            f"p90 {1000 * latencies[int(len(latencies) * 0.9)]:.1f} ms; scan by unit {1000 * scan:.0f} ms"
        )
        parts = store.query(
            "SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active "
            "AND table IN {tables:Array(String)} GROUP BY table ORDER BY table",
            {"tables": list(TABLES)},
        ).rows
        print("active parts: " + ", ".join(f"{table} {n}" for table, n in parts))
        sink.close()


if __name__ == "__main__":
    main()
