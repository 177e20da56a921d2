"""``dossier consume run``."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections import Counter
from collections.abc import Iterator

import click

from consumers.brokenparts import record_replayed, replay_sentence, unreplayed
from consumers.cli_dead import EXIT_DEAD_LETTERS, dead_letter_summary
from consumers.cliutil import emit, format_option, logger, pass_settings, quiet_option, user_errors
from consumers.live import DEFAULT_GROUP, DEFAULT_MAX_EVENTS, RunOptions
from consumers.migrations import cluster_of, migrate
from consumers.readerproc import load_live
from consumers.sink import Sink
from dossier_runtime.broker import BrokerHandle, embedded_broker
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[tuple[str, BrokerHandle | None]]:
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap, None
        return
    with embedded_broker(settings.data_dir) as handle:
        yield handle.bootstrap, handle


@click.command("run")
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Kafka consumer group.")
@click.option("--max-events", default=DEFAULT_MAX_EVENTS, show_default=True, help="Largest batch stored at once.")
@click.option("--max-wait", default=0.5, show_default=True, help="Seconds a batch waits for more events.")
@click.option("--stop-when-idle", type=float, default=None, help="Exit after this many seconds without events.")
@format_option
@quiet_option
@pass_settings
def run_cmd(
    settings: Settings,
    group: str,
    max_events: int,
    max_wait: float,
    stop_when_idle: float | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Load events from Kafka into the store, effectively once, until stopped.

    Offsets are committed only after a batch is stored; a crash, restart or
    rebalance replays at most a batch, which is not stored twice. Bad messages
    go to dead letters (a few are shown; `dossier consume dead-letters`
    lists them). Ctrl-C or SIGTERM stores the current batch, commits and
    exits 0, or 3 when this run dead-lettered anything. Progress (events/s, lag per partition) goes to stderr. The
    Kafka reader runs in a child process so that polling and storing overlap.

    \b
    Example:
      dossier consume run   # runs until Ctrl-C
      dossier consume run --stop-when-idle 10   # catch up, then exit
    """
    log = logger(quiet)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log(f"{signal.Signals(signum).name}: storing the current batch, then stopping")
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    options = RunOptions(group=group, max_events=max_events, max_wait_s=max_wait, stop_after_idle_s=stop_when_idle)
    try:
        with user_errors(), opened_store(settings, role="writer") as store, _broker(settings) as (bootstrap, handle):
            migrate(store, cluster=cluster_of(settings))
            broken = unreplayed(store, settings.data_dir)
            if broken:
                log(replay_sentence(broken))
                options = dataclasses.replace(options, replay_from_start=True)
            sink = Sink(store)
            try:
                log(f"loading {settings.topic} from {bootstrap} into {store.location}")
                summary = load_live(settings, sink, bootstrap, options, stop, broker=handle, log=log, quiet=quiet)
            finally:
                sink.close()
            if broken and summary.replayed:
                record_replayed(settings.data_dir, broken)
            elif broken:
                log("the replay did not reach the end of the topic; the next `dossier consume run` replays again")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    t = summary.totals
    emit(
        [
            {
                "batches": summary.batches,
                "stored": t.stored,
                "duplicates": t.duplicates,
                "dead_letters": len(t.dead),
                "broker_resets": summary.broker_resets,
            }
        ],
        fmt,
    )
    if t.dead:
        click.echo(dead_letter_summary(Counter(d.kind for d in t.dead), [settings.topic]), err=True)
        raise SystemExit(EXIT_DEAD_LETTERS)
