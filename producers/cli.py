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
      dossier produce seal samples/hand_history.jsonl --out sealed.jsonl
      dossier produce import samples/qtxl_phuong.csv --procedure-code 1.001612 --out imported.jsonl
      dossier produce publish imported.jsonl
      dossier produce simulate --dossiers 2000 --out sim/
    """


produce_group.add_command(publish_cmd)
produce_group.add_command(simulate_cmd)
produce_group.add_command(import_cmd)
produce_group.add_command(seal_cmd)
