"""The whole inspection suite on every supported ClickHouse version, over HTTP, against the embedded answers.

Each engine is a Python interpreter whose chDB embeds one ClickHouse release,
served over HTTP by :mod:`tests.chserver`: this interpreter's (the newest,
chDB 4.4 = ClickHouse 26.9) and every one listed in
``DOSSIER_TEST_CHSERVER_PYTHONS`` (``os.pathsep``-separated; ``make test``
creates ``.venv-ch26.3`` with chdb-core 26.3.0, the lowest supported
release, and lists it). A small simulated city with every kind of breach is
loaded through the CLI into a fresh database on each engine; every rule, the
scorecard, accountability, a full verify and the audit after it, replays,
flow, variants and every export format must answer as the embedded store
does. The read-only console too: on an engine below ClickHouse 26.9 (no
``parseQueryToJSON``) the client's chDB parses and formats the statement and
the engine runs the formatted text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dossier_runtime import engineversion
from tests import chserver
from tests.test_consumers_support import dossier

ENGINES = [sys.executable, *(p for p in os.environ.get("DOSSIER_TEST_CHSERVER_PYTHONS", "").split(os.pathsep) if p)]
EXPORTS = ("csv", "jsonl", "parquet", "xes", "ocel")
#: Every command, in the order both stores run it (verify writes the ledger the audit after it reads).
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("inspect", "audit", "--format", "json"),
    ("inspect", "scorecard", "--format", "json"),
    ("inspect", "scorecard", "--level", "district", "--period", "quarter", "--format", "json"),
    ("inspect", "accountability", "--format", "json"),
    ("inspect", "accountability", "--by", "unit", "--format", "json"),
    ("inspect", "flow", "--format", "json"),
    ("inspect", "variants", "--format", "json"),
    ("consume", "status", "--format", "json"),
    ("inspect", "verify", "--format", "json"),
    ("inspect", "audit", "INTEGRITY-HASH", "R7", "R16", "R20", "--format", "json"),
)
Answers = dict[tuple[str, ...], subprocess.CompletedProcess[str]]
CONSOLE = (
    "inspect",
    "sql",
    "SELECT dossier_id, count() AS n FROM events GROUP BY dossier_id ORDER BY n DESC, dossier_id",
)


def _ok(done: subprocess.CompletedProcess[str], *codes: int) -> subprocess.CompletedProcess[str]:
    assert done.returncode in (codes or (0,)), f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def _comparable(output: str) -> object:
    """A command's JSON output without what names the store or the time it ran."""

    def strip(item: object) -> object:
        if isinstance(item, dict):
            return {k: v for k, v in item.items() if k not in ("computed_on", "store", "source", "last_stored_at")}
        return item

    data = json.loads(output)
    return [strip(x) for x in data] if isinstance(data, list) else strip(data)


def _replays(sim: Path) -> list[tuple[str, ...]]:
    manifest = [json.loads(line) for line in (sim / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = sorted({m["dossier_id"] for m in manifest if m["rule"] in ("R7", "R16", "R20")})[:3]
    return [("inspect", "replay", d, "--format", "json") for d in picked]


def _run_all(env: dict[str, str], sim: Path, out: Path) -> Answers:
    """Migrate, load the city, then every command in order; exports into ``out``."""
    _ok(dossier("consume", "migrate", env=env))
    _ok(dossier("consume", "load-catalogue", str(sim), env=env))
    _ok(dossier("consume", "load", *sorted(str(p) for p in sim.glob("events-*.avro")), env=env))
    answers = {}
    for command in (*COMMANDS, *_replays(sim), (*CONSOLE, "--format", "json")):
        answers[command] = _ok(dossier(*command, env=env), 0, 3)  # 3: findings
    out.mkdir(parents=True, exist_ok=True)
    for fmt in EXPORTS:
        _ok(dossier("inspect", "export", "--format", fmt, "--out", str(out / f"events.{fmt}"), env=env))
    return answers


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = tmp_path_factory.mktemp("city")
    args = ("--dossiers", "300", "--days", "60", "--violations", "all", "--seed", "3", "--out", str(sim))
    _ok(dossier("produce", "simulate", *args, env={}))
    return sim


@pytest.fixture(scope="module")
def embedded(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Future[Answers], Path]]:
    """The embedded store's answers, computed once, beside the first engine's (CLI start-up dominates)."""
    work = tmp_path_factory.mktemp("embedded")
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_run_all, {"DOSSIER_DATA_DIR": str(work / "data")}, city, work / "out"), work / "out"


def engine_id(python: str) -> str:
    return "this-python" if python == sys.executable else Path(python).parts[-3]  # the venv's name


@pytest.fixture(scope="module", params=ENGINES, ids=engine_id)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[chserver.ChServer]:
    server = chserver.start(
        tmp_path_factory.mktemp("engine") / "data", python=request.param, timezone="Asia/Ho_Chi_Minh", timeout=120
    )
    yield server
    server.stop()


def test_every_inspection_answers_as_on_the_embedded_store(
    engine: chserver.ChServer,
    city: Path,
    embedded: tuple[Future[Answers], Path],
    tmp_path: Path,
) -> None:
    assert engineversion.supported(engine.version), engine.version
    env = {"DOSSIER_CLICKHOUSE_URL": engine.fresh_database(), "DOSSIER_DATA_DIR": str(tmp_path / "unused")}
    on_server = _run_all(env, city, tmp_path / "out")
    expected, expected_out = embedded[0].result(), embedded[1]
    for command, answer in expected.items():
        got = on_server[command]
        assert got.returncode == answer.returncode, (command, got.stderr[-2000:])
        assert _comparable(got.stdout) == _comparable(answer.stdout), command
    audit = json.loads(expected[COMMANDS[0]].stdout)
    assert audit and json.dumps(audit).count('"R7"') and json.dumps(audit).count('"R20"'), "the city breaks R7 and R20"
    verified = json.loads(on_server[COMMANDS[-2]].stdout)
    assert verified["computed_on"]["ledger"].startswith("recorded run "), verified["computed_on"]
    hashed = json.loads(on_server[COMMANDS[-1]].stdout)
    assert hashed["computed_on"]["integrity"]["hashes"].startswith("recomputed for 0 of "), hashed["computed_on"]
    for fmt in EXPORTS:
        mine, theirs = tmp_path / "out" / f"events.{fmt}", expected_out / f"events.{fmt}"
        if fmt == "parquet":
            assert pq.read_table(mine).equals(pq.read_table(theirs))
        else:  # the XES log names its source store
            unsourced = lambda path: re.sub(rb'<string key="source" value="[^"]*"/>', b"", path.read_bytes())  # noqa: E731
            assert unsourced(mine) == unsourced(theirs), fmt
