"""``dossier consume load`` and ``dossier consume load-catalogue``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

import click

from consumers.bulk import file_topic
from consumers.catalogue import load_catalogue
from consumers.cli_dead import EXIT_DEAD_LETTERS, dead_letter_summary
from consumers.cliutil import emit, format_option, logger, pass_settings, quiet_option, user_errors
from consumers.jsonlfile import is_container, load_paths
from consumers.migrations import cluster_of, migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store

#: Dead letters printed on stderr by one run, at most (the last line says how to list every one).
EXAMPLES: Final = 5


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
    with Obj\\x01). One output row per file. Exit 3 when anything was
    dead-lettered (the rest is stored): the last line says how many, of
    which kinds, and the command that lists them.

    \b
    Examples:
      dossier consume load dossier-data/demo/simulation/events-00000.avro
      dossier consume load sealed.jsonl
    """
    log = logger(quiet)
    rows = []
    dead: Counter[str] = Counter()
    dead_sources: list[str] = []
    shown = 0
    with user_errors(), opened_store(settings, role="writer") as store:
        migrate(store, cluster=cluster_of(settings))
        sink = Sink(store, engine="MergeTree")
        try:
            log(f"loading {len(files)} file(s) …")
            for loaded in load_paths(sink, list(files), settings.data_dir):
                path = loaded.path
                unit = "record" if is_container(Path(path)) else "line"  # Avro: index from 0; JSON Lines: line
                for letter in loaded.result.dead:
                    dead[letter.kind] += 1
                    if shown < EXAMPLES:  # a few examples; `dossier consume dead-letters` lists them all
                        log(f"dead letter {Path(path).name} {unit} {letter.offset}: {letter.kind}: {letter.error}")
                        shown += 1
                if loaded.result.dead:
                    dead_sources.append(file_topic(Path(path)))
                row = loaded.row()
                log(
                    f"{path}: {row['stored']:,} stored, {row['duplicates']:,} already stored, "
                    f"{row['dead_letters']:,} dead letters, {row['events_per_s']:,} events/s"
                )
                rows.append(row)
        finally:
            sink.close()
    emit(rows, fmt)
    if dead:
        click.echo(dead_letter_summary(dead, dead_sources), err=True)
        raise SystemExit(EXIT_DEAD_LETTERS)


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
      dossier consume load-catalogue dossier-data/demo/simulation/
    """
    with user_errors(), opened_store(settings, role="writer") as store:
        migrate(store, cluster=cluster_of(settings))
        report = load_catalogue(store, directory)
    emit(report, fmt)
