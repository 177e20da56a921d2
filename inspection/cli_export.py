"""Being built."""

from __future__ import annotations

import click


@click.command("export")
def export_cmd() -> None:
    """Not built yet.

    Example:
      dossier inspect export --help
    """
    raise click.ClickException("dossier inspect export is not built yet")
