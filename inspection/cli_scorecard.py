"""Being built."""

from __future__ import annotations

import click


@click.command("scorecard")
def scorecard_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect scorecard --help
    """
    raise click.ClickException("dossier inspect scorecard is not built yet")
