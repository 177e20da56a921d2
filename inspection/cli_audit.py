"""Being built."""

from __future__ import annotations

import click


@click.command("audit")
def audit_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect audit --help
    """
    raise click.ClickException("dossier inspect audit is not built yet")


@click.command("rules")
def rules_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect rules --help
    """
    raise click.ClickException("dossier inspect rules is not built yet")
