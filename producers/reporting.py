"""What the produce commands share on the terminal: progress on stderr, the summary on stdout.

Progress (dossier_runtime.progress) is drawn only when stderr is a terminal,
so pipes, logs and tests see no control characters; ``--quiet`` silences it.
The summary is one record: a two-column table for people, a JSON object for
machines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from dossier_runtime.progress import Phase, Progress
from schemas.rendering import render_table

SUMMARY_FORMATS = ("table", "json")


def stored_progress(progress: Progress) -> Callable[[int, int], None]:
    """A callback ``(stored, acknowledged)`` for the wait on the embedded stack's loader: a phase of its own."""
    phase: list[Phase] = []

    def reach(stored: int, total: int) -> None:
        if not phase:
            phase.append(progress.phase("stored by the loader", total))
        phase[0].reach(stored, total)

    return reach


def render_summary(summary: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(dict(summary), ensure_ascii=False, indent=2)
    rows = [{"metric": key.replace("_", " "), "value": value} for key, value in summary.items() if value is not None]
    return render_table(rows, ["metric", "value"])


def sidecar(paths: Sequence[Path], suffix: str) -> Path:
    """``<dir of the first input>/<its stem><suffix>``: where a command puts files about its input."""
    first = paths[0]
    return first.with_name(first.stem + suffix)


def warn(message: str, *, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)
