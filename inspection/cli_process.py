"""Being built."""

from __future__ import annotations

import click


@click.command("variants")
def variants_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect variants --help
    """
    raise click.ClickException("dossier inspect variants is not built yet")


@click.command("flow")
def flow_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect flow --help
    """
    raise click.ClickException("dossier inspect flow is not built yet")
