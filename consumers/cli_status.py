"""``dossier consume status``."""

from __future__ import annotations

import click

from consumers.cliutil import emit, format_option, logger, pass_settings, quiet_option, user_errors
from consumers.status import broker_lag, partition_positions, store_summary
from dossier_runtime.broker import find_broker
from dossier_runtime.errors import BrokerError
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


@click.command("status")
@click.option("--no-lag", is_flag=True, help="Do not contact the broker.")
@format_option
@quiet_option
@pass_settings
def status_cmd(settings: Settings, no_lag: bool, fmt: str, quiet: bool) -> None:
    """What the store holds: events, dossiers, dead letters, last stored offset and lag per partition.

    Works while `dossier consume run` is running (it reads through that process).

    \b
    Example:
      dossier consume status --format json
    """
    log = logger(quiet)
    with user_errors(), opened_store(settings) as store:
        summary = store_summary(store)
        positions = partition_positions(store, settings.topic)
    lags: dict[int, int | None] = {}
    if not no_lag:
        bootstrap = settings.kafka_bootstrap
        if bootstrap is None:
            handle = find_broker(settings.data_dir)
            bootstrap = handle.bootstrap if handle else None
        if bootstrap is None:
            log("no broker running for this data directory: lag not shown")
        else:
            try:
                lags = broker_lag(settings, bootstrap, positions)
            except BrokerError as exc:
                log(f"lag not shown: {exc}")
    for row in positions:
        row["lag"] = lags.get(row["partition"])
    for partition, lag in lags.items():
        if not any(r["partition"] == partition for r in positions):
            positions.append(
                {"topic": settings.topic, "partition": partition, "last_stored_offset": None, "events": 0, "lag": lag}
            )
    positions.sort(key=lambda r: r["partition"])
    if summary["unfinished_note"]:
        click.echo(f"warning: {summary['unfinished_note']}", err=True)
    if summary["broken_note"]:
        click.echo(f"warning: {summary['broken_note']}", err=True)
    if fmt == "table":
        emit([summary], fmt, ["events", "dossiers", "dead_letters", "last_stored_at", "store"])
        if positions:
            click.echo()
            emit(positions, fmt, ["topic", "partition", "last_stored_offset", "events", "lag"])
    else:
        emit([{**summary, "partitions": positions}], fmt)
