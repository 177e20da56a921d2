"""``dossier produce …``: publishing events, simulating a city, importing histories.

Each command lives in its own module; this one only assembles the group.
"""

from __future__ import annotations

import click

from producers.cli_import import import_cmd
from producers.cli_publish import publish_cmd
from producers.cli_seal import seal_cmd
from producers.cli_simulate import simulate_cmd


@click.group("produce")
def produce_group() -> None:
    """Publish dossier events to Kafka, simulate a city, import exported histories, seal hand-written ones.

    \b
    Examples:
      dossier produce simulate --dossiers 20000 --out sim/
      dossier produce publish sim/events.avro
      dossier produce import export.csv --out imported.jsonl
      dossier produce seal history.jsonl --out sealed.jsonl
    """


produce_group.add_command(publish_cmd)
produce_group.add_command(simulate_cmd)
produce_group.add_command(import_cmd)
produce_group.add_command(seal_cmd)
