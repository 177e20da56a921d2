"""Being built."""

from __future__ import annotations

import click


@click.command("sql")
def sql_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect sql --help
    """
    raise click.ClickException("dossier inspect sql is not built yet")
