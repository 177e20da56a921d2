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
    parser.add_argument("--work-dir", type=Path, help="a new or empty directory for the run (required to run)")
    parser.add_argument("--dossiers", type=int, default=YEAR_DOSSIERS, help="dossiers of the year")
    parser.add_argument("--parts", type=int, default=12, help="parts simulated and loaded one after another")
    parser.add_argument("--live", type=int, default=DAY, help="events of the live slice (default: a day)")
    parser.add_argument("--samples", type=int, default=200, help="dossiers replayed")
    parser.add_argument("--json", type=Path, help="also write every figure to this file (after every stage)")
    parser.add_argument("--delete", action="store_true", help="delete the store at the end")
    parser.add_argument("--report", type=Path, help="only print the Markdown tables of a --json file written before")
    args = parser.parse_args()
    if args.report:
        print("\n".join(report(json.loads(args.report.read_text()))))
        return
    if args.work_dir is None:
        parser.error("--work-dir is required to run the year")
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
    print("\n".join(report(out)))


def _s(stage: Result, key: str = "wall_s") -> str:
    return "failed: " + str(stage["error"])[:80] if "error" in stage else f"{stage[key]:,.1f} s"


def report(out: Result) -> list[str]:
    """The year's figures as Markdown: one row per part, then one per stage against issue 20's targets."""
    lines = ["| part | simulated events | simulate s | loaded events/s | load s | load peak RSS MiB | load average |"]
    lines.append("|---|---|---|---|---|---|---|")
    for p in out.get("parts", []):
        sim, load = p["simulate"], p["load"]
        lines.append(
            f"| {p['part']} | {sim['events']:,} | {sim['wall_s']:.0f} | {load['events_per_s']:,.0f} | "
            f"{load['wall_s']:.0f} | {_mib(load['rss_kib'])} | {p['load_start']} → {p['load_end']} |"
        )
    parts = out.get("parts", [])
    events = sum(p["load"]["events"] for p in parts)
    load_s = sum(p["load"]["wall_s"] for p in parts)
    if not load_s:
        return lines
    lines += ["", "| stage | figure | peak RSS MiB | target |", "|---|---|---|---|"]
    peak = max(p["load"]["rss_kib"] for p in parts)
    lines.append(
        f"| bulk load of the year | {events:,} events in {load_s:,.0f} s: {events / load_s:,.0f} events/s | "
        f"{_mib(peak)} | ≤ 900 s, ≥ 300,000/s |"
    )
    rows: list[tuple[str, str, str, str]] = []
    if "catalogue" in out:
        rows.append(("load-catalogue", _s(out["catalogue"]), _rss(out["catalogue"]), ""))
    if "verify" in out:
        rows.append(("verify, full (on the ledger)", _verify_figure(out["verify"]), _rss(out["verify"]), ""))
    if "live" in out:
        live = out["live"]
        figure = _s(live)
        if "raw_per_s" in live:
            figure = (
                f"{live['events']:,} events: {live['events_per_s']:,.0f}/s; raw kafka-python "
                f"{live['raw_per_s']:,.0f}/s; loader / raw {live['events_per_s'] / live['raw_per_s']:.2f}"
            )
        if live.get("steady_per_s"):
            figure += (
                f"; first batch after {live['first_batch_s']:.1f} s, then {live['steady_per_s']:,.0f}/s "
                f"({live['steady_per_s'] / live['raw_per_s']:.2f} of raw)"
            )
        rows.append(("live slice (a day)", figure, _rss(live, "owner_kib"), "loader / raw ≥ 0.85"))
    if "verify_ledger" in out:
        v = out["verify_ledger"]
        rows.append(("verify --use-ledger after the day", _verify_figure(v), _rss(v), "≤ 60 s"))
    if "replay" in out:
        r = out["replay"]
        figure = _s(r) if "error" in r else f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms ({r['samples']})"
        rows.append(("replay", figure, _rss(r), "p99 ≤ 50 ms"))
    for name, seconds in out.get("reports", {}).get("reports", {}).items():
        rows.append((name, f"{seconds:.2f} s", "", "≤ 10 s" if name.startswith("scorecard") else ""))
    if "sizes" in out and "error" not in out["sizes"]:
        sizes = out["sizes"]
        on_disk = sum(t["on_disk"] for t in sizes["tables"].values())
        figure = f"{on_disk / 1e9:,.1f} GB on disk, {on_disk / sizes['events']:.1f} bytes an event, as loaded"
        rows.append(("store", figure, "", "≤ 64 bytes an event"))
    if "rules" in out:
        rules = out["rules"]
        if "error" in rules:
            rows.append(("rule catalogue", _s(rules), _rss(rules), "≤ 300 s"))
        else:
            slowest = sorted(rules["rules"].items(), key=lambda kv: -kv[1]["s"])[:4]
            figure = f"{rules['catalogue_s']:,.1f} s, {rules['findings']:,} findings; slowest " + ", ".join(
                f"{rule} {v['s']:.1f} s" for rule, v in slowest
            )
            if rules.get("not_judged"):
                figure += f"; judged nothing (no catalogue): {', '.join(rules['not_judged'])}"
            rows.append(("rule catalogue", figure, _rss(rules), "≤ 300 s; each rule ≤ 30 s"))
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines


def _rss(stage: Result, key: str = "rss_kib") -> str:
    return _mib(stage[key]) if key in stage else ""


def _verify_figure(v: Result) -> str:
    if "error" in v:
        return _s(v)
    return f"{v['wall_s']:,.1f} s; {v['findings']:,} findings; {v['checked_events']:,} events checked"


if __name__ == "__main__":
    main()
