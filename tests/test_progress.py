"""One progress module for every long command: throttled on a terminal, quiet off one, stamped alike."""

from __future__ import annotations

import io
import re
import time

from click.testing import CliRunner

from dossier_audit.cli import main
from dossier_runtime.progress import REDRAWS_PER_S, STAMP, Progress, stamp, unstamped


class Terminal(io.StringIO):
    """A stream that says it is a terminal and counts the bar's drawings (tqdm writes one per redraw)."""

    def __init__(self) -> None:
        super().__init__()
        self.drawings = 0

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if "%|" in s:
            self.drawings += 1
        return super().write(s)


def test_a_bar_fed_100000_increments_is_redrawn_a_few_times_a_second() -> None:
    term = Terminal()
    started = time.monotonic()
    with Progress(stream=term) as progress:
        phase = progress.phase("publishing", 100_000)
        for _ in range(10):
            for _ in range(10_000):
                phase(1)
            time.sleep(0.1)  # ~1 s in all: a few drawings are due
    seconds = time.monotonic() - started
    assert 2 <= term.drawings <= REDRAWS_PER_S * seconds + 2, (term.drawings, seconds)
    lines = [line for line in re.split(r"[\r\n]", term.getvalue()) if line.strip()]
    closing = r"publishing: 100,000 events in [\d.]+ s \([\d,]+ events/s\)$"
    assert STAMP.match(lines[-1]) and re.search(closing, lines[-1]), lines[-1]
    first = lines[0]  # a count and a true rate from the first drawing on, no guessed ETA
    assert STAMP.match(first) and "? events/s" not in first and re.search(r"[\d,]+/100,000 · [\d,]+ events/s", first)


def test_off_a_terminal_nothing_is_drawn_and_only_plain_commands_keep_their_closing_line() -> None:
    pipe = io.StringIO()
    with Progress(stream=pipe) as progress:
        with progress.phase("publishing", 1_000) as phase:
            for _ in range(1_000):
                phase(1)
    assert pipe.getvalue() == ""

    log = io.StringIO()
    with Progress(plain=True, stream=log) as progress:
        progress.step("loading 1 file(s) …")
        progress.phase("simulating", 10, "dossiers").reach(10)
    lines = log.getvalue().splitlines()
    assert unstamped(lines[0]) == "loading 1 file(s) …"
    assert unstamped(lines[1]).startswith("simulating: 10 dossiers in ")
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


def test_quiet_says_nothing_even_on_a_terminal() -> None:
    term = Terminal()
    with Progress(quiet=True, plain=True, stream=term) as progress:
        progress.step("hello")
        with progress.phase("publishing", 10) as phase:
            phase(10)
    assert term.getvalue() == ""


def test_lines_are_stamped_with_the_command_s_elapsed_time_above_a_bar() -> None:
    term = Terminal()
    progress = Progress(stream=term, started=time.monotonic() - 12.3)
    with progress:
        phase = progress.phase("stored by the loader", 100)
        phase.reach(50)
        progress.step("a line while the bar runs")
        phase.reach(100, 100)
    lines = [line for line in re.split(r"[\r\n]", term.getvalue()) if line.strip()]
    said = [line for line in lines if "%|" not in line]
    assert unstamped(said[0]) == "a line while the bar runs"
    assert unstamped(said[1]).startswith("stored by the loader: 100 events in ")
    assert len(said) == 2 and all(STAMP.match(line) and 12.3 <= float(line[1:7]) < 20 for line in said), said
    assert stamp(12.3) == "[  12.3s]" and stamp(1234.5) == "[1234.5s]"


def test_a_command_off_a_terminal_prints_no_progress(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        main, ["produce", "simulate", "--dossiers", "100", "--out", str(tmp_path / "sim")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "simulating" not in result.stderr and "\r" not in result.stderr, result.stderr
