"""Every command example of README.md, docs/*.md and every ``--help`` runs against the demo's data.

Which examples run (README.md says it too, in a comment):

* Markdown: each line of a ```` ```console ```` block that starts with ``$ dossier`` (or ``$ VAR=value dossier``);
  a line ending in ``\\`` goes on on the next one. Other ``$`` lines (``make demo``, ``source …``) are not run.
* ``--help``: each line of a command's ``Example:``/``Examples:`` section that starts with ``dossier``.
* A trailing comment ``# exit N`` announces a non-zero exit code; ``# needs …`` or ``# runs until Ctrl-C`` marks an
  example the demo cannot run (a Kafka server, a cluster), which is skipped with that reason.

One demo store serves them all: ``dossier demo`` (the README's own command, default size and seed) runs once in
a temporary directory laid out like the repository root (``samples/``, ``dossier-data/``), then ``dossier consume
run`` owns the store, so reading commands run in this process through its endpoint (no chDB here) and publishing
has a broker. Commands that write to the store (``consume load``, ``migrate``, …) stop it and run as a process of
their own. An example fails on an exit code it does not announce, or on an empty result (nothing on stdout and
no file written by ``--out`` or ``--html``).
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dossier_audit.cli import main
from dossier_runtime.broker import find_broker, stop_broker
from dossier_runtime.storeserver import read_endpoint
from tests import browser

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARK = re.compile(r"^(needs |runs until )")
EXIT_MARK = re.compile(r"\bexit (\d)\b")
#: The README's demo: the fixture runs it, so the example itself is counted as run.
DEMO = ("dossier", "demo")


@dataclasses.dataclass(frozen=True)
class Example:
    where: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    exit_code: int
    skip: str | None

    @property
    def words(self) -> str:
        return " ".join(self.argv[1:3])


def _split_comment(line: str) -> tuple[str, str]:
    """The command and its trailing ``# comment`` (a ``#`` outside quotes after a space)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def _example(where: str, line: str) -> Example | None:
    command, comment = _split_comment(line)
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (a command that goes on on the next line ends in a backslash)") from None
    if ">" in words:  # `> FILE`: stdout is the result either way
        words = words[: words.index(">")]
    env = []
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env.append((name, value))
    if not words or words[0] != "dossier":
        return None
    skip = comment if SKIP_MARK.match(comment) else None
    announced = EXIT_MARK.search(comment)
    return Example(where, tuple(words), tuple(env), int(announced.group(1)) if announced else 0, skip)


