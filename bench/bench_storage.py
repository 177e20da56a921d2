"""Bytes per event of each column of ``events``, and of each table, once merged (issue 20 §2: storage).

Run (from the repository root, on a store loaded by ``dossier consume load``; the store is opened for writing,
so no loader may run on it)::

    .venv/bin/python -m bench.bench_storage --data-dir /tmp/store

``events`` keeps small parts compact (all columns in one file), which ``system.columns`` cannot split by column.
So the rows of ``events`` are copied into a scratch table of the same definition (codecs, ALIAS columns, sort
key) with wide parts only, in a scratch database that is dropped afterwards, and merged with ``OPTIMIZE …
FINAL``; its columns' compressed bytes per event are then what the table costs once background merges have
rewritten everything. The other tables are given as they are (active parts, ``bytes_on_disk``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store

SCRATCH = "bench_storage"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the store's data directory")
    args = parser.parse_args()
    with opened_store(Settings(data_dir=args.data_dir), role="writer", serve=False) as store:
        events = int(store.query("SELECT count() FROM events").scalar() or 0)
        if not events:
            raise SystemExit(f"{args.data_dir}: the store holds no events; load some first")
        ddl = str(store.query("SHOW CREATE TABLE events").scalar())
        body = ddl[ddl.index("(") :]
        store.command(f"DROP DATABASE IF EXISTS {SCRATCH}")
        store.command(f"CREATE DATABASE {SCRATCH}")
        try:
            store.command(f"CREATE TABLE {SCRATCH}.events {body}")
            store.command(f"ALTER TABLE {SCRATCH}.events MODIFY SETTING min_bytes_for_wide_part = 0")
            store.command(f"INSERT INTO {SCRATCH}.events SELECT * FROM events")  # noqa: S608  (names from code)
            store.command(f"OPTIMIZE TABLE {SCRATCH}.events FINAL")
            columns = store.query(
                "SELECT name, data_compressed_bytes, data_uncompressed_bytes, compression_codec FROM system.columns "
                "WHERE database = {db:String} AND table = 'events' AND data_compressed_bytes > 0 "
                "ORDER BY data_compressed_bytes DESC",
                {"db": SCRATCH},
            ).rows
            merged = int(
                store.query(
                    "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} AND active",
                    {"db": SCRATCH},
                ).scalar()
                or 0
            )
        finally:
            store.command(f"DROP DATABASE IF EXISTS {SCRATCH}")
        tables = store.query(
            "SELECT table, sum(rows), sum(bytes_on_disk), count() FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table != 'events' GROUP BY table "
            "ORDER BY sum(bytes_on_disk) DESC"
        ).rows
    print(f"{events:,} events; events merged into wide parts: {merged / events:.1f} bytes an event on disk\n")
    print("| column | compressed bytes/event | uncompressed | codec |\n|---|---|---|---|")
    for name, packed, raw, codec in columns:
        print(f"| {name} | {int(packed) / events:.2f} | {int(raw) / events:.1f} | {codec} |")
    others = sum(int(b) for _t, _n, b, _p in tables)
    print("\n| table (as it is) | rows | parts | bytes/event on disk |\n|---|---|---|---|")
    for table, rows, on_disk, parts in tables:
        print(f"| {table} | {int(rows):,} | {parts} | {int(on_disk) / events:.1f} |")
    print(f"\nevents merged + the other tables: {(merged + others) / events:.1f} bytes an event")


if __name__ == "__main__":
    main()
