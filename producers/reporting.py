"""What the produce commands share on the terminal: progress on stderr, the summary on stdout.

Progress is drawn only when stderr is a terminal (a bar when the total is
known), so pipes, logs and tests see no control characters; ``--quiet``
silences it. The summary is one record: a two-column table for people, a
JSON object for machines.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from schemas.rendering import render_table

SUMMARY_FORMATS = ("table", "json")


@contextlib.contextmanager
def progress(total: int | None, label: str, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A callback taking increments; draws a bar with a rate on an interactive stderr."""
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    started = time.monotonic()
    done = [0]

    def rate(_: object) -> str:
        elapsed = max(time.monotonic() - started, 1e-6)
        return f"{done[0] / elapsed:,.0f}/s"

    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=True, item_show_func=rate, show_eta=total is not None
    ) as bar:

        def step(n: int) -> None:
            done[0] += n
            bar.update(n)

        yield step


def stored_progress(*, quiet: bool, every_s: float = 2.0) -> Callable[[int, int], None]:
    """A callback ``(stored, acknowledged)`` for the wait on the embedded stack's loader: a line now and then."""
    if quiet or not sys.stderr.isatty():
        return lambda stored, total: None
    last = [0.0]

    def say(stored: int, total: int) -> None:
        now = time.monotonic()
        if stored == total or now - last[0] >= every_s:
            last[0] = now
            click.echo(f"stored by the loader: {stored:,} of {total:,} acknowledged events", err=True)

    return say


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
