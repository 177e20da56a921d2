"""``dossier consume …``: loading events from Kafka into ClickHouse."""

from __future__ import annotations

import click


@click.group("consume")
def consume_group() -> None:
    """Load dossier events from Kafka into ClickHouse, effectively once.

    \b
    Example:
      dossier consume --help
    """
