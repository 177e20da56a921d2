"""``dossier produce import``."""

from __future__ import annotations

import click


@click.command("import")
def import_cmd() -> None:
    """Not built yet.

    Example:
      dossier produce import --help
    """
    raise click.ClickException("dossier produce import is not built yet")
