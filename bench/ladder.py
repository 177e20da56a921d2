"""The scale ladder (issue 20 §1): the whole pipeline at growing sizes, and how each figure grows.

Run (from the repository root; 10M and 50M want a quiet machine and ~25 GB of free disk at 50M)::

    .venv/bin/python -m bench.ladder --steps 1000000,10000000,50000000

For each step of ``--steps`` (events; the simulator makes ~12.2 events a dossier,
so a step asks for ``events / 12.2`` dossiers), in a new directory under
``--work-dir`` that is deleted after the step:

1. ``simulate``: ``dossier produce simulate --dossiers N --out DIR -q`` (the
   project's simulator, calibrated data with its injected findings; no synthetic
   events from ``bench/benchdata.py``: at ~50–110k events/s it is fast enough).
   Its last files (~``--live`` events) are held back for the live slice.
2. ``bulk load``: ``dossier consume load`` of every other file into a new store,
   then ClickHouse's bare insert of the same files (``bare``, as in
   :mod:`bench.bench_load`: the ratio loader / bare is what the loader's checks and
   derived tables cost), then ``dossier consume load-catalogue`` (timed apart).
3. ``verify``: ``dossier inspect verify`` in full, put on the integrity ledger.
4. ``live slice``: the first ``--live`` records of the held-back files (default
   a day of the city, ~752,000 events, at most a tenth of the step), published
   to a fresh embedded Tansu broker, then loaded into the same store by
   ``dossier consume run``'s path (:func:`bench.bench_consumer.loader_phases`: the
   reader in a child process, the store in the stage's process), timed from
   the group assignment to the last event stored, and from the first batch stored
   (the start-up apart: the loader's indexes of the store), then a raw kafka-python read of the
   same topic (:func:`bench.bench_consumer.raw_rate`: the issue's baseline for the
   ratio loader / raw). The rest of those files is not
   loaded: the dossiers past the slice are not stored, the one it cuts keeps its first events.
5. ``verify --use-ledger``: the run to schedule after each load (hashes recomputed
   only where the log changed since the ledger's run; every other check over all).
6. ``replay``: history fetch + control sheet of ``--samples`` random dossiers, p50 and p99.
7. ``rules``: the whole catalogue once, then each rule on its own.
8. ``reports``: :func:`bench.bench_reports.run` (scorecard and accountability, once each).
9. ``sizes``: active parts per table from ``system.parts`` (rows, compressed
   and on-disk bytes) per stored event, and the data directory's disk usage.
10. ``merged``: ``OPTIMIZE TABLE … FINAL`` of every table (timed), then the sizes
    again: the store once merges have rewritten the loaders' LZ4 staging parts
    with the tables' ZSTD codecs (migration 0014).

Every stage runs in a child process of its own (the CLI commands as they are,
the others as ``python -m bench.ladder --stage NAME``); its peak RSS is the
``ru_maxrss`` that ``wait4`` returns for it, which covers the largest process of
its tree (simulator workers, the live reader and broker). The live stage also
reports its own process (the store) apart from its children. Times are wall
seconds of the child, process start and store opening included.

After the steps, the growth from each step to the next: the ratio of times
(for a stage that scales linearly it equals the ratio of events) and of bytes
per event. ``--json FILE`` also writes every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENTS_PER_DOSSIER = 12.2
DAY = round(22_500_000 * EVENTS_PER_DOSSIER / 365)  # the city's events of an average day: ~752,000
DOSSIER = str(Path(sys.executable).parent / "dossier")
Result = dict[str, Any]


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _child(argv: list[str], log: Path) -> tuple[float, int, str]:
    """Run ``argv`` to the end: (wall s, peak RSS KiB from wait4, stdout). Raises when it fails."""
    started = time.perf_counter()
    with log.open("ab") as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
    if proc.returncode not in (0, 3):  # 3: findings or dead letters, still a complete run
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {proc.returncode}; see {log}")
    return wall, usage.ru_maxrss, text


def _stage(name: str, data_dir: Path, log: Path, **extra: Any) -> Result:
    """One ``--stage`` child: its result JSON with ``wall_s`` and ``rss_kib`` added."""
    result_file = data_dir.parent / f"{name}.json"
    argv = [sys.executable, "-m", "bench.ladder", "--stage", name, "--data-dir", str(data_dir)]
    argv += ["--result", str(result_file)]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    wall, rss, _out = _child(argv, log)
    result: Result = json.loads(result_file.read_text())
    return {**result, "wall_s": wall, "rss_kib": rss}


# --- stages run in a child process (``--stage NAME``) ---------------------------------------------------------


def _reader(data_dir: Path) -> Any:
    from dossier_runtime.settings import Settings
    from dossier_runtime.store import open_store

    return open_store(Settings(data_dir=data_dir), role="reader", serve=False)


def _query(store: Any) -> Callable[[str, dict[str, object]], list[tuple[object, ...]]]:
    def query(sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
        # No query condition cache: a rule run again must not skip granules it remembers as empty.
        return list(store.query(sql, params, settings={"use_query_condition_cache": "0"}).rows)

    return query


def stage_live(args: argparse.Namespace) -> Result:
    """Publish the slice to a fresh broker, then load it with ``consume run``'s path into the step's store."""
    import resource

    from bench.bench_consumer import TOPIC, loader_phases, raw_rate
    from consumers import dossierseqs
    from dossier_runtime.broker import start_broker, stop_broker
    from dossier_runtime.kafka import ensure_topic, make_producer
    from producers.cli_simulate import outbound_from_files

    dossierseqs.USE_INDEX = args.dossier_index == "on"
    broker = start_broker(log_path=args.data_dir.parent / "broker.log")
    try:
        started = time.perf_counter()
        ensure_topic(broker.bootstrap, TOPIC, 6)
        producer = make_producer(broker.bootstrap)
        sent = [
            producer.send(TOPIC, key=e.dossier_id.encode(), value=e.payload)
            for e in itertools.islice(outbound_from_files(args.live_dir), args.live)
        ]
        producer.flush()
        for future in sent:
            future.get(timeout=60)
        producer.close()
        published = time.perf_counter() - started
        phases = loader_phases(broker.bootstrap, len(sent), args.data_dir, 100_000)
        raw, _raw_s = raw_rate(broker.bootstrap, len(sent))  # the baseline: kafka-python reading the same topic
    finally:
        stop_broker(broker)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "events": len(sent),
        "publish_s": published,
        **phases,
        "raw_per_s": raw,
        "owner_kib": own,
        "children_kib": children,
    }


def stage_replay(args: argparse.Namespace) -> Result:
    from bench.bench_replay_disk import replay_times

    store = _reader(args.data_dir)
    try:
        took = sorted(replay_times(store, args.data_dir, args.samples, cold=False))
    finally:
        store.close()
    p99 = took[min(len(took) - 1, int(0.99 * len(took)))]
    return {"samples": len(took), "p50_ms": 1e3 * statistics.median(took), "p99_ms": 1e3 * p99}


def stage_rules(args: argparse.Namespace) -> Result:
    from inspection.audit import RuleRun, audit, select_rules
    from inspection.coverage import catalogue_blind, catalogue_warning

    store = _reader(args.data_dir)
    query, rules = _query(store), select_rules([])

    def progress(run: RuleRun) -> None:  # a stage cut short still says where its time went
        print(f"rule {run.rule}: {run.seconds:.1f} s, {run.findings:,} findings", file=sys.stderr, flush=True)

    started = time.perf_counter()
    report = audit(query, rules, on_rule=progress)
    catalogue = time.perf_counter() - started
    blind = catalogue_blind(report.coverage)
    if blind:  # their timings would be those of rules that judged nothing
        print(catalogue_warning(blind), file=sys.stderr)
    each = {run.rule: {"s": run.seconds, "findings": run.findings, "in_catalogue": True} for run in report.runs}
    for rule in rules if args.each else ():
        started = time.perf_counter()
        run = audit(query, [rule], as_of=report.as_of).runs[0]
        each[rule.id] = {"s": time.perf_counter() - started, "findings": run.findings}
    store.close()
    return {"catalogue_s": catalogue, "findings": len(report.findings), "rules": each, "not_judged": blind}


def stage_reports(args: argparse.Namespace) -> Result:
    from bench.bench_reports import run

    store = _reader(args.data_dir)
    rows = run(store, 1)
    store.close()
    return {"reports": {r["report"]: r["best_s"] for r in rows}}


def stage_sizes(args: argparse.Namespace) -> Result:
    store = _reader(args.data_dir)
    rows = store.query(
        "SELECT table, sum(rows), sum(data_compressed_bytes), sum(bytes_on_disk), count() FROM system.parts "
        "WHERE active AND database = currentDatabase() GROUP BY table ORDER BY sum(bytes_on_disk) DESC"
    ).rows
    events = int(store.query("SELECT count() FROM events").scalar())
    store.close()
    tables = {
        str(t): {"rows": int(n), "compressed": int(c), "on_disk": int(d), "parts": int(p)} for t, n, c, d, p in rows
    }
    return {"events": events, "tables": tables}


def stage_bare(args: argparse.Namespace) -> Result:
    """ClickHouse's bare insert of the bulk load's files (:func:`bench.bench_load.bare_run`: staged exactly as the
    loader stages them, no checks, no derived tables, no attach), in a store of its own deleted after."""
    from bench.bench_load import bare_run

    files = sorted(args.sim_dir.glob("events-*.avro"))
    data = args.data_dir.parent / "bare"
    try:
        events, wall, cpu = bare_run(files, data, args.data_dir.parent)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {"events": events, "insert_s": wall, "cpu_s": cpu, "events_per_s": events / wall}


def stage_merged(args: argparse.Namespace) -> Result:
    """``OPTIMIZE TABLE … FINAL`` of every table with parts, timed, then the sizes again: what the store takes once
    merges have rewritten everything (loaders write LZ4 staging parts; merges write the tables' ZSTD codecs)."""
    from dossier_runtime.settings import Settings
    from dossier_runtime.store import open_store

    store = open_store(Settings(data_dir=args.data_dir), role="writer", serve=False)
    tables = [
        str(t)
        for (t,) in store.query(
            "SELECT DISTINCT table FROM system.parts WHERE active AND database = currentDatabase() ORDER BY table"
        ).rows
    ]
    started = time.perf_counter()
    for table in tables:
        store.command(f"OPTIMIZE TABLE `{table}` FINAL")
    took = time.perf_counter() - started
    store.close()
    return {"optimize_s": took, **stage_sizes(args)}


STAGES: dict[str, Callable[[argparse.Namespace], Result]] = {
    "live": stage_live,
    "replay": stage_replay,
    "rules": stage_rules,
    "reports": stage_reports,
    "sizes": stage_sizes,
    "merged": stage_merged,
    "bare": stage_bare,
}


# --- the ladder (parent process) ------------------------------------------------------------------------------


def _disk_usage(path: Path) -> int:
    return sum(os.lstat(Path(d) / f).st_blocks * 512 for d, _dirs, files in os.walk(path) for f in files)


def hold_back(sim: Path, live_dir: Path, live: int, events: int) -> None:
    """Move the last files of the simulation to ``live_dir`` until they hold about ``live`` events (by size);
    at least one file stays for the bulk load."""
    live_dir.mkdir()
    files = sorted(sim.glob("events-*.avro"))
    per_event = sum(p.stat().st_size for p in files) / events
    held = 0.0
    while held < live * per_event and len(files) > 1:
        last = files.pop()
        held += last.stat().st_size
        last.rename(live_dir / last.name)
    if not held:
        raise SystemExit(f"the simulation of this step is one file: none is left for a live slice of {live:,} events")


def run_step(events: int, work: Path, log: Path, live: int, samples: int) -> Result:
    """Every stage at one size, in ``work`` (deleted by the caller); the children's stderr goes to ``log``."""
    sim, live_dir, data = work / "sim", work / "live", work / "data"
    out: Result = {"target": events, "load_start": _loadavg()}
    dossiers = round(events / EVENTS_PER_DOSSIER)
    wall, rss, text = _child(
        [DOSSIER, "produce", "simulate", "--dossiers", str(dossiers), "--out", str(sim), "-q"], log
    )
    out["simulate"] = {"wall_s": wall, "rss_kib": rss, "events": json.loads(text)["events"], "dossiers": dossiers}
    hold_back(sim, live_dir, live, out["simulate"]["events"])
    files = [str(p) for p in sorted(sim.glob("events-*.avro"))]
    wall, rss, text = _child(
        [DOSSIER, "--data-dir", str(data), "consume", "load", *files, "-q", "--format", "json"], log
    )
    rows = json.loads(text)
    loaded, own = sum(row["stored"] for row in rows), sum(row["seconds"] for row in rows)
    out["bulk"] = {"wall_s": wall, "rss_kib": rss, "events": loaded, "events_per_s": loaded / wall, "files_s": own}
    out["bare"] = _stage("bare", data, log, sim_dir=sim)
    wall, rss, _ = _child([DOSSIER, "--data-dir", str(data), "consume", "load-catalogue", str(sim), "-q"], log)
    out["catalogue"] = {"wall_s": wall, "rss_kib": rss}
    shutil.rmtree(sim)  # the Avro files are not needed any more: the disk is the limit at 50M
    out["verify"] = _verify(data, log, "--record")  # a full run, put on the integrity ledger
    out["live"] = _stage("live", data, log, live_dir=live_dir, live=live)
    out["verify_ledger"] = _verify(data, log, "--use-ledger")  # the run to schedule after each load
    for name in ("replay", "rules", "reports", "sizes", "merged"):
        if name == "merged":  # before the merges: their replaced parts stay on disk a while
            out["du"] = _disk_usage(data)
        out[name] = _stage(name, data, log, samples=samples)
        print(f"  {name} done in {out[name]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    out["load_end"] = _loadavg()
    return out


def _verify(data: Path, log: Path, mode: str) -> Result:
    """``dossier inspect verify`` as an inspector runs it (``--record``: full, on the ledger; ``--use-ledger``)."""
    wall, rss, text = _child(
        [DOSSIER, "--data-dir", str(data), "inspect", "verify", mode, "-q", "--format", "json"], log
    )
    report = json.loads(text)
    return {"wall_s": wall, "rss_kib": rss, "findings": len(report["findings"]), **report["computed_on"]}


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def step_rows(r: Result) -> list[tuple[str, float, str, str]]:
    """(stage, wall s, figure, peak RSS MiB) of one step."""
    live, replay, rules, bulk = r["live"], r["replay"], r["rules"], r["bulk"]
    rate, publish = f"{live['events_per_s']:,.0f} events/s", f"publish {live['publish_s']:.1f} s"
    if "raw_per_s" in live:
        ratio = live["events_per_s"] / live["raw_per_s"]
        publish += f"; raw kafka-python {live['raw_per_s']:,.0f}/s, loader / raw {ratio:.2f}"
    stored = f"{live['events']:,} events, {rate} stored ({publish})"
    rows = [
        ("simulate", r["simulate"]["wall_s"], f"{r['simulate']['events']:,} events", _mib(r["simulate"]["rss_kib"])),
        ("bulk load", bulk["wall_s"], f"{bulk['events']:,} events, {bulk['events_per_s']:,.0f} events/s "
         f"({bulk['events'] / bulk['files_s']:,.0f} over the files' own seconds)", _mib(bulk["rss_kib"])),
        ("bare insert", r["bare"]["wall_s"], f"{r['bare']['events_per_s']:,.0f} events/s inserted; loader / bare "
         f"{(bulk['events'] / bulk['files_s']) / r['bare']['events_per_s']:.2f} over the files' own seconds",
         _mib(r["bare"]["rss_kib"])),
        ("load-catalogue", r["catalogue"]["wall_s"], "", _mib(r["catalogue"]["rss_kib"])),
        ("live slice", live["wall_s"], stored,
         f"{_mib(live['owner_kib'])} (store), {_mib(live['children_kib'])} (reader/broker)"),
        ("replay", replay["wall_s"], f"p50 {replay['p50_ms']:.1f} ms, p99 {replay['p99_ms']:.1f} ms",
         _mib(replay["rss_kib"])),
        ("rules", rules["wall_s"], f"catalogue {rules['catalogue_s']:.2f} s, {rules['findings']:,} findings"
         + (f"; judged nothing (no catalogue): {', '.join(rules['not_judged'])}" if rules.get("not_judged") else ""),
         _mib(rules["rss_kib"])),
    ]  # fmt: skip
    rows += [(f"  {rule}", v["s"], f"{v['findings']:,} findings", "") for rule, v in rules["rules"].items()]
    rows.append(("reports", r["reports"]["wall_s"], "", _mib(r["reports"]["rss_kib"])))
    rows += [(f"  {name}", s, "", "") for name, s in r["reports"]["reports"].items()]
    for key, label in (("verify", "verify (full, on the ledger)"), ("verify_ledger", "verify --use-ledger")):
        v = r[key]
        figure = f"{v['findings']:,} findings; {v['checked_events']:,} events checked, {v['ledger']}"
        rows.append((label, v["wall_s"], figure, _mib(v["rss_kib"])))
    return rows


def bytes_per_event(r: Result) -> dict[str, float]:
    events = r["sizes"]["events"]
    per = {t: v["on_disk"] / events for t, v in r["sizes"]["tables"].items()}
    out = {"all tables": sum(per.values()), "du of the store": r["du"] / events, **per}
    if "merged" in r:
        out["all tables, merged"] = sum(v["on_disk"] for v in r["merged"]["tables"].values()) / events
    return out


def print_step(r: Result) -> None:
    events = r["sizes"]["events"]
    print(f"\n## {events:,} events stored (step {r['target']:,}); load average {r['load_start']} → {r['load_end']}\n")
    print("| stage | wall s | figure | peak RSS MiB |\n|---|---|---|---|")
    for stage, wall, figure, rss in step_rows(r):
        print(f"| {stage} | {wall:.2f} | {figure} | {rss} |")
    merged = r.get("merged", {"tables": {}, "optimize_s": 0.0})
    print(
        "\n| table | rows | parts | compressed bytes/event | on disk bytes/event | merged: parts, on disk bytes/event |"
        "\n|---|---|---|---|---|---|"
    )
    for table, v in r["sizes"]["tables"].items():
        m = merged["tables"].get(table)
        after = f"{m['parts']}, {m['on_disk'] / events:.1f}" if m else ""
        print(
            f"| {table} | {v['rows']:,} | {v['parts']} | {v['compressed'] / events:.1f} | {v['on_disk'] / events:.1f} "
            f"| {after} |"
        )
    per = bytes_per_event(r)
    print(f"| all tables | | | | {per['all tables']:.1f} | {per.get('all tables, merged', 0):.1f} |")
    print(f"| du of the store | | | | {per['du of the store']:.1f} | |")
    if merged["tables"]:
        print(f"\nOPTIMIZE TABLE … FINAL of every table: {merged['optimize_s']:.1f} s.")


def print_growth(a: Result, b: Result) -> None:
    ratio = b["sizes"]["events"] / a["sizes"]["events"]
    print(f"\n## growth {a['sizes']['events']:,} → {b['sizes']['events']:,} events (×{ratio:.2f})\n")
    print("| stage | time ratio |\n|---|---|")
    for (stage, wall_a, _f, _r), (_s, wall_b, _g, _q) in zip(step_rows(a), step_rows(b), strict=True):
        print(f"| {stage} | {wall_b / wall_a:.2f} |")
    print(f"| replay p99 | {b['replay']['p99_ms'] / a['replay']['p99_ms']:.2f} |")
    print("\n| bytes per event | ratio |\n|---|---|")
    per_a, per_b = bytes_per_event(a), bytes_per_event(b)
    for name in per_b:
        if per_a.get(name):
            print(f"| {name} | {per_b[name] / per_a[name]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1000000,10000000,50000000", help="events per step, comma-separated")
    parser.add_argument(
        "--live", type=int, default=DAY, help="events of the live slice, at most a tenth of a step (default: a day)"
    )
    parser.add_argument("--samples", type=int, default=200, help="dossiers replayed")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--live-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sim-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--each", type=int, default=1, help=argparse.SUPPRESS)  # rules: each also run alone
    # live: "off" loads as before the loader's dossier index (asking dossier_state every batch), to compare
    parser.add_argument("--dossier-index", choices=("on", "off"), default="on", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        args.result.write_text(json.dumps(STAGES[args.stage](args)))
        return
    results: list[Result] = []
    print(f"ladder {args.steps}; load average {_loadavg()}; {os.cpu_count()} cores", flush=True)
    for events in (int(s) for s in args.steps.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"ladder-{events}-", dir=args.work_dir))
        try:
            log = args.work_dir / f"ladder-{events}.log"  # kept: what the children said on stderr
            results.append(run_step(events, work, log, min(args.live, events // 10), args.samples))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print_step(results[-1])
        if len(results) > 1:
            print_growth(results[-2], results[-1])
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
