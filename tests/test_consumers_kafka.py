"""The live loader against the real broker (Tansu) and real chDB: poison, drain, exactly once."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from consumers.live import LiveLoader, RunOptions
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.broker import BrokerHandle, free_port, start_broker, stop_broker
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.codec import encode_record
from schemas.registry import current_schema
from tests.test_consumers_support import content_sql, dossier, events, keyed, publish, spawn

pytestmark = pytest.mark.broker


def _env(tmp_path: Path, bootstrap: str, topic: str, partitions: int = 6) -> dict[str, str]:
    return {
        "DOSSIER_DATA_DIR": str(tmp_path),
        "DOSSIER_KAFKA_BOOTSTRAP": bootstrap,
        "DOSSIER_TOPIC": topic,
        "DOSSIER_PARTITIONS": str(partitions),
    }


def _content(tmp_path: Path) -> tuple[int, int, int, int]:
    with opened_store(Settings(data_dir=tmp_path), serve=False) as store:
        rows, ids, bad, broken = store.query(content_sql()).rows[0]
    return int(rows), int(ids), int(bad), int(broken)


def test_poison_messages_become_dead_letters_and_do_not_stall(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    evs = events(10)
    good = keyed(evs)
    invalid = encode_record({**evs[3].to_record(), "status": 0, "seq": 99})
    poison = [
        (b"k", b"not avro at all"),
        (b"k", b"\xc3\x01" + b"\x01" * 8 + b"body"),
        (b"k", current_schema().fingerprint_bytes.join([b"\xc3\x01", b"\xff\xff\xff\xff"])),
        (b"k", invalid),
    ]
    publish(broker.bootstrap, topic, good[:40] + poison + good[40:], partitions=1)
    env = _env(tmp_path, broker.bootstrap, topic, partitions=1)
    done = dossier("consume", "run", "--stop-when-idle", "2", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["stored"] == len(evs)
    with opened_store(Settings(data_dir=tmp_path), serve=False) as store:
        dead = store.query("SELECT offset, kind, error, length(raw) > 0 FROM dead_letters FINAL ORDER BY offset").rows
    assert [(o, k) for o, k, _e, _r in dead] == [
        (40, "bad-magic"),
        (41, "unknown-fingerprint"),
        (42, "undecodable"),
        (43, "invalid"),
    ]
    assert all(has_raw for *_x, has_raw in dead)
    assert "status 0" in dead[3][2]
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)
    status = dossier("consume", "status", "--format", "json", env=env)
    summary = json.loads(status.stdout)[0]
    assert (summary["events"], summary["dossiers"], summary["dead_letters"]) == (len(evs), 10, 4)
    assert summary["partitions"][0]["last_stored_offset"] == len(evs) + len(poison) - 1
    assert summary["partitions"][0]["lag"] == 0


def test_sigterm_drains_the_pending_batch(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    evs = events(50)
    publish(broker.bootstrap, topic, keyed(evs))
    proc = spawn("consume", "run", "--max-wait", "60", "--format", "json", env=_env(tmp_path, broker.bootstrap, topic))
    try:
        started = time.monotonic()
        status: dict[str, object] = {}
        while time.monotonic() < started + 30 and not (status and time.monotonic() > started + 7):
            time.sleep(0.5)  # read through the running loader (another process)
            probe = dossier(
                "consume", "status", "--no-lag", "--format", "json", env=_env(tmp_path, broker.bootstrap, topic)
            )
            if probe.returncode == 0:
                status = json.loads(probe.stdout)[0]
                assert "EmbeddedServer" not in probe.stderr
        time.sleep(1)
        assert status.get("events") == 0  # the 60 s batch is still pending
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)[0]["stored"] == len(evs)
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)


@pytest.mark.slow
def test_kill_9_at_random_moments_stores_every_event_exactly_once(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    evs = events(6250)  # 50,000 events
    publish(broker.bootstrap, topic, keyed(evs))
    env = _env(tmp_path, broker.bootstrap, topic)
    rng = random.Random(20240115)
    kills = 0
    for _ in range(5):
        proc = spawn("consume", "run", "--max-events", "1500", "--max-wait", "0.2", env=env)
        time.sleep(rng.uniform(3.2, 5.0))  # a group join takes ~3 s, then it loads
        proc.kill()
        proc.wait(timeout=30)
        kills += 1
    partial = _content(tmp_path)[0]
    assert 0 < partial
    done = dossier("consume", "run", "--stop-when-idle", "3", "--format", "json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert kills == 5
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)


def test_two_consumers_rebalance_mid_load(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    evs = events(900)
    messages = keyed(evs)
    settings = Settings(data_dir=tmp_path, topic=topic, partitions=6, kafka_bootstrap=broker.bootstrap)
    with opened_store(settings, role="writer", serve=False) as store:
        migrate(store)
        publish(broker.bootstrap, topic, messages[:2400])
        options = RunOptions(group=f"g-{topic}", max_events=500, max_wait_s=0.2, progress_every_s=999)
        stops = [threading.Event(), threading.Event()]
        sinks = [Sink(store), Sink(store)]
        loaders = [LiveLoader(settings, sinks[i], broker.bootstrap, options) for i in range(2)]
        threads = [threading.Thread(target=loaders[i].run, args=(stops[i],)) for i in range(2)]
        threads[0].start()
        time.sleep(4)
        threads[1].start()  # join → rebalance while loading
        publish(broker.bootstrap, topic, messages[2400:5000])
        time.sleep(6)
        stops[1].set()  # leave → rebalance again
        threads[1].join(timeout=60)
        publish(broker.bootstrap, topic, messages[5000:])
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and store.query("SELECT count() FROM events").scalar() < len(evs):
            time.sleep(0.5)
        stops[0].set()
        threads[0].join(timeout=60)
        for sink in sinks:
            sink.close()
        assert loaders[1].summary.totals.stored > 0  # the second consumer really took part
        rows, ids, bad, broken = store.query(content_sql()).rows[0]
    assert (rows, ids, bad, broken) == (len(evs), len(evs), 0, 0)


@pytest.mark.slow
def test_broker_restart_neither_loses_nor_doubles(tmp_path: Path) -> None:
    port = free_port()
    handle = start_broker(port=port, log_path=tmp_path / "b1.log")
    topic = "dossier-events"
    evs = events(400)
    messages = keyed(evs)
    env = _env(tmp_path, handle.bootstrap, topic)
    proc = spawn("consume", "run", "--max-wait", "0.2", "--format", "json", env=env)
    try:
        publish(handle.bootstrap, topic, messages[:1600])
        _wait_for(tmp_path, env, 1600)
        stop_broker(handle)  # Tansu forgets topics, records and offsets
        handle = start_broker(port=port, log_path=tmp_path / "b2.log")
        _publish_when_ready(handle.bootstrap, topic, messages)  # producers republish everything, plus new events
        _wait_for(tmp_path, env, len(evs))
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_broker(handle)
    assert proc.returncode == 0, err
    assert json.loads(out)[0]["stored"] >= len(evs) - 1600  # stored across the reset, none twice (below)
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)


def _publish_when_ready(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Publish once the topic has its partition count again (the loader repairs an auto-created one)."""
    from dossier_runtime.errors import BrokerError

    deadline = time.monotonic() + 30
    while True:
        try:
            publish(bootstrap, topic, messages)
            return
        except BrokerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _wait_for(tmp_path: Path, env: dict[str, str], count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
        if probe.returncode == 0 and json.loads(probe.stdout)[0]["events"] >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the loader did not store {count} events in {timeout} s")
