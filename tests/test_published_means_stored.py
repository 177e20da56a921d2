"""Published means stored, or refused: on the embedded default, publishing needs a running stack to hold what it
sends (the embedded broker keeps messages in memory only)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from schemas.jsonform import to_json
from tests.test_consumers_support import dossier, events, spawn

EMBEDDED = {"DOSSIER_KAFKA_BOOTSTRAP": ""}  # the embedded default, whatever the environment says


def _file(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(to_json(e), ensure_ascii=False) + "\n" for e in events(n)), encoding="utf-8")
    return path


def test_publishing_without_a_running_stack_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    env = {**EMBEDDED, "DOSSIER_DATA_DIR": str(tmp_path / "data")}
    out = dossier("produce", "publish", str(_file(tmp_path / "e.jsonl", 2)), env=env)
    assert out.returncode == 1, out.stderr
    assert "no embedded stack runs for" in out.stderr and "`dossier consume run`" in out.stderr
    assert "`dossier consume load FILE`" in out.stderr and "nothing was published" in out.stderr
    assert "delivered" not in out.stdout + out.stderr
    assert not (tmp_path / "data" / "broker.json").exists()  # no broker was started for nothing
    simulated = dossier("produce", "simulate", "--dossiers", "5", "--publish", env=env)
    assert simulated.returncode == 1 and "nothing was simulated or published" in simulated.stderr


def test_with_the_stack_running_what_is_published_is_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**EMBEDDED, "DOSSIER_DATA_DIR": str(data)}
    loader = spawn("consume", "run", "--max-wait", "0.2", env=env)
    try:
        deadline = time.monotonic() + 60
        while not (data / "broker.json").exists() or not (data / "store.endpoint.json").exists():
            assert loader.poll() is None, loader.stderr.read() if loader.stderr else ""
            assert time.monotonic() < deadline, "the stack did not start"
            time.sleep(0.2)
        n = len(events(3))
        out = dossier("produce", "publish", str(_file(tmp_path / "e.jsonl", 3)), "--format", "json", env=env)
        assert out.returncode == 0, out.stderr
        while True:
            status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
            if status.returncode == 0 and json.loads(status.stdout)[0]["events"] == n:
                break
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(0.5)
    finally:
        loader.send_signal(signal.SIGTERM)
        loader.wait(timeout=60)
    assert loader.returncode == 0
