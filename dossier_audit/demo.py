"""``dossier demo``: the whole system on the embedded stack, from a simulated city to an inspection report.

It starts (or reuses) the embedded broker of the data directory, simulates a
city with injected violations, publishes it to Kafka, loads it into the
embedded ClickHouse with the live loader, then prints what an inspector
would look at first: the city scorecard, the findings per rule with a few
examples, the control sheet of one late dossier, the integrity verification,
and the commands to try next.

A second run simulates the same city again (same seed, same bytes) and
publishes it again: the loader recognises every event as already stored and
stores nothing twice, so the store and the report stay the same.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import click

from consumers.live import RunOptions
from consumers.readerproc import load_live
from consumers.sink import Sink
from dossier_audit.pipeline import PipelineResult, run_pipeline
from dossier_runtime.broker import BrokerHandle, embedded_broker, find_broker
from dossier_runtime.errors import RuntimeSetupError
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection import ledger
from inspection.audit import AuditReport, audit, select_rules
from inspection.controlsheet import build_control_sheet
from inspection.controlsheet_view import render_text
from inspection.history import load_history
from inspection.report_html import write_report
from inspection.scorecard import ScorecardQuery, compute_scorecard
from inspection.verify import VerifyReport, verify
from schemas.rendering import render, table_width
from schemas.rulebook import RULE_IDS


def _query(store: Store):  # type: ignore[no-untyped-def]
    return lambda sql, params: store.query(sql, params).rows


_SCORECARD_LINES = (
    ("received", "dossiers received"),
    ("on_time_pct", "2.1 handled early or on time, %"),
    ("late", "late dossiers"),
    ("apology_pct", "late dossiers with an apology, %"),
    ("apology_timely_pct", "  of which timely, %"),
    ("avg_handling_wd", "2.2 average handling time, working days"),
    ("online_pct", "3.3 submitted online, %"),
    ("digitised_pct", "4.2 digitised, %"),
    ("paid_online_pct", "3.6 fees paid online, %"),
    ("satisfaction_pct", "5.4 satisfaction, %"),
    ("points", "points (indicators with confirmed points)"),
)


def _late_dossier(store: Store) -> str | None:
    """A dossier that finished late with an apology: the kind an inspector replays first."""
    rows = store.query(
        "SELECT dossier_id FROM events WHERE event_type = 'ApologyIssued' ORDER BY dossier_id LIMIT 1"
    ).rows
    return str(rows[0][0]) if rows else None


def _findings_section(report: AuditReport, examples: int = 2) -> Iterator[str]:
    by_rule = Counter(f.rule for f in report.findings)
    yield f"Audit: {len(report.findings):,} findings by {len(by_rule)} rules (exit code 3 when there are findings)"
    shown: Counter[str] = Counter()
    rows = []
    for finding in report.findings:
        if shown[finding.rule] >= examples:
            continue
        shown[finding.rule] += 1
        rows.append(
            {
                "rule": finding.rule,
                "findings": by_rule[finding.rule],
                "dossier_id": finding.dossier_id,
                "actor_id": finding.actor_id or "",
                "evidence_seqs": ",".join(str(s) for s in finding.evidence_seqs),
                "explanation": finding.explanation,
            }
        )
    order = {rule: i for i, rule in enumerate(RULE_IDS)}
    rows.sort(key=lambda r: (order.get(str(r["rule"]), 99), str(r["dossier_id"])))
    hide = ["actor_id", "evidence_seqs", "findings"]  # the explanation is cut with … to fit, and kept
    yield render(rows, "table", width=table_width(), hide_first=hide) if rows else "(no findings)"


def _verify_section(report: VerifyReport) -> Iterator[str]:
    if report.ok:
        yield f"Integrity: {report.events:,} events of {report.dossiers:,} dossiers verified, chains intact"
        return
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items() if v)
    yield (
        f"Integrity: {report.events:,} events verified; {len(report.findings)} problems in "
        f"{len(report.first_divergence)} dossiers ({counts}) — the simulation injects seq gaps and altered events"
    )


def _report(store: Store, result: PipelineResult) -> Iterator[str]:
    sim = result.simulation
    loading = result.loading.totals
    yield ""
    yield "Pipeline"
    yield (
        f"  simulated {sim['counts']['dossiers']:,} dossiers / {sim['counts']['events']:,} events; "
        f"published {len(result.delivery.delivered):,}; the live loader stored {loading.stored:,} "
        f"({loading.duplicates:,} already stored, {len(loading.dead):,} dead letters) "
        f"in {result.loading.batches} batches"
    )
    if loading.duplicates and not loading.stored:
        yield "  (a second run: every event was already stored, and nothing was stored twice)"
    yield ""
    card = compute_scorecard(store, ScorecardQuery(level="city"))
    yield "City scorecard (Index 766-style indicators; `dossier inspect scorecard` has every unit and the points)"
    if not card.rows:
        yield "  (no dossiers)"
    for row in card.rows[:1]:
        for column, label in _SCORECARD_LINES:
            if row.get(column) is not None:
                yield f"  {label:<44} {row[column]}"
    yield ""
    yield from _findings_section(audit(_query(store), select_rules(RULE_IDS)))
    yield ""
    late = _late_dossier(store)
    if late is not None:
        yield f"Control sheet of a late dossier: dossier inspect replay {late}"
        yield render_text(build_control_sheet(load_history(store, late), now=datetime.now(UTC)), table_width())
        yield ""
    verified = verify(_query(store))
    yield from _verify_section(verified)
    note = ledger.record_and_tell(store.record_run, verified.entry)
    if note.startswith("recorded"):  # the run's id and part count differ from run to run
        note = "this verification is recorded; the next audit recomputes only the hashes of what changes"
    yield f"  integrity ledger: {note}"
    yield ""
    yield "Next, in another terminal while `dossier demo --keep-running` runs, or after it:"
    yield "  dossier inspect audit R10 --format csv        dossier inspect scorecard --level district --period quarter"
    yield "  dossier inspect accountability                dossier inspect flow"
    yield "  dossier inspect verify                        dossier consume status"


#: What city the demo put in a data directory (``<data dir>/demo/city.json``): a demo of another never mixes in.
CITY_FILE = "city.json"


def _city_here(settings: Settings, city: dict[str, int], fresh: bool, log: Callable[[str], None]) -> None:
    """Refuse to mix two cities in one store; with ``fresh``, delete the store first, saying so."""
    store_dir = settings.data_dir / "store"
    marker = settings.data_dir / "demo" / CITY_FILE
    if not store_dir.is_dir():
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if recorded == city:
        return  # the same city again: nothing is stored twice
    held = (
        f"a demo city of {recorded.get('dossiers'):,} dossiers (seed {recorded.get('seed')})"
        if isinstance(recorded, dict)
        else "events that no demo put there"
    )
    if fresh:
        if find_broker(settings.data_dir) is not None:
            raise click.ClickException(
                f"--fresh: a demo broker still runs for {settings.data_dir} (`dossier demo --keep-running`); "
                "stop it (Ctrl-C in its terminal) first"
            )
        log(f"--fresh: deleting the store in {store_dir} ({held}) and starting a new city")
        shutil.rmtree(store_dir)
        shutil.rmtree(settings.data_dir / "demo", ignore_errors=True)
        return
    with opened_store(settings, serve=False) as store:
        if not int(
            store.query(
                "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
            ).scalar()
            or 0
        ):
            return  # fmt: skip
        if not int(store.query("SELECT count() FROM events").scalar() or 0):
            return
    raise click.ClickException(
        f"the store in {store_dir} holds {held}; a demo of {city['dossiers']:,} dossiers (seed {city['seed']}) "
        "would mix two cities in one report. Use another directory (dossier --data-dir NEWDIR demo …), or add "
        "--fresh to delete this store first"
    )


@click.command("demo")
@click.option("--dossiers", type=click.IntRange(100, 2_000_000), default=20_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same city.")
@click.option("--keep-running", is_flag=True, help="Leave the broker and the live loader running afterwards.")
@click.option("--fresh", is_flag=True, help="Delete the store of another city in this directory first.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.pass_obj
def demo_cmd(settings: Settings, dossiers: int, seed: int, keep_running: bool, fresh: bool, quiet: bool) -> None:
    """Run the whole pipeline on the embedded stack and print an inspection report.

    Simulates a city with injected violations, publishes it to the embedded
    Kafka broker, loads it into the embedded ClickHouse with the live loader,
    then prints the city scorecard, findings per rule, the control sheet of a
    late dossier and the integrity check. The data stays in DOSSIER_DATA_DIR for
    `dossier inspect …`; running it again stores nothing twice. A directory
    holding another city (other --dossiers or --seed, or data loaded
    otherwise) is refused: use another one, or --fresh to start over there.

    \b
    Examples:
      dossier demo
      dossier demo --dossiers 100000 --keep-running   # runs until Ctrl-C
    """
    if settings.kafka_bootstrap or settings.clickhouse_url:
        raise click.UsageError(
            "the demo runs on the embedded stack: unset DOSSIER_KAFKA_BOOTSTRAP and DOSSIER_CLICKHOUSE_URL"
        )
    started = time.monotonic()
    progress = Progress(quiet, plain=True, started=started)
    log = progress.step
    city = {"dossiers": dossiers, "seed": seed}
    try:
        _city_here(settings, city, fresh, log)
        with (
            embedded_broker(settings.data_dir, keep_running=keep_running) as broker,
            opened_store(settings, role="writer") as store,
        ):
            marker = settings.data_dir / "demo" / CITY_FILE  # before loading: a run cut short can be run again
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(city), encoding="utf-8")
            result = run_pipeline(settings, store, broker, dossiers=dossiers, seed=seed, progress=progress)
            log("computing the report")
            for line in _report(store, result):
                click.echo(line)
            pictures = settings.data_dir / "report.html"
            for warning in write_report(store, pictures):
                log(f"warning: {warning}")
            click.echo(f"\nPictures of this report, to open in a browser: {pictures}")
            log(f"done in {time.monotonic() - started:.0f} s; data in {settings.data_dir}")
            if keep_running:
                _keep_running(settings, store, broker, log)
    except RuntimeSetupError as exc:
        raise click.ClickException(str(exc)) from None


def _keep_running(settings: Settings, store: Store, broker: BrokerHandle, log: Callable[[str], None]) -> None:
    """Go on loading in the foreground until Ctrl-C; the broker outlives the demo."""
    click.echo("")
    click.echo(
        f"The broker (pid {broker.pid}, {broker.bootstrap}) and the live loader keep running. In another terminal:"
    )
    click.echo(f"  dossier --data-dir {settings.data_dir} produce publish FILE.jsonl     (reuses this broker)")
    click.echo(f"  dossier --data-dir {settings.data_dir} inspect verify                 (reads through this process)")
    click.echo(f"Ctrl-C stops the loader; the broker keeps the topic until you stop it (kill {broker.pid}).")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sink = Sink(store)
    try:
        options = RunOptions(group="dossier-demo")
        load_live(settings, sink, broker.bootstrap, options, stop, broker=broker, log=log)
    finally:
        sink.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
