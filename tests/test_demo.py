"""`dossier demo` end to end on the embedded stack (its own broker and store, in a child process).

A child process because chDB serves one data directory per process, and
other tests in this worker may hold theirs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(data_dir: Path, *extra: str, dossiers: int = 400) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dossier_audit",
            "--data-dir",
            str(data_dir),
            "demo",
            "--dossiers",
            str(dossiers),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.slow
def test_demo_runs_the_pipeline_and_a_second_run_stores_nothing_twice(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    stored = re.search(r"published ([\d,]+); the live loader stored ([\d,]+) \(0 already stored", first.stdout)
    assert stored and stored.group(1) == stored.group(2), first.stdout[:2000]
    for section in ("City scorecard", "2.1 handled early or on time", "Audit: ", "Control sheet of a late dossier",
                    "Verdict against the original due date", "Integrity: ", "Next, in another terminal"):  # fmt: skip
        assert section in first.stdout, section
    assert "Traceback" not in first.stderr
    assert f"to open in a browser: {tmp_path / 'report.html'}" in first.stdout
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("<figure") == 8
    assert not (tmp_path / "broker.json").exists(), "the demo stops the broker it started"

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "the live loader stored 0 (" in second.stdout
    assert "nothing was stored twice" in second.stdout
    report = lambda out: out[out.index("City scorecard") :]  # noqa: E731
    assert report(second.stdout) == report(first.stdout)

    other = _demo(tmp_path, dossiers=500)  # another city in the same directory: refused, nothing mixed
    assert other.returncode == 1
    assert "holds a demo city of 400 dossiers (seed 1); a demo of 500 dossiers (seed 1) would mix two cities" in (
        other.stderr
    )
    assert "--fresh" in other.stderr and "Traceback" not in other.stderr
    fresh = _demo(tmp_path, "--fresh", dossiers=500)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "--fresh: deleting the store in" in fresh.stderr
    assert "(0 already stored" in fresh.stdout  # a new city in a new store


def test_demo_refuses_a_configured_server(tmp_path: Path) -> None:
    env = {**os.environ, "DOSSIER_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = subprocess.run(
        [sys.executable, "-m", "dossier_audit", "--data-dir", str(tmp_path), "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "the demo runs on the embedded stack" in result.stderr
