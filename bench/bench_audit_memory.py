"""The audit's memory against the store's size (issue 20 §2): which queries hold the most, and what slicing costs.

Run on a loaded store (from the repository root)::

    .venv/bin/python -m bench.bench_audit_memory --data-dir D --cap-mb 100
    .venv/bin/python -m bench.bench_audit_memory --data-dir D --slice-rows 200000

``--cap-mb N`` runs the whole rule catalogue with ClickHouse's ``max_memory_usage`` at N MB a query and lists
every query refused for it (the rule, and the start of the query): N MB on a store of E events is N / E MB an
event, what each listed query would need per event at any size. ``--slice-rows R`` sets the audit's slice size
(:data:`inspection.coverage.SLICE_ROWS`; default 16M events) and times the catalogue, with this process's peak
RSS: run it at the default and at a small R to see what the slices cost in time and save in memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

from inspection import coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a loaded store's data directory")
    parser.add_argument("--cap-mb", type=int, default=0, help="max_memory_usage of each query, MB (0: none)")
    parser.add_argument("--slice-rows", type=int, default=coverage.SLICE_ROWS, help="events a slice reads, about")
    args = parser.parse_args()

    from dossier_runtime.settings import Settings
    from dossier_runtime.store import open_store
    from inspection.audit import audit, latest_event, select_rules

    setattr(coverage, "SLICE_ROWS", args.slice_rows)  # noqa: B010 (a Final the benchmark varies)
    store = open_store(Settings(data_dir=args.data_dir), role="reader", serve=False)
    refused: list[str] = []
    rule = [""]

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        settings = {"use_query_condition_cache": "0", "max_memory_usage": str(args.cap_mb * 1_000_000)}
        try:
            return list(store.query(sql, params, settings=settings).rows)
        except Exception as exc:
            if "MEMORY_LIMIT_EXCEEDED" not in str(exc):
                raise
            refused.append(f"{rule[0]}: {' '.join(sql.split())[:100]}")
            raise

    events = int(store.query("SELECT count() FROM events").scalar())
    as_of = latest_event(query, "1", {})
    parts = len(coverage.dossier_parts(query, "1", {}))
    started = time.perf_counter()
    findings = 0
    for each in select_rules([]):
        rule[0] = each.id
        try:
            findings += len(audit(query, [each], as_of=as_of).findings)
        except Exception as exc:
            if "MEMORY_LIMIT_EXCEEDED" not in str(exc):
                raise
    took = time.perf_counter() - started
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{events:,} events in {parts} slice(s) of ~{args.slice_rows:,} events")
    print(f"every rule, one after another: {took:.1f} s, {findings:,} findings; peak RSS {peak:,} MiB")
    if args.cap_mb:
        print(f"{len(refused)} queries refused at {args.cap_mb} MB ({args.cap_mb * 1e6 / events:.1f} bytes an event):")
        print("\n".join(f"  {line}" for line in refused))


if __name__ == "__main__":
    main()
