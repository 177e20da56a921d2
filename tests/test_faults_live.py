"""SIGKILL storms on ``dossier consume run``, against the real broker (Tansu) and chDB: the figures of RELIABILITY.md.

The loader (the process that owns the store) or, separately, its Kafka reader
is killed at random moments while a live load runs: before each kill a slice
of the events is being published, and the kill lands within a window sized to
that slice's publishing and loading. A killed owner is restarted at once; a
killed reader is replaced by its owner (up to 3 times in 10 minutes, then the
command stops with exit 1 and is restarted). At the end the store must hold
exactly the input: every event id once, gapless seqs, intact hash chains, no
dead letter.

CI runs a short storm (4 kills of the reader, 3 of the loader, over 20,000 events); the long one is the same
test with more, for example::

    DOSSIER_FAULT_KILLS=20 DOSSIER_FAULT_EVENTS=200000 \
        .venv/bin/pytest tests/test_faults_live.py -m slow -s

Each test prints one ``fault-summary`` line (JSON) with what it measured.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dossier_runtime.broker import BrokerHandle
from dossier_runtime.kafka import ensure_topic, make_producer
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from tests.test_consumers_support import content_sql, dossier, events, keyed, publish, spawn

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KILLS = int(os.environ.get("DOSSIER_FAULT_KILLS", "4"))
EVENTS = int(os.environ.get("DOSSIER_FAULT_EVENTS", "20000"))
SEED = int(os.environ.get("DOSSIER_FAULT_SEED", "20240115"))
#: A slice is published over this many seconds; each kill lands at a random moment within them.
SPREAD_S = 3.0
#: Signs of a crash inside a process (faulthandler's report, a native abort) that must never appear.
CRASH_SIGNS = ("Fatal Python error", "Segmentation fault", "Traceback (most recent call last)")


class Loader:
    """A spawned ``dossier consume run`` whose stderr is watched for its partition assignment."""

    def __init__(self, env: dict[str, str], lines: list[str], max_events: int = 2000) -> None:
        self.proc = spawn("consume", "run", "--max-events", str(max_events), "--max-wait", "0.2", env=env)
        self.lines = lines
        self.assigned = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "assigned partitions [" in line and "assigned partitions []" not in line:
                self.assigned.set()

    def wait_assigned(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.assigned.wait(0.2):
            assert self.proc.poll() is None, f"the loader exited ({self.proc.returncode}):\n{self.log()}"
            assert time.monotonic() < deadline, f"the loader was not assigned partitions:\n{self.log()}"

    def readers(self) -> list[int]:
        return _children(self.proc.pid)

    def log(self) -> str:
        return "".join(self.lines)[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.thread.join(timeout=10)
        return self.proc.returncode


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except FileNotFoundError:
        pass
    return found


def _gone(pid: int, timeout: float = 10) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for init counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _stored(env: dict[str, str]) -> int | None:
    """Events in the store now (through the running owner, or opening the store when there is none)."""
    probe = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
    return int(json.loads(probe.stdout)[0]["events"]) if probe.returncode == 0 else None


def exact_content(data_dir: Path, evs: list[Any]) -> dict[str, int]:
    """What the store holds against the input: lost, doubled and foreign events, broken hashes and chains."""
    with opened_store(Settings(data_dir=data_dir), serve=False) as store:
        rows, ids, bad, broken = store.query(content_sql()).rows[0]
        stored = {str(r[0]) for r in store.query("SELECT event_id FROM events").rows}
        dead = int(store.query("SELECT count() FROM dead_letters").scalar())
    expected = {str(e.event_id) for e in evs}
    return {
        "events": len(evs),
        "rows": int(rows),
        "lost": len(expected - stored),
        "doubled": int(rows) - int(ids),
        "foreign": len(stored - expected),
        "bad_hashes": int(bad),
        "broken_dossiers": int(broken),
        "dead_letters": dead,
    }


def assert_exact(found: dict[str, int]) -> None:
    n = found["events"]
    assert found == {**found, "rows": n, "lost": 0, "doubled": 0, "foreign": 0, "bad_hashes": 0}, found
    assert (found["broken_dossiers"], found["dead_letters"]) == (0, 0), found


@pytest.mark.parametrize("target", ["loader", "reader"])
def test_sigkill_storm_during_a_live_load_loses_and_doubles_nothing(
    broker: BrokerHandle, topic: str, tmp_path: Path, target: str
) -> None:
    """``KILLS`` SIGKILLs of the reader, or one fewer of the loader (its reader dies with it), each in a live load."""
    started = time.monotonic()
    evs = events(max(EVENTS // 8, 1))  # 8 events a dossier
    messages = keyed(evs)
    # The reader's storm goes one kill past the owner's 3 replacements; the loader's needs no fourth (CI time).
    kills = KILLS if target == "reader" else max(KILLS - 1, 1)
    per = len(messages) // (kills + 1)
    env = {
        "DOSSIER_DATA_DIR": str(tmp_path),
        "DOSSIER_KAFKA_BOOTSTRAP": broker.bootstrap,
        "DOSSIER_TOPIC": topic,
        "DOSSIER_PARTITIONS": "6",
    }
    rng = random.Random(SEED)
    lines: list[str] = []
    ensure_topic(broker.bootstrap, topic, 6)
    loader = Loader(env, lines)
    mid_load = restarts = replaced = before = 0
    at_kill: list[tuple[int, int | None, int]] = []  # (published before the slice, stored at the kill, after it)
    try:
        for k in range(kills):
            loader.wait_assigned()
            publisher = _Publisher(broker.bootstrap, topic, messages[k * per : (k + 1) * per])
            publisher.start()  # the kill lands while this slice is being published and loaded
            time.sleep(rng.uniform(0.05, SPREAD_S))
            if target == "loader":
                readers = loader.readers()
                loader.proc.kill()
                loader.proc.wait(timeout=30)
                assert all(_gone(r) for r in readers), "the Kafka reader outlived its killed owner"
            else:
                [reader] = loader.readers()
                loader.assigned.clear()
                os.kill(reader, signal.SIGKILL)
            publisher.finish()
            stored = _stored(env)
            at_kill.append((k * per, stored, (k + 1) * per))
            if stored is not None and before < stored < (k + 1) * per:
                mid_load += 1  # stored something since the last kill, and the load was unfinished: killed inside it
            before = stored if stored is not None else before
            if target == "loader" or not _replaced(loader, reader):
                loader.stop()
                if target == "reader":
                    assert "not starting it again" in loader.log(), loader.log()
                loader = Loader(env, lines)
                restarts += 1
            else:
                replaced += 1
        publish(broker.bootstrap, topic, messages[kills * per :])
        loader.wait_assigned()
    finally:
        code = loader.stop()
    assert code == 0, loader.log()
    done = dossier("consume", "run", "--stop-when-idle", "3", "--format", "json", env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    found = exact_content(tmp_path, evs)
    crashes = [line for line in lines if any(sign in line for sign in CRASH_SIGNS)]
    summary = {
        "target": target,
        "kills": kills,
        "mid_load": mid_load,
        "restarts": restarts,
        "replaced_by_owner": replaced,
        **found,
        "crash_reports": len(crashes),
        "seconds": round(time.monotonic() - started),
        "at_kill": at_kill,
    }
    print(f"fault-summary: {json.dumps(summary)}")
    assert_exact(found)
    assert not crashes, "".join(crashes)
    assert mid_load >= 1, summary  # the kills did land inside loads, not only between them
    if target == "reader":
        assert replaced >= min(kills, 3), summary  # the owner replaced its crashed reader


class _Publisher(threading.Thread):
    """Publishes a slice in the background, spread over ``SPREAD_S`` in ten chunks (a live load, not a burst);
    :meth:`finish` waits for it and raises what it raised."""

    def __init__(self, bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.messages = bootstrap, topic, messages
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = make_producer(self.bootstrap)
            try:
                step = max(len(self.messages) // 10, 1)
                for i in range(0, len(self.messages), step):
                    futures = [producer.send(self.topic, key=k, value=v) for k, v in self.messages[i : i + step]]
                    producer.flush()
                    for future in futures:
                        future.get(timeout=30)
                    time.sleep(SPREAD_S / 10)
            finally:
                producer.close()
        except BaseException as exc:  # raised in the test's thread by finish()
            self.error = exc

    def finish(self) -> None:
        self.join(timeout=120)
        assert not self.is_alive(), "publishing a slice took over 120 s"
        if self.error is not None:
            raise self.error


def _replaced(loader: Loader, killed: int, timeout: float = 30) -> bool:
    """Whether the owner started a new reader in place of ``killed`` (False: it stopped instead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loader.proc.poll() is not None:
            return False
        if any(r != killed for r in loader.readers()):
            return True
        time.sleep(0.1)
    raise AssertionError(f"neither a new reader nor an exit within {timeout} s:\n{loader.log()}")


def test_a_write_lost_under_the_store_is_found_at_restart_and_replayed_from_the_topic(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    """The store's process may not write a file past 256 KiB (RLIMIT_FSIZE, set on the owner alone once its reader
    runs): a stand-in for a full disk that works as root, where a read-only directory does not stop writes.

    chDB acknowledges the failed writes: the part is found broken at the next start and set aside, its rows gone.
    What must hold: the loss is said (``consume status``), the restart finds the part, reads the topic again from
    its earliest offsets and stores everything exactly once; a later start does not replay again."""
    import resource

    limit = 256 * 1024
    evs = events(2500)  # 20,000 events in batches of up to 10,000: a part's data file is well past the limit
    env = {
        "DOSSIER_DATA_DIR": str(tmp_path),
        "DOSSIER_KAFKA_BOOTSTRAP": broker.bootstrap,
        "DOSSIER_TOPIC": topic,
        "DOSSIER_PARTITIONS": "6",
    }
    ensure_topic(broker.bootstrap, topic, 6)
    lines: list[str] = []
    loader = Loader(env, lines, max_events=100_000)
    try:
        loader.wait_assigned()
        resource.prlimit(loader.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        publish(broker.bootstrap, topic, keyed(evs))
        deadline = time.monotonic() + 30
        while loader.proc.poll() is None and time.monotonic() < deadline:
            if "stored 20,000" in loader.log():
                break  # it says it stored the batch: nothing more will happen
            time.sleep(0.5)
    finally:
        code = loader.stop()
    cut = [f for f in (tmp_path / "store").rglob("*") if f.is_file() and f.stat().st_size == limit]
    assert cut or code != 0, "the fault was not injected: the loader ran on and no file of the store reached the limit"
    status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
    broken = json.loads(status.stdout)[0]["broken_parts"]
    assert broken.get("events") and "found broken parts" in status.stderr, (broken, status.stderr)
    again = dossier("consume", "run", "--stop-when-idle", "3", "--format", "json", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "broken part(s) of events" in again.stderr and "reached the end of the topic" in again.stderr, again.stderr
    found = exact_content(tmp_path, evs)
    summary = {"fault": "RLIMIT_FSIZE", "exit": code, "cut_files": len(cut), "broken": broken, **found}
    print(f"fault-summary: {json.dumps(summary)}")
    assert_exact(found)
    assert "Traceback" not in loader.log(), loader.log()
    third = dossier("consume", "run", "--stop-when-idle", "3", "--format", "json", env=env, timeout=300)
    assert third.returncode == 0 and "broken part" not in third.stderr, third.stderr[-4000:]


def test_the_embedded_broker_killed_while_publishing(tmp_path: Path) -> None:
    """`produce publish` to the embedded stack, its broker SIGKILLed mid-run: "delivered" means stored, so what
    the dead broker had acknowledged but the loader had not stored is reported undelivered with the rest; the
    loader restarts the broker and says so; publishing the undelivered file completes the store exactly."""
    from schemas.jsonform import to_json

    evs = events(4000)  # 32,000 events: publishing them outlasts a slow start of the loader on a busy machine
    data = tmp_path / "data"
    env = {"DOSSIER_KAFKA_BOOTSTRAP": "", "DOSSIER_DATA_DIR": str(data)}
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(to_json(e), ensure_ascii=False) + "\n" for e in evs), encoding="utf-8")
    lines: list[str] = []
    loader = Loader(env, lines)
    try:
        deadline = time.monotonic() + 60
        while not (data / "broker.json").exists() or not (data / "store.endpoint.json").exists():
            assert time.monotonic() < deadline and loader.proc.poll() is None, loader.log()
            time.sleep(0.2)
        publisher = spawn("produce", "publish", str(source), "--format", "json", env=env)
        while (stored := _stored(env)) is None or stored < 1000:
            assert publisher.poll() is None, "the publishing ended before the kill"
            time.sleep(0.2)
        os.kill(json.loads((data / "broker.json").read_text())["pid"], signal.SIGKILL)
        out, err = publisher.communicate(timeout=300)
        assert publisher.returncode == 1, err[-2000:]
        assert "Traceback" not in err
        report = [json.loads(line) for line in (tmp_path / "in.undelivered.report.jsonl").read_text().splitlines()]
        delivered = {r["event_id"] for r in report if r["status"] == "delivered"}
        undelivered_file = tmp_path / "in.undelivered.jsonl"
        undelivered = [json.loads(line)["event_id"] for line in undelivered_file.read_text().splitlines()]
        assert len(report) == len(evs) and len(delivered) == json.loads(out)["delivered"]
        assert sorted([*delivered, *undelivered]) == sorted(str(e.event_id) for e in evs), "each event once"
        with opened_store(Settings(data_dir=data)) as store:  # through the loader's endpoint
            held = {str(r[0]) for r in store.query("SELECT event_id FROM events").rows}
        assert delivered <= held, f"{len(delivered - held)} events reported delivered are not stored"
        lost_with_broker = sum(1 for r in report if "not stored" in r.get("error", ""))
        again = dossier("produce", "publish", "--continuation", str(undelivered_file), env=env, timeout=300)
        assert again.returncode == 0, again.stderr[-2000:]  # the restarted broker is found, and takes it
        _wait_stored(env, len(evs))
        time.sleep(2)
    finally:
        code = loader.stop()
    assert code == 0, loader.log()
    assert "the embedded broker exited; starting a new one on the same port" in loader.log()
    assert "reading every assigned partition again from the start" in loader.log()
    assert not (data / "broker.json").exists(), "the restarted broker was left running"
    final = exact_content(data, evs)
    summary = {"acknowledged_not_stored": lost_with_broker, "delivered": len(delivered), **final}
    print(f"fault-summary: {json.dumps(summary)}")
    assert_exact(final)


def _wait_stored(env: dict[str, str], count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (stored := _stored(env)) is None or stored < count:
        assert time.monotonic() < deadline, f"{stored} of {count} stored after {timeout} s"
        time.sleep(0.5)