def _joined(lines: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    pending: tuple[int, str] | None = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
        if text.endswith("\\"):
            pending = (number, text[:-1].rstrip())
            continue
        pending = None
        yield number, text


def markdown_examples(path: Path) -> list[Example]:
    found: list[Example] = []
    console, lines = False, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            console = line.strip() == "```console"
            continue
        if console and (line.startswith("$ ") or (lines and lines[-1][1].endswith("\\"))):
            lines.append((number, line[2:] if line.startswith("$ ") else line))
    for number, text in _joined(lines):
        example = _example(f"{path.relative_to(ROOT)}:{number}", text)
        if example is not None:
            found.append(example)
    return found


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


def help_examples() -> list[Example]:
    found: list[Example] = []
    for path, command in _commands(main, "dossier"):
        text = command.help or ""
        start = re.search(r"^\s*Examples?:\s*$", text, flags=re.MULTILINE)
        if start is None:
            continue
        lines = [(i, line.strip()) for i, line in enumerate(text[start.end() :].splitlines()) if line.strip()]
        for number, joined in _joined(lines):
            example = _example(f"`{path} --help` example {number}", joined)
            if example is not None:
                found.append(example)
    return found


EXAMPLES = [e for doc in DOCUMENTS for e in markdown_examples(doc)] + help_examples()
RUNNABLE = [e for e in EXAMPLES if e.skip is None]

NO_STORE = {"schema", "calendar", "keys", "verify-proof"}
WRITERS = {"consume migrate", "consume load", "consume load-catalogue", "consume run"}


def _kind(example: Example) -> str:
    argv = example.argv
    if argv[1] in NO_STORE or argv[1:3] in (("inspect", "rules"), ("produce", "seal")) or "--help" in argv:
        return "offline"
    if example.words in WRITERS and "--print-sql" not in argv:
        return "writer"
    if argv[1] == "produce":
        return "publisher" if ("--publish" in argv or argv[2] == "publish") else "offline"
    return "reader"


class Stack:
    """``dossier consume run`` owning the demo's store: the broker for publishing, the endpoint for reading."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.data_dir = workdir / env["DOSSIER_DATA_DIR"]
        self.proc: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        if self.proc is not None:
            return
        log = (self.workdir / "consume-run.log").open("ab")
        command = [sys.executable, "-m", "dossier_audit", "consume", "run", "--quiet"]
        self.proc = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 180
        while read_endpoint(self.data_dir) is None or find_broker(self.data_dir) is None:
            assert self.proc.poll() is None, (self.workdir / "consume-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dossier consume run did not start within 180 s"
            time.sleep(0.2)

    def down(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        broker = find_broker(self.data_dir)
        if broker is not None:
            stop_broker(broker)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], Stack]]:
    workdir = tmp_path_factory.mktemp("repository-root")
    (workdir / "samples").symlink_to(ROOT / "samples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env |= {"DOSSIER_DATA_DIR": "dossier-data", "HOME": str(workdir), "COLUMNS": "120"}
    existing = os.environ.get("DOSSIER_TEST_DEMO_DIR")  # a demo's data directory, used (and added to) in place
    if existing:
        (workdir / "dossier-data").symlink_to(Path(existing).resolve())
    else:
        done = subprocess.run(
            [sys.executable, "-m", "dossier_audit", *DEMO[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0 and done.stdout.strip(), done.stderr[-3000:]
    stack = Stack(workdir, env)
    try:
        yield workdir, env, stack
    finally:
        stack.down()


def _out_files(argv: tuple[str, ...], workdir: Path) -> list[Path]:
    files = [workdir / argv[i + 1] for i, word in enumerate(argv[:-1]) if word in ("--out", "-o", "--html")]
    if argv[1:3] == ("keys", "new"):
        files.append(workdir / argv[3] / "signing.pub")
    return files


def _run(example: Example, workdir: Path, env: dict[str, str], stack: Stack) -> tuple[int, str, str]:
    kind = _kind(example)
    env = env | dict(example.env)
    if kind == "writer":
        stack.down()
        done = subprocess.run(
            [sys.executable, "-m", "dossier_audit", *example.argv[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr
    if kind in ("reader", "publisher"):
        stack.up()
    previous = Path.cwd()
    os.chdir(workdir)
    try:
        result = CliRunner().invoke(main, list(example.argv[1:]), env=env, prog_name="dossier")
    finally:
        os.chdir(previous)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\n{type(result.exception).__name__}: {result.exception}"
    return result.exit_code, result.stdout, stderr


def test_the_samples_are_the_test_data() -> None:
    """``samples/`` ships copies of ``tests/data``: one is not edited without the other."""
    names = sorted(p.name for p in (ROOT / "samples").iterdir() if p.suffix != ".md")
    assert names and all(filecmp.cmp(ROOT / "samples" / n, ROOT / "tests" / "data" / n, shallow=False) for n in names)


def test_the_readme_tour_and_the_reference_have_runnable_examples() -> None:
    readme = [e for e in RUNNABLE if e.where.startswith("README.md")]
    assert {e.words for e in readme} >= {"inspect replay", "inspect audit", "inspect scorecard", "inspect verify"}
    assert any(e.words == "inspect export" and "xes" in e.argv for e in readme)
    assert len([e for e in RUNNABLE if e.where.startswith("`")]) >= 40


@pytest.mark.slow
def test_every_example_runs_on_the_demo_data(demo: tuple[Path, dict[str, str], Stack]) -> None:
    workdir, env, stack = demo
    # `inspect flow --format svg` draws with Graphviz's `dot`, which the test set-up installs as the browser tests do
    # (whichever test comes first on a fresh machine).
    no_dot = browser.missing_tools(("dot",))
    failures, skipped = [], []
    for example in RUNNABLE:
        if example.argv == DEMO:
            continue  # the fixture ran it
        if no_dot is not None and "svg" in example.argv:
            skipped.append(f"{example.where}: {shlex.join(example.argv)}")
            continue
        code, stdout, stderr = _run(example, workdir, env, stack)
        written = [f for f in _out_files(example.argv, workdir) if f.exists() and f.stat().st_size > 0]
        if code != example.exit_code:
            failures.append(f"{example.where}: {shlex.join(example.argv)}: exit {code}\n{stderr[-1500:]}")
        elif code == 0 and not stdout.strip() and not written:
            failures.append(f"{example.where}: {shlex.join(example.argv)}: nothing on stdout, no file written")
    assert not failures, "\n\n".join(failures)
    if skipped:
        warnings.warn(f"not run, {no_dot}: {'; '.join(skipped)}", stacklevel=1)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.skip], ids=lambda e: e.where)
def test_examples_the_demo_cannot_run_say_why(example: Example) -> None:
    pytest.skip(f"{shlex.join(example.argv)}: {example.skip}")
