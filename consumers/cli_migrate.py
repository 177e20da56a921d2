"""``dossier consume migrate``."""

from __future__ import annotations

import dataclasses

import click

from consumers.cliutil import emit, format_option, pass_settings, quiet_option, user_errors
from consumers.migrations import cluster_of, database_of, migrate, script
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="Only show which migrations would be applied.")
@click.option(
    "--print-sql",
    is_flag=True,
    help="Print every migration's DDL for the configured mode (one node or cluster) and exit; connects to nothing.",
)
@click.option(
    "--cluster",
    envvar="DOSSIER_CLICKHOUSE_CLUSTER",
    metavar="NAME",
    help="ClickHouse cluster (remote_servers name) for the tables; needs a server [env DOSSIER_CLICKHOUSE_CLUSTER].",
)
@format_option
@quiet_option
@pass_settings
def migrate_cmd(settings: Settings, dry_run: bool, print_sql: bool, cluster: str | None, fmt: str, quiet: bool) -> None:
    """Create or update the store's tables (numbered migrations, each applied once).

    Safe to run any number of times. Stops with exit code 1 if a released
    migration file was edited after it was applied. With a cluster, the tables
    are Replicated*MergeTree on every shard behind Distributed tables sharded by
    dossier (the cluster variant is derived from the same migration files).

    \b
    Examples:
      dossier consume migrate
      dossier consume migrate --cluster dossier --print-sql   # needs DOSSIER_CLICKHOUSE_URL (a node of the cluster)
    """
    if cluster:
        settings = dataclasses.replace(settings, clickhouse_cluster=cluster)
    with user_errors():
        name = cluster_of(settings)
        if print_sql:
            click.echo(script(name, database_of(settings)), nl=False)
            return
        with opened_store(settings, role="writer") as store:
            report = migrate(store, dry_run=dry_run, cluster=name)
    emit([m.row() for m in report], fmt, ["version", "name", "state", "applied_at"])
