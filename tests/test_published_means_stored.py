"""Published means stored, or refused: on the embedded default, publishing needs a running stack to hold what it
sends (the embedded broker keeps messages in memory only)."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
import uuid
from pathlib import Path

from dossier_runtime.settings import Settings
from producers.confirmation import confirm_stored
from producers.publish import Delivered, DeliveryReport, outbound_event
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
        assert json.loads(out.stdout)["delivered"] == n
        # "delivered" on the embedded stack was confirmed against the store: no wait for the loader here
        status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
        assert status.returncode == 0 and json.loads(status.stdout)[0]["events"] == n, status.stdout + status.stderr
    finally:
        loader.send_signal(signal.SIGTERM)
        loader.wait(timeout=60)
    assert loader.returncode == 0


def test_an_acknowledgement_counts_as_delivered_only_once_the_store_holds_the_event(tmp_path: Path) -> None:
    """The confirmation step against a real store: held events stay delivered, an event the loader refused is
    reported with its dead letter, one the store never got is undelivered (with its bytes, for the undelivered
    file), in input order."""
    data = tmp_path / "data"
    env = {**EMBEDDED, "DOSSIER_DATA_DIR": str(data)}
    evs = events(3)
    stored, refused, missing = evs[:8], evs[8:16], evs[16:]
    other = [
        dataclasses.replace(e, event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"other-{e.event_id}"))) for e in refused
    ]
    for name, part in (("a", stored), ("b", other), ("c", [dataclasses.replace(e) for e in refused])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(to_json(e), ensure_ascii=False) + "\n" for e in part), encoding="utf-8")
        dossier("consume", "load", str(path), env=env)  # c: other events under b's identities, dead letters
    outbound = {str(e.event_id): outbound_event(e) for e in evs}
    acknowledged = tuple(
        Delivered(o.event_id, o.dossier_id, o.seq, "dossier.events", 0, i) for i, o in enumerate(outbound.values())
    )
    report = confirm_stored(
        Settings(data_dir=data), DeliveryReport("dossier.events", acknowledged, ()), outbound, patience_s=0.5
    )
    assert [d.event_id for d in report.delivered] == [str(e.event_id) for e in stored]
    assert [u.event_id for u in report.failed] == [str(e.event_id) for e in [*refused, *missing]]
    assert all("refused by the loader (conflict" in u.error for u in report.failed[: len(refused)])
    assert all("not stored after 0.5 s" in u.error for u in report.failed[len(refused) :])
    assert all(u.sent and u.event.payload for u in report.failed)
