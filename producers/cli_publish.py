"""``dossier produce publish``."""

from __future__ import annotations

import click


@click.command("publish")
def publish_cmd() -> None:
    """Not built yet.

    Example:
      dossier produce publish --help
    """
    raise click.ClickException("dossier produce publish is not built yet")
