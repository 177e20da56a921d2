"""The live loader against the real broker (Tansu) and real chDB: poison, drain, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.live import LiveLoader, RunOptions, local_store
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.broker import BrokerHandle, free_port, start_broker, stop_broker
from dossier_runtime.kafka import ensure_topic
from dossier_runtime.progress import STAMP
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from tests.test_consumers_support import (
    assert_poison_dead_lettered,
    content_sql,
    dossier,
    events,
    keyed,
    poison_messages,
    publish,
    spawn,
)

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
    poison = poison_messages(evs)
    publish(broker.bootstrap, topic, good[:40] + poison + good[40:], partitions=1)
    env = _env(tmp_path, broker.bootstrap, topic, partitions=1)
    done = dossier("consume", "run", "--stop-when-idle", "2", "--format", "json", env=env)
    assert done.returncode == 3, done.stderr  # something was dead-lettered: said in the last line
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        f"{len(poison)} event(s) not stored, dead-lettered (bad-magic 1, invalid 1, undecodable 1, "
        f"unknown-fingerprint 1); list them with `dossier consume dead-letters --source {topic}`"
    )
    # the log before it is stamped alike, the Kafka reader's lines (from its own process) too
    assert all(STAMP.match(line) for line in lines[:-1]), lines
    assert any("assigned partitions" in line for line in lines) and any("dead letter " in line for line in lines)
    assert json.loads(done.stdout)[0]["stored"] == len(evs)
    with opened_store(Settings(data_dir=tmp_path), serve=False) as store:
        assert_poison_dead_lettered(store)
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)
    status = dossier("consume", "status", "--format", "json", env=env)
    summary = json.loads(status.stdout)[0]
    assert (summary["events"], summary["dossiers"], summary["dead_letters"]) == (len(evs), 10, 4)
    assert summary["partitions"][0]["last_stored_offset"] == len(evs) + len(poison) - 1
    assert summary["partitions"][0]["lag"] == 0


def test_sigterm_drains_the_pending_batch(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    evs = events(50)
    publish(broker.bootstrap, topic, keyed(evs))
    env = _env(tmp_path, broker.bootstrap, topic)
    proc = spawn("consume", "run", "--max-wait", "300", "--format", "json", env=env)
    try:
        _wait_fetched(proc)  # every event read from the topic, into the batch that waits for --max-wait
        probe = dossier("consume", "status", "--no-lag", "--format", "json", env=env)  # through the running loader
        assert probe.returncode == 0 and "EmbeddedServer" not in probe.stderr, probe.stderr
        assert json.loads(probe.stdout)[0]["events"] == 0  # the batch is still pending
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)[0]["stored"] == len(evs)
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)


def test_sigterm_to_the_command_alone_stops_it_with_no_batch_coming(tmp_path: Path) -> None:
    """SIGTERM to the command's process only (as a service manager sends it), the topic idle and then its broker
    gone: the loader still passes it to its Kafka reader and exits 0 at once, not when a batch happens to arrive."""
    handle = start_broker(log_path=tmp_path / "b.log")
    proc = spawn("consume", "run", "--format", "json", env=_env(tmp_path, handle.bootstrap, "dossier-events"))
    try:
        _wait_assigned(proc)
        stop_broker(handle)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_broker(handle)
    assert proc.returncode == 0
    assert json.loads(out)[0]["stored"] == 0


def _wait_assigned(proc: subprocess.Popen[str], timeout: float = 90) -> None:
    """Wait until the spawned loader logs its partition assignment (it loads from then on)."""
    assigned = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "assigned partitions" in line:
                assigned.set()

    threading.Thread(target=read, daemon=True).start()
    assert assigned.wait(timeout), "the loader was not assigned partitions"


def _wait_fetched(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait until the spawned loader's progress line says it has read every partition to its end (lag 0 each)."""
    fetched = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lags = line.partition("; lag ")[2].split()
            if lags and all(lag.endswith("=0") for lag in lags):
                fetched.set()

    threading.Thread(target=read, daemon=True).start()
    assert fetched.wait(timeout), "the loader did not read the topic to its end"


