"""``dossier produce …``: publishing events, simulating a city, importing histories."""

from __future__ import annotations

import click


@click.group("produce")
def produce_group() -> None:
    """Publish dossier events to Kafka, simulate a city, import exported histories.

    \b
    Example:
      dossier produce --help
    """
