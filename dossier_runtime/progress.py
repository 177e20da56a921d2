"""Progress and log lines on stderr, the same for every long command.

One :class:`Progress` per command. ``step(message)`` says a line stamped with
the command's elapsed time (``[  12.3s] message``); ``phase(label, total)``
counts work: on a terminal a bar (a rate when the total is unknown), drawn by
tqdm at most :data:`REDRAWS_PER_S` times a second however often it is
advanced, and shown only once there is a count and a rate to show; when the
phase ends the bar gives way to one stamped line with the count, the time and
the rate. Off a terminal (pipes, CI, tests) nothing is drawn: commands whose
lines are their log (``plain=True``: the demo, the loaders) keep that closing
line, the others say nothing more. ``quiet`` silences everything.

tqdm rather than click's bar: click redraws on every ``update`` (once per
event when publishing) and estimates its first ETA from the time before the
first event.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TextIO

from tqdm import tqdm

#: The bar is redrawn at most this many times a second.
REDRAWS_PER_S: Final = 4
#: Every stamped line starts with this; :func:`unstamped` takes it off.
STAMP: Final = re.compile(r"^\[ *\d+\.\d+s\] ")

#: Starts a phase: ``(label, total or None, unit)`` → a callback taking increments. What library code takes.
PhaseStarter = Callable[[str, int | None, str], Callable[[int], None]]


def stamp(elapsed: float) -> str:
    return f"[{elapsed:6.1f}s]"


def unstamped(line: str) -> str:
    return STAMP.sub("", line, count=1)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class _Bar(tqdm):  # type: ignore[misc]  # tqdm ships no types
    """tqdm with the counts in thousands, the rate as a true average and the command's stamp."""

    monitor_interval = 0  # no monitor thread: miniters=1 checks the clock on every update instead

    def __init__(self, *args: Any, started: float, **kwargs: Any) -> None:
        self.command_started = started
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = super().format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        d["stamp"] = stamp(time.monotonic() - self.command_started)
        d["count"] = f"{n:,}" + (f"/{total:,}" if total else "")
        d["speed"] = f"{n / elapsed:,.0f} {d['unit']}/s" if n and elapsed > 0 else f"? {d['unit']}/s"
        return d


_WITH_TOTAL: Final = "{stamp} {desc} {percentage:3.0f}%|{bar}| {count} · {speed} · {remaining} left"
_WITHOUT_TOTAL: Final = "{stamp} {desc}: {count} {unit} · {speed}"


class Phase:
    """One counted piece of work; call it (or :meth:`advance`) with increments, or :meth:`reach` a count."""

    def __init__(self, owner: Progress, label: str, total: int | None, unit: str) -> None:
        self.owner, self.label, self.total, self.unit = owner, label, total, unit
        self.count = 0
        self.started = time.monotonic()
        self.closed = False
        self.bar: _Bar | None = None
        if owner.interactive:
            self.bar = _Bar(
                total=total,
                desc=label,
                unit=unit,
                file=owner.stream,
                started=owner.started,
                mininterval=1.0 / REDRAWS_PER_S,
                miniters=1,
                delay=1.0 / REDRAWS_PER_S,  # the first drawing already has a count and a rate
                smoothing=0,  # the rate is the phase's average: true from the first drawing
                leave=False,
                # Read per phase; 80 x 24 where a terminal says 0 x 0 (`script`): tqdm would draw nothing there.
                ncols=shutil.get_terminal_size().columns,
                nrows=max(shutil.get_terminal_size().lines, 2),
                bar_format=_WITH_TOTAL if total else _WITHOUT_TOTAL,
            )

    def __call__(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)

    advance = __call__

    def reach(self, count: int, total: int | None = None) -> None:
        """Set the count (and the total, when it becomes known or grows)."""
        if total is not None and total != self.total:
            self.total = total
            if self.bar is not None:
                self.bar.total = total
        self(count - self.count)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.clear()  # tqdm clears only a bar it drew after its delay, not one a step() redrew before
            self.bar.close()
        if self.owner.current is self:
            self.owner.current = None
        if self.owner.interactive or self.owner.plain:
            self.owner.step(self.summary())

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        of = f" of {self.total:,}" if self.total is not None and self.total != self.count else ""
        rate = f" ({self.count / seconds:,.0f} {self.unit}/s)" if seconds >= 0.05 and self.count else ""
        return f"{self.label}: {self.count:,}{of} {self.unit} in {seconds:.1f} s{rate}"

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Progress:
    """What a command says on stderr while it works (see the module docstring)."""

    def __init__(
        self, quiet: bool = False, *, plain: bool = False, stream: TextIO | None = None, started: float | None = None
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.plain = plain and not quiet
        self.interactive = not quiet and is_terminal(self.stream)
        self.started = time.monotonic() if started is None else started
        self.current: Phase | None = None

    def step(self, message: str) -> None:
        """A stamped line (above the bar, if one is drawn); nothing with ``quiet``."""
        if self.quiet:
            return
        line = f"{stamp(time.monotonic() - self.started)} {message}"
        if self.current is not None and self.current.bar is not None:
            tqdm.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def phase(self, label: str, total: int | None = None, unit: str = "events") -> Phase:
        """Start counting ``label``; the phase running before ends (its closing line is said)."""
        self.close()
        self.current = Phase(self, label, total, unit)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        elif self.current is not None and self.current.bar is not None:
            self.current.bar.close()  # a failure: its sentence follows, not a count
