"""Being built."""

from __future__ import annotations

import click


@click.command("accountability")
def accountability_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect accountability --help
    """
    raise click.ClickException("dossier inspect accountability is not built yet")
