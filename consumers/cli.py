"""``dossier consume …``: loading events from Kafka (or files) into ClickHouse.

Each command lives in its own module; this one only assembles the group.
"""

from __future__ import annotations

import click

from consumers.cli_dead import dead_letters_cmd
from consumers.cli_load import load_catalogue_cmd, load_cmd
from consumers.cli_migrate import migrate_cmd
from consumers.cli_run import run_cmd
from consumers.cli_status import status_cmd


@click.group("consume")
def consume_group() -> None:
    """Load dossier events from Kafka into ClickHouse, effectively once.

    \b
    Examples:
      dossier consume migrate
      dossier consume run   # runs until Ctrl-C
      dossier consume load dossier-data/demo/simulation/events-00000.avro
      dossier consume load-catalogue dossier-data/demo/simulation/
      dossier consume status --format json
      dossier consume dead-letters --kind conflict
    """


consume_group.add_command(migrate_cmd)
consume_group.add_command(run_cmd)
consume_group.add_command(load_cmd)
consume_group.add_command(load_catalogue_cmd)
consume_group.add_command(status_cmd)
consume_group.add_command(dead_letters_cmd)
