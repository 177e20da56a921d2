"""``dossier consume migrate``."""

from __future__ import annotations

import click

from consumers.cliutil import emit, format_option, pass_settings, quiet_option, user_errors
from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="Only show which migrations would be applied.")
@format_option
@quiet_option
@pass_settings
def migrate_cmd(settings: Settings, dry_run: bool, fmt: str, quiet: bool) -> None:
    """Create or update the store's tables (numbered migrations, each applied once).

    Safe to run any number of times. Stops with exit code 1 if a released
    migration file was edited after it was applied.

    \b
    Example:
      dossier consume migrate
    """
    with user_errors(), opened_store(settings, role="writer") as store:
        report = migrate(store, dry_run=dry_run)
    emit([m.row() for m in report], fmt, ["version", "name", "state", "applied_at"])
