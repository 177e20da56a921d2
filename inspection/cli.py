"""``dossier inspect …``: the inspectors' commands."""

from __future__ import annotations

import click


@click.group("inspect")
def inspect_group() -> None:
    """Replay dossiers, run audit rules, score units, verify integrity, export.

    \b
    Example:
      dossier inspect --help
    """
