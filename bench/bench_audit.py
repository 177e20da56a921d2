"""Audit rules on a big store: seconds per rule and for the whole catalogue, measured in the process.

Target (issue 5 §8): each rule ≤ 2 s, the catalogue ≤ 30 s on 10 million events.

Run (a simulation of ~830k dossiers is ~10M events; 1.5M dossiers is ~18M)::

    .venv/bin/dossier produce simulate --dossiers 830000 --out /tmp/sim10m -q
    .venv/bin/python bench/bench_audit.py --sim /tmp/sim10m --data-dir /tmp/bench-audit

The first run loads the Avro files with the bulk loader (``dossier consume
load``'s path) and the catalogue into ``--data-dir`` (its own embedded store:
chDB is one process per directory). Each rule runs
``--repeat`` times (the best is kept) after one warm-up run of the whole
catalogue; wall and CPU seconds are printed (CPU counts both cores, so on an
idle 2-core machine wall ≈ CPU / 2), with the one-minute load average. A rule's
figure includes looking up who and where for its findings; the catalogue looks
them up once for every rule.

``--check`` also compares the catalogue's findings with the simulator's
manifest.jsonl (same dossier, rule and evidence seqs): precision and recall
per rule, a few differing dossiers of each rule below 100%, and exit status 1
when any rule is below 100% (the correctness target of issue 20 §3: 100% at
10 million events).

INTEGRITY-HASH recomputes the hashes of the parts the integrity ledger does
not cover (:mod:`inspection.ledger`). ``--verify-first`` runs a full verify
and puts it on the ledger before the timings (the state after a scheduled
verify); the rule is then also timed with ``full_recompute=1`` (every hash),
and the coverage it ran with is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeAlias

from consumers.bulk import load_files
from consumers.catalogue import load_catalogue
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, open_store
from inspection import ledger
from inspection.audit import Finding, audit, parse_params, select_rules
from inspection.coverage import catalogue_blind, catalogue_warning
from inspection.rules import CATALOGUE
from inspection.verify import verify

#: (dossier_id, rule, evidence seqs): one finding, or one manifest line.
Key: TypeAlias = tuple[str, str, tuple[int, ...]]


def load(store: Store, sim: Path, work_dir: Path) -> None:
    """Load the simulation with the bulk loader (``dossier consume load``'s path: the stored layout of ``events``,
    the derived tables, dead letters) and its catalogue; only the catalogue when the store holds events already
    without one (a store loaded by ``dossier consume load`` alone: R7, R16 and R20's (b) would judge nothing)."""
    migrate(store)
    if store.query("SELECT count() FROM events").rows[0][0]:
        if not store.query("SELECT count() FROM procedures").rows[0][0] and (sim / "procedures.jsonl").is_file():
            load_catalogue(store, sim)
            print(f"loaded the procedure catalogue of {sim}")
        return
    started = time.perf_counter()
    sink = Sink(store, engine="MergeTree")
    dead = 0
    try:
        for loaded in load_files(sink, sorted(sim.glob("events-*.avro")), work_dir):
            dead += len(loaded.result.dead)
    finally:
        sink.close()
    if dead:  # the manifest judges every event the simulator wrote: a comparison without some would mislead
        raise SystemExit(f"{dead:,} events of {sim} were dead-lettered; see `dossier consume dead-letters`")
    load_catalogue(store, sim)
    store.command("OPTIMIZE TABLE events FINAL")
    print(f"loaded {sim} in {time.perf_counter() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sim", type=Path, default=Path("/tmp/sim10m"))
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/bench-audit"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--verify-first", action="store_true", help="run a full verify and record it on the ledger")
    parser.add_argument("rules", nargs="*")
    args = parser.parse_args()
    store = open_store(Settings(data_dir=args.data_dir), role="writer", serve=False)
    load(store, args.sim, args.data_dir)
    events, dossiers = store.query("SELECT count(), uniqExact(dossier_id) FROM events").rows[0]
    print(f"store {args.data_dir}: {events:,} events, {dossiers:,} dossiers")

    def query(sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
        # No query condition cache: a repeated run must not skip granules it remembers as empty.
        return list(store.query(sql, params, settings={"use_query_condition_cache": "0"}).rows)

    if args.verify_first:
        wall, cpu = time.perf_counter(), time.process_time()
        entry = verify(query).entry
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        if entry is not None:
            ledger.record(store.append, entry)
        recorded = f"recorded {len(entry.parts)} parts" if entry else "not recordable"
        print(f"verify (full) {took[0]:.2f} s wall {took[1]:.2f} s cpu, {recorded}")

    rules = select_rules(args.rules)
    wall, cpu = time.perf_counter(), time.process_time()
    report = audit(query, rules)  # warm-up, and the whole catalogue in one go
    catalogue_wall, catalogue_cpu = time.perf_counter() - wall, time.process_time() - cpu
    catalogue_load = os.getloadavg()[0]  # one-minute load average: the machine is often shared
    blind = catalogue_blind(report.coverage)
    if blind:  # timings and findings of rules that judged nothing are no measure of them
        print(catalogue_warning(blind), file=sys.stderr)
    print(f"{'rule':15s} {'findings':>8s} {'wall s':>7s} {'cpu s':>7s} {'load':>5s}")
    for rule in rules:
        best: tuple[float, float] | None = None
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            run = audit(query, [rule], as_of=report.as_of).runs[0]
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best = took if best is None or took[0] < best[0] else best
        assert best is not None
        print(f"{rule.id:15s} {run.findings:8d} {best[0]:7.2f} {best[1]:7.2f} {os.getloadavg()[0]:5.2f}", flush=True)
        if rule.id == "INTEGRITY-HASH":
            wall, cpu = time.perf_counter(), time.process_time()
            full = audit(query, [rule], params=parse_params(["full_recompute=1"]), as_of=report.as_of)
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            line = f"{'  full':15s} {full.runs[0].findings:8d} {took[0]:7.2f} {took[1]:7.2f} {os.getloadavg()[0]:5.2f}"
            print(f"{line}  (full_recompute=1; the rule above ran with: {report.integrity})", flush=True)
    print(
        f"{'catalogue':15s} {len(report.findings):8d} {catalogue_wall:7.2f} {catalogue_cpu:7.2f} {catalogue_load:5.2f}"
    )
    failed = check(args.sim / "manifest.jsonl", report.findings, [r.id for r in rules]) if args.check else []
    store.close()
    if failed:
        raise SystemExit(f"below 100% precision or recall against the manifest: {', '.join(failed)}")


def check(manifest: Path, findings: Iterable[Finding], rule_ids: Sequence[str], examples: int = 5) -> list[str]:
    """Print precision and recall of each rule against the simulator's manifest; return the rules below 100%.

    A finding matches a manifest line with the same dossier, rule and evidence seqs (a right dossier with other
    evidence is both a false finding and a miss). For a rule below 100%, up to ``examples`` dossiers of each kind
    are printed: found but not in the manifest, in the manifest but not found. A manifest rule the catalogue does
    not know fails the check too (it could never be found).
    """
    expected: set[Key] = set()
    for line in manifest.read_text().splitlines():
        o = json.loads(line)
        expected.add((o["dossier_id"], o["rule"], tuple(o["evidence_seqs"])))
    found = {(f.dossier_id, f.rule, f.evidence_seqs) for f in findings}
    failed = sorted({m[1] for m in expected} - set(CATALOGUE))
    for rule in failed:
        print(f"{rule:15s} in the manifest but not in the catalogue")
    print(f"{'rule':15s} {'precision':>9s} {'recall':>9s} {'matched':>8s} {'found':>8s} {'manifest':>8s}")
    for rule in rule_ids:
        mine = {f for f in found if f[1] == rule}
        theirs = {m for m in expected if m[1] == rule}
        hit = len(mine & theirs)
        precision = hit / len(mine) if mine else 1.0
        recall = hit / len(theirs) if theirs else 1.0
        print(f"{rule:15s} {precision:9.4%} {recall:9.4%} {hit:8d} {len(mine):8d} {len(theirs):8d}", flush=True)
        if hit < len(mine) or hit < len(theirs):
            failed.append(rule)
            for label, keys in (
                ("found, not in the manifest", mine - theirs),
                ("in the manifest, not found", theirs - mine),
            ):
                for dossier, _, seqs in sorted(keys)[:examples]:
                    print(f"  {label}: {dossier} evidence {list(seqs)}")
    return failed


if __name__ == "__main__":
    main()
