"""``dossier produce simulate``."""

from __future__ import annotations

import click


@click.command("simulate")
def simulate_cmd() -> None:
    """Not built yet.

    Example:
      dossier produce simulate --help
    """
    raise click.ClickException("dossier produce simulate is not built yet")
