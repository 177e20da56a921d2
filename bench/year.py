"""A whole year of Ho Chi Minh City (issue 20 §1): 22.5 million dossiers simulated, loaded, audited, verified.

Run (from the repository root, on a quiet machine; ~2 hours on 2 cores, ~35 GB of free disk at the peak)::

    .venv/bin/python -m bench.year --work-dir /tmp/year --json year.json

The year's Avro (~290 bytes an event, ~80 GB) does not fit a laptop's disk, so it
is simulated in ``--parts`` parts (``dossier produce simulate --part K/N``: the
whole run's files for those shards, byte for byte) and each part is bulk-loaded
(``dossier consume load``) into the one growing store, then its files deleted:
the store sees the year as an inspector's would after a year of monthly imports.
The last files of the last part (~``--live`` events, a day of the city) are held
back for the live slice.

Then, on the year's store, the stages of :mod:`bench.ladder`, each in a child
process of its own (its peak RSS from ``wait4``): ``load-catalogue``, ``verify``
in full (recorded on the integrity ledger), the live slice (loader / raw
kafka-python), ``verify --use-ledger``, replay p50/p99, the scorecard and
accountability reports, sizes per table, and the rule catalogue once (each
rule's time is its run inside the catalogue: at this size running each rule
again alone would double the stage). ClickHouse's bare insert is not run (the
issue's loader / bare target is at 1M and 10M; the ladder measures it), nor
``OPTIMIZE … FINAL`` (it would rewrite the whole store on a disk that holds it
once).

A stage that fails (say an out-of-memory kill) is recorded with its error and
the run goes on to the next. ``--json`` is rewritten after every stage, so a run
cut short keeps what it measured. The store is kept in ``--work-dir`` unless
``--delete``, to measure later changes on the same year.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ladder import DAY, DOSSIER, Result, _child, _loadavg, _mib, _stage, _verify, hold_back

YEAR_DOSSIERS = 22_500_000


def load_parts(args: argparse.Namespace, out: Result, save: Callable[[], None]) -> None:
    """Simulate and bulk-load the year part by part; the last part's last files go to the live slice."""
    sim, live_dir, data, log = args.work_dir / "sim", args.work_dir / "live", args.work_dir / "data", args.log
    out["parts"] = []
    for k in range(1, args.parts + 1):
        part: Result = {"part": k, "load_start": _loadavg()}
        argv = [DOSSIER, "produce", "simulate", "--dossiers", str(args.dossiers), "--part", f"{k}/{args.parts}"]
        wall, rss, text = _child([*argv, "--out", str(sim), "-q"], log)
        part["simulate"] = {"wall_s": wall, "rss_kib": rss, "events": json.loads(text)["events"]}
        if k == args.parts:
            hold_back(sim, live_dir, args.live, part["simulate"]["events"])
        files = [str(p) for p in sorted(sim.glob("events-*.avro"))]
        load = [DOSSIER, "--data-dir", str(data), "consume", "load", *files, "-q", "--format", "json"]
        wall, rss, text = _child(load, log)
        rows = json.loads(text)
        stored = sum(row["stored"] for row in rows)
        part["load"] = {"wall_s": wall, "rss_kib": rss, "events": stored, "events_per_s": stored / wall}
        for name in files:
            Path(name).unlink()
        part["load_end"] = _loadavg()
        out["parts"].append(part)
        total = sum(p["load"]["events"] for p in out["parts"])
        print(
            f"part {k}/{args.parts}: simulated {part['simulate']['events']:,} events in "
            f"{part['simulate']['wall_s']:.0f} s; loaded {stored:,} in {wall:.0f} s ({stored / wall:,.0f}/s, "
            f"{_mib(rss)} MiB); {total:,} stored; load {part['load_end']}",
            file=sys.stderr,
            flush=True,
        )
        save()


def run(args: argparse.Namespace, out: Result, save: Callable[[], None]) -> None:
    data, log = args.work_dir / "data", args.log
    out["load_start"] = _loadavg()
    load_parts(args, out, save)
    stages: list[tuple[str, Callable[[], Result]]] = [
        ("catalogue", lambda: _catalogue(args)),
        ("verify", lambda: _verify(data, log, "--record")),
        ("live", lambda: _stage("live", data, log, live_dir=args.work_dir / "live", live=args.live)),
        ("verify_ledger", lambda: _verify(data, log, "--use-ledger")),
        ("replay", lambda: _stage("replay", data, log, samples=args.samples)),
        ("reports", lambda: _stage("reports", data, log)),
        ("sizes", lambda: _stage("sizes", data, log)),
        ("rules", lambda: _stage("rules", data, log, each=0)),
    ]
    for name, stage in stages:
        started = time.perf_counter()
        try:
            out[name] = stage()
        except Exception as exc:  # a stage's failure is a figure of the year too; the next stages still run
            out[name] = {"error": str(exc), "wall_s": time.perf_counter() - started}
        out[name]["load_end"] = _loadavg()
        print(f"{name}: {time.perf_counter() - started:.0f} s; load {out[name]['load_end']}", file=sys.stderr)
        save()


def _catalogue(args: argparse.Namespace) -> Result:
    data, sim = args.work_dir / "data", args.work_dir / "sim"
    wall, rss, _ = _child([DOSSIER, "--data-dir", str(data), "consume", "load-catalogue", str(sim), "-q"], args.log)
    return {"wall_s": wall, "rss_kib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True, help="a new or empty directory for the run")
    parser.add_argument("--dossiers", type=int, default=YEAR_DOSSIERS, help="dossiers of the year")
    parser.add_argument("--parts", type=int, default=12, help="parts simulated and loaded one after another")
    parser.add_argument("--live", type=int, default=DAY, help="events of the live slice (default: a day)")
    parser.add_argument("--samples", type=int, default=200, help="dossiers replayed")
    parser.add_argument("--json", type=Path, help="also write every figure to this file (after every stage)")
    parser.add_argument("--delete", action="store_true", help="delete the store at the end")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if any(args.work_dir.iterdir()):
        raise SystemExit(f"{args.work_dir} is not empty: the year starts from an empty store")
    args.log = args.work_dir / "year.log"  # what the children said on stderr
    out: Result = {"dossiers": args.dossiers, "parts_of": args.parts}

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))

    try:
        run(args, out, save)
    finally:
        out["load_end"] = _loadavg()
        save()
        if args.delete:
            shutil.rmtree(args.work_dir / "data", ignore_errors=True)
    print(json.dumps(summary(out), indent=1))


def summary(out: Result) -> dict[str, Any]:
    """The year's headline figures against issue 20's targets (the JSON holds every figure)."""
    parts = out.get("parts", [])
    events = sum(p["load"]["events"] for p in parts)
    load_s = sum(p["load"]["wall_s"] for p in parts)
    head: dict[str, Any] = {
        "events bulk-loaded": events,
        "bulk load s (target ≤ 900)": round(load_s),
        "bulk load events/s (target ≥ 300,000)": round(events / load_s) if load_s else None,
        "simulate s": round(sum(p["simulate"]["wall_s"] for p in parts)),
        "peak RSS MiB of any load": max((p["load"]["rss_kib"] // 1024 for p in parts), default=None),
    }
    for name in ("catalogue", "verify", "live", "verify_ledger", "replay", "reports", "sizes", "rules"):
        if name in out:
            head[name] = {k: v for k, v in out[name].items() if k != "tables" and k != "rules"}
    return head


if __name__ == "__main__":
    main()
