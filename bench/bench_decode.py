"""What decoding a live batch costs, and where: ClickHouse parsing Avro against copying Native rows.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_decode /tmp/sim10m/events-00000.avro

On one Avro container file (a simulator run's, say), in a fresh in-memory
chDB, best process CPU of ``--runs`` per event:

* Avro into a Memory table (what the store's owner does when it parses a batch
  itself, as on a server);
* Avro to a Native file (what the Kafka reader does, ``consumers.readerdecode``);
* that Native file into a Memory table (what is left for the owner).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_cpu(runs: int, step: Callable[[], Any], before: Callable[[], Any] = lambda: None) -> float:
    best = float("inf")
    for _ in range(runs):
        before()
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    import chdb

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    conn = chdb.connect(":memory:")  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        files = {"src": str(args.file.resolve()), "native": str(Path(tmp) / "batch.native")}

        def run(sql: str) -> Any:
            return conn.query(sql, "TSV", params=files)

        n = int(run("SELECT count() FROM file({src:String}, 'Avro')").bytes())
        avro = (
            "SELECT *, 'bench' AS _topic, toInt32(0) AS _partition, _row_number AS _offset "
            "FROM file({src:String}, 'Avro')"
        )
        to_native = best_cpu(
            args.runs,
            lambda: run(
                f"INSERT INTO FUNCTION file({{native:String}}, 'Native') {avro} "
                "SETTINGS engine_file_truncate_on_insert = 1, max_threads = 1"
            ),
        )
        run("CREATE TABLE staging ENGINE = Memory AS SELECT * FROM file({native:String}, 'Native') LIMIT 0")
        from_avro = best_cpu(args.runs, lambda: run(f"INSERT INTO staging {avro}"), lambda: run("TRUNCATE staging"))
        from_native = best_cpu(
            args.runs,
            lambda: run("INSERT INTO staging SELECT * FROM file({native:String}, 'Native')"),
            lambda: run("TRUNCATE staging"),
        )
        size = Path(files["native"]).stat().st_size
    conn.close()
    print(f"{n:,} events from {args.file.name}; CPU-µs per event, best of {args.runs}:")
    print(f"  Avro into Memory staging (the owner parsing)    {1e6 * from_avro / n:6.2f}")
    print(f"  Avro to a Native file (the reader decoding)     {1e6 * to_native / n:6.2f}  ({size / n:.0f} B an event)")
    print(f"  Native into Memory staging (left for the owner) {1e6 * from_native / n:6.2f}")


if __name__ == "__main__":
    main()
