"""``dossier consume load`` and ``dossier consume load-catalogue``."""

from __future__ import annotations

from pathlib import Path

import click

from consumers.catalogue import load_catalogue
from consumers.cliutil import emit, format_option, logger, pass_settings, quiet_option, user_errors
from consumers.jsonlfile import is_container, load_paths
from consumers.migrations import cluster_of, migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


@click.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@format_option
@quiet_option
@pass_settings
def load_cmd(settings: Settings, files: tuple[Path, ...], fmt: str, quiet: bool) -> None:
    """Load Avro container or contract JSON Lines files of dossier events into the store, without Kafka.

    Same contract check and dead letters as the live loader; loading a file
    again stores nothing twice. A JSON Lines line that is not a contract
    event is a dead letter naming its line; a file without any event line
    is refused (exit 1). The format is read from the content (Avro starts
    with Obj\\x01). One output row per file.

    \b
    Examples:
      dossier consume load sim/events.avro
      dossier consume load sealed.jsonl
    """
    log = logger(quiet)
    rows = []
    with user_errors(), opened_store(settings, role="writer") as store:
        migrate(store, cluster=cluster_of(settings))
        sink = Sink(store, engine="MergeTree")
        try:
            log(f"loading {len(files)} file(s) …")
            for loaded in load_paths(sink, list(files), settings.data_dir):
                path = loaded.path
                unit = "record" if is_container(Path(path)) else "line"  # Avro: index from 0; JSON Lines: line
                for dead in loaded.result.dead[:20]:
                    log(f"dead letter {Path(path).name} {unit} {dead.offset}: {dead.kind}: {dead.error}")
                row = loaded.row()
                log(
                    f"{path}: {row['stored']:,} stored, {row['duplicates']:,} already stored, "
                    f"{row['dead_letters']:,} dead letters, {row['events_per_s']:,} events/s"
                )
                rows.append(row)
        finally:
            sink.close()
    emit(rows, fmt)


@click.command("load-catalogue")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@format_option
@quiet_option
@pass_settings
def load_catalogue_cmd(settings: Settings, directory: Path, fmt: str, quiet: bool) -> None:
    """Load units.jsonl, officials.jsonl and procedures.jsonl from DIRECTORY.

    Shapes are documented in consumers/catalogue.py; reloading replaces rows.

    \b
    Example:
      dossier consume load-catalogue sim/
    """
    with user_errors(), opened_store(settings, role="writer") as store:
        migrate(store, cluster=cluster_of(settings))
        report = load_catalogue(store, directory)
    emit(report, fmt)