def test_two_consumers_rebalance_mid_load(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    evs = events(900)
    messages = keyed(evs)
    chunks = [messages[i : i + 300] for i in range(0, len(messages), 300)]  # 24 chunks
    settings = Settings(data_dir=tmp_path, topic=topic, partitions=6, kafka_bootstrap=broker.bootstrap)
    assigned = [threading.Event(), threading.Event()]

    def log(i: int) -> Callable[[str], None]:
        return lambda line: assigned[i].set() if line.startswith("assigned partitions [") else None

    def publish_slowly() -> None:  # keeps a load going through both rebalances
        for n, chunk in enumerate(chunks):
            if n == 8:
                assigned[1].wait(60)  # the second half arrives once both consumers share the partitions
            publish(broker.bootstrap, topic, chunk)
            time.sleep(0.3)

    with opened_store(settings, role="writer", serve=False) as store:
        migrate(store)
        ensure_topic(broker.bootstrap, topic, 6)
        options = RunOptions(group=f"g-{topic}", max_events=500, max_wait_s=0.2, progress_every_s=999)
        stops = [threading.Event(), threading.Event()]
        sinks = [Sink(store), Sink(store)]
        loaders = [
            LiveLoader(settings, local_store(sinks[i], topic), broker.bootstrap, options, log=log(i)) for i in range(2)
        ]
        threads = [threading.Thread(target=loaders[i].run, args=(stops[i],)) for i in range(2)]
        publisher = threading.Thread(target=publish_slowly)
        threads[0].start()
        publisher.start()
        assert assigned[0].wait(60)
        threads[1].start()  # join → rebalance while loading
        assert assigned[1].wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not loaders[1].summary.totals.stored:
            time.sleep(0.2)
        stops[1].set()  # leave → rebalance again, while chunks keep coming
        threads[1].join(timeout=60)
        publisher.join(timeout=120)
        deadline = time.monotonic() + 90
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
        _wait_for(tmp_path, env, 1600, proc)
        stop_broker(handle)  # Tansu forgets topics, records and offsets
        handle = start_broker(port=port, log_path=tmp_path / "b2.log")
        _publish_when_ready(handle.bootstrap, topic, messages)  # producers republish everything, plus new events
        _wait_for(tmp_path, env, len(evs), proc)
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


@pytest.mark.slow
def test_topic_recreated_and_refilled_before_the_loader_notices(tmp_path: Path) -> None:
    """The hole a high-watermark check misses: after a reset, new events fill the new topic past our position."""
    port = free_port()
    handle = start_broker(port=port, log_path=tmp_path / "b1.log")
    topic = "dossier-events"
    evs = events(300)
    messages = keyed(evs)
    env = _env(tmp_path, handle.bootstrap, topic)
    proc = spawn("consume", "run", "--max-wait", "0.2", "--format", "json", env=env)
    try:
        publish(handle.bootstrap, topic, messages[:800])
        _wait_for(tmp_path, env, 800, proc)
        frozen = [proc.pid, *_children(proc.pid)]  # the loader and its Kafka reader see nothing of the reset
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            stop_broker(handle)
            handle = start_broker(port=port, log_path=tmp_path / "b2.log")
            ensure_topic(handle.bootstrap, topic, 6)  # recreated by someone else
            publish(handle.bootstrap, topic, messages[800:])  # only new events: the new topic passes our positions
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        _wait_for(tmp_path, env, len(evs), proc)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_broker(handle)
    assert proc.returncode == 0, err
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


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


def _wait_for(
    tmp_path: Path, env: dict[str, str], count: int, loader: subprocess.Popen[str], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
        if probe.returncode == 0 and json.loads(probe.stdout)[0]["events"] >= count:
            return
        time.sleep(0.5)
    loader.kill()
    _out, err = loader.communicate(timeout=30)
    raise AssertionError(f"the loader did not store {count} events in {timeout} s; its log:\n{err[-4000:]}")


@pytest.mark.slow
def test_a_crashed_reader_is_replaced_and_nothing_is_lost_or_doubled(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    """The Kafka reader killed by a signal (a crash, the OOM killer) is started again; the store stays exact.

    SIGKILL stands for the crash: a SIGSEGV sent with kill() is taken by chDB's own handler in the reader.
    """
    evs = events(200)
    messages = keyed(evs)
    env = _env(tmp_path, broker.bootstrap, topic)
    proc = spawn("consume", "run", "--max-wait", "0.2", "--format", "json", env=env)
    try:
        publish(broker.bootstrap, topic, messages[:600])
        _wait_for(tmp_path, env, 600, proc)
        [reader] = _children(proc.pid)
        os.kill(reader, signal.SIGKILL)
        publish(broker.bootstrap, topic, messages[600:])
        _wait_for(tmp_path, env, len(evs), proc)
        assert [r for r in _children(proc.pid) if r != reader], "no new reader"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "killed by SIGKILL; starting a new one" in err
    assert json.loads(out)[0]["stored"] == len(evs)
    assert _content(tmp_path) == (len(evs), len(evs), 0, 0)
