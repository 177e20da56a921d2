"""Shared pieces of the ``dossier consume …`` commands: options, logging, error mapping."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from consumers.bulk import InputFileError
from consumers.catalogue import CatalogueError
from dossier_runtime.errors import RuntimeSetupError
from dossier_runtime.progress import Progress
from dossier_runtime.settings import Settings
from schemas.rendering import FORMATS, render

pass_settings = click.make_pass_decorator(Settings)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format: a table for people, json/jsonl/csv for machines.",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress or log lines on stderr.")


def logger(quiet: bool) -> Callable[[str], None]:
    """Stamped log lines on stderr, on a terminal or not (the loaders' lines are their log)."""
    return Progress(quiet=quiet, plain=True).step


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Operational and input errors become one sentence on stderr and exit code 1, never a traceback."""
    try:
        yield
    except (RuntimeSetupError, InputFileError, CatalogueError) as exc:
        raise click.ClickException(str(exc)) from None


def emit(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> None:
    click.echo(render(rows, fmt, columns))
    sys.stdout.flush()
