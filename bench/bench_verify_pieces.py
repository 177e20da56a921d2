"""Where ``dossier inspect verify --use-ledger`` spends its time: each of its queries timed alone, in one process.

Run it on a store whose ledger has a run on record, after a load and before the next ``--use-ledger`` run records
the new parts (that run would leave nothing to check)::

    .venv/bin/python -m bench.bench_verify_pieces --data-dir D

It records nothing. The pieces are those of :func:`inspection.verify.verify` with the ledger's coverage, plus the
report's provenance (:func:`inspection.cliutil.provenance`), which the command computes first.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
from inspection import ledger
from inspection import verify as v
from inspection.cliutil import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    store = open_store(Settings(data_dir=args.data_dir), role="reader", serve=False)

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return list(store.query(sql, params).rows)

    times: dict[str, float] = {}

    def timed(label: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = work()
        times[label] = times.get(label, 0.0) + time.perf_counter() - start
        return result

    print(f"load average {os.getloadavg()}")
    timed("provenance", lambda: provenance(store))
    coverage = timed("coverage", lambda: ledger.coverage(query))
    if coverage.unused_because is not None or coverage.checks_unused_because is not None:
        raise SystemExit(f"the ledger spares nothing here: {coverage.unused_because or coverage.checks_unused_because}")
    params: dict[str, Any] = {"legal": v.legal_transitions(), **coverage.params(), **coverage.check_params()}
    scope = int(timed("dossiers to check, counted", lambda: query(v.scope_sql(unchecked=True), params))[0][0])
    for part in timed("slices", lambda: v.dossier_slices(query, "events", scope, v.SLICE_ROWS)):
        sliced = {**params, **v.slice_params(part)}
        timed("seq, links, transitions", functools.partial(query, v.findings_sql(part=part, unchecked=True), sliced))
        timed("events and dossiers counted", functools.partial(query, v.totals_sql(part=part, unchecked=True), sliced))
    timed("reused ids", lambda: v._reused(query, "events", None, False, scope, params, True))
    timed("hashes", lambda: query(v.hash_sql(use_ledger=True), params))
    for label, seconds in times.items():
        print(f"{seconds:8.2f} s  {label}")
    print(f"{sum(times.values()):8.2f} s  in all; {scope:,} events checked again, load average {os.getloadavg()}")
    store.close()


if __name__ == "__main__":
    main()
