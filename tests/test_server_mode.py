"""Server mode (``DOSSIER_CLICKHOUSE_URL``) end to end: the real broker (Tansu) and ClickHouse over HTTP.

The ClickHouse side is :mod:`tests.chserver`: ClickHouse's HTTP interface
served by the real engine (chDB) in its own process, which owns its data
directory; the CLI under test reaches it only over HTTP, through
clickhouse-connect, exactly as it reaches a ClickHouse server. Each test gets
a fresh database on it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dossier_runtime.broker import BrokerHandle
from dossier_runtime.errors import StoreError
from dossier_runtime.kafka import ensure_topic
from dossier_runtime.settings import Settings
from dossier_runtime.store import StoreQueryError, open_store, opened_store
from tests import chserver
from tests.test_consumers_support import (
    assert_poison_dead_lettered,
    content_sql,
    dossier,
    events,
    keyed,
    poison_messages,
    publish,
    spawn,
    write_container,
)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chserver.ChServer]:
    # A server in Ho Chi Minh City's zone: every instant the code binds or reads must say its zone.
    server = chserver.start(tmp_path_factory.mktemp("chserver") / "data", timezone="Asia/Ho_Chi_Minh")
    yield server
    server.stop()


@pytest.fixture
def url(clickhouse: chserver.ChServer) -> str:
    """A fresh database on the server, as ``DOSSIER_CLICKHOUSE_URL``."""
    return clickhouse.fresh_database()


def test_store_api_over_http(clickhouse: chserver.ChServer, url: str) -> None:
    """The Store API on ServerBackend: binding, types, read-only readers, errors as ClickHouse words them."""
    at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with opened_store(Settings(clickhouse_url=url), role="writer") as store:
        assert store.kind == "server"
        store.command("CREATE TABLE t (a Int64, b String, c DateTime64(6, 'UTC'), h FixedString(2)) ENGINE = Memory")
        assert store.insert_rows("t", ["a", "b", "c", "h"], [(1, "x", at, b"ab"), (2, "y' OR '1'='1", at, b"cd")]) == 2
        data = b"3\tz\t2024-01-02 03:04:05.000006\tef\n4\tw\t2024-01-02 03:04:05.000006\tgh\n"
        assert store.insert_bytes("INSERT INTO t (a, b, c, h)", "TabSeparated", [data]) == 2
    with opened_store(Settings(clickhouse_url=url)) as reader:
        result = reader.query(
            "SELECT a, b, c, h FROM t WHERE b = {b:String} AND c = {at:DateTime64(6, 'UTC')}",
            {"b": "y' OR '1'='1", "at": at},
        )
        assert result.rows == [(2, "y' OR '1'='1", at, b"cd")]
        assert reader.query("SELECT count() FROM t WHERE b = {b:String}", {"b": "x' OR '1'='1"}).scalar() == 0
        many = [f"id-{i:06d}" for i in range(1000)]  # bound values past 4 KiB: clickhouse-connect sends a form
        assert reader.query("SELECT count() FROM t WHERE b IN {ids:Array(String)}", {"ids": [*many, "x"]}).scalar() == 1
        assert sum(b.num_rows for b in reader.query_batches("SELECT number FROM numbers(200000)")) == 200000
        assert reader.query("SELECT a FROM t WHERE a > 100").rows == []
        assert reader.query("SET max_threads = 1").rows == []  # no result at all, as on the embedded store
        with pytest.raises(StoreQueryError, match="READONLY") as refused:
            reader.command("INSERT INTO t (a) VALUES (9)")
        assert refused.value.code == 164
        with pytest.raises(StoreQueryError, match="UNKNOWN_TABLE") as unknown:
            reader.query("SELECT * FROM nope")
        assert unknown.value.code == 60 and "for url" not in str(unknown.value)
    with pytest.raises(StoreError, match="refused the user name or password"):
        open_store(Settings(clickhouse_url=url.replace(f":{clickhouse.password}@", ":wrong@")))
    with pytest.raises(StoreError, match="has no database 'nowhere'"):
        open_store(Settings(clickhouse_url=clickhouse.url("nowhere")))


def _env(tmp_path: Path, url: str, bootstrap: str, topic: str, partitions: int = 6) -> dict[str, str]:
    return {
        "DOSSIER_DATA_DIR": str(tmp_path / "data"),
        "DOSSIER_KAFKA_BOOTSTRAP": bootstrap,
        "DOSSIER_TOPIC": topic,
        "DOSSIER_PARTITIONS": str(partitions),
        "DOSSIER_CLICKHOUSE_URL": url,
    }


def _content(url: str) -> tuple[int, int, int, int]:
    with opened_store(Settings(clickhouse_url=url)) as store:
        assert store.kind == "server"
        rows, ids, bad, broken = store.query(content_sql()).rows[0]
    return int(rows), int(ids), int(bad), int(broken)


def _ok(done: subprocess.CompletedProcess[str], *codes: int) -> subprocess.CompletedProcess[str]:
    assert done.returncode in (codes or (0,)), f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def test_migrate_run_poison_and_status(broker: BrokerHandle, topic: str, url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, url, broker.bootstrap, topic, partitions=1)
    first = json.loads(_ok(dossier("consume", "migrate", "--format", "json", env=env)).stdout)
    again = json.loads(_ok(dossier("consume", "migrate", "--format", "json", env=env)).stdout)
    assert first and all(m["state"] == "applied now" for m in first)
    assert [m["version"] for m in again] == [m["version"] for m in first]
    assert all(m["state"] != "applied now" for m in again)  # idempotent
    evs = events(10)
    good = keyed(evs)
    poison = poison_messages(evs)
    publish(broker.bootstrap, topic, good[:40] + poison + good[40:], partitions=1)
    done = _ok(dossier("consume", "run", "--stop-when-idle", "2", "--format", "json", env=env), 3)  # dead letters
    assert json.loads(done.stdout)[0]["stored"] == len(evs)
    assert _content(url) == (len(evs), len(evs), 0, 0)
    with opened_store(Settings(clickhouse_url=url)) as store:
        assert_poison_dead_lettered(store)
    summary = json.loads(_ok(dossier("consume", "status", "--format", "json", env=env)).stdout)[0]
    assert (summary["events"], summary["dossiers"], summary["dead_letters"]) == (len(evs), 10, 4)
    assert summary["partitions"][0]["last_stored_offset"] == len(evs) + len(poison) - 1
    assert summary["partitions"][0]["lag"] == 0
    assert not (tmp_path / "data" / "store").exists()  # nothing went to an embedded store


@pytest.mark.parametrize("request_bytes", [64 * 1024 * 1024, 1], ids=["whole-runs", "one-block-per-request"])
def test_bulk_files_with_a_corrupt_block_over_http(
    url: str, tmp_path: Path, request_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several files in one batch, a corrupt block dead-lettered, record indices kept, a second load a no-op."""
    from consumers import bulk
    from consumers.avrofile import split_blocks
    from consumers.migrations import migrate
    from consumers.sink import Sink
    from tests.test_bulk_load import _container

    monkeypatch.setattr(bulk, "_REQUEST_BYTES", request_bytes)  # 1: every block in a request of its own
    a, c = events(10), events(40, start=10)
    pa, pc = _container(tmp_path / "a.avro", a), _container(tmp_path / "c.avro", c)
    data = bytearray(pc.read_bytes())
    _header_end, _sync, blocks = split_blocks(memoryview(bytes(data)))
    start, end, count = blocks[1]
    data[start + 6 : end - 16] = b"\xff" * (end - 16 - start - 6)  # the records, not the block's framing
    pc.write_bytes(bytes(data))
    with opened_store(Settings(clickhouse_url=url), role="writer") as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            first = list(bulk.load_files(sink, [pa, pc], tmp_path))
            again = list(bulk.load_files(sink, [pa, pc], tmp_path))
        finally:
            sink.close()
        offsets = {
            str(i): (str(t), int(o)) for i, t, o in store.query("SELECT event_id, _topic, _offset FROM events").rows
        }
        staging = store.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE '\\_staging\\_%'"
        ).scalar()
    bad = blocks[0][2]  # index of the corrupt block's first record
    assert [(x.result.stored, [(d.kind, d.offset) for d in x.result.dead]) for x in first] == [
        (len(a), []),
        (len(c) - count, [("undecodable", bad)]),
    ]
    assert [(x.result.stored, x.result.duplicates) for x in again] == [(0, len(a)), (0, len(c) - count)]
    expected = {str(e.event_id): ("file:a.avro", i) for i, e in enumerate(a)}
    expected |= {str(e.event_id): ("file:c.avro", i) for i, e in enumerate(c) if not bad <= i < bad + count}
    assert offsets == expected
    assert staging == 0


def test_staging_tables_of_gone_loaders_are_dropped_and_live_ones_renewed(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader killed with kill -9 leaves its staging table; loaders starting later drop it once its lease ran out."""
    from consumers import sink as sink_module
    from consumers.migrations import migrate
    from consumers.sink import Sink

    def staging(store: object) -> set[str]:
        rows = store.query(  # type: ignore[attr-defined]
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '_staging_')"
        ).rows
        return {str(r[0]) for r in rows}

    with opened_store(Settings(clickhouse_url=url), role="writer") as store:
        migrate(store)
        store.command("CREATE TABLE _staging_0123456789ab AS events ENGINE = Memory")  # a dead loader's
        live = Sink(store)  # starts within the dead one's lease: leaves it alone
        assert staging(store) == {"_staging_0123456789ab", live.staging}
        time.sleep(2.1)  # metadata times are whole seconds
        monkeypatch.setattr(sink_module, "STAGING_STALE_S", 1)
        monkeypatch.setattr(sink_module, "STAGING_LEASE_S", 0)
        live.truncate()  # a batch: the live loader renews its lease
        newcomer = Sink(store)
        assert staging(store) == {live.staging, newcomer.staging}
        newcomer.close()
        store.command(f"DROP TABLE {live.staging}")  # dropped as stale by someone while it idled
        live.truncate()  # the next batch recreates it
        assert staging(store) == {live.staging}
        live.close()
        assert staging(store) == set()


def _comparable(output: str) -> object:
    """A command's JSON output without what names the store or the time it ran."""
    data = json.loads(output)
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k not in ("computed_on", "store", "source")}
    return data


def _inspect(command: tuple[str, ...], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _ok(dossier(*command, env=env), 0, 3)  # 3: findings


def test_load_twice_and_inspect_agree_with_the_embedded_store(url: str, tmp_path: Path) -> None:
    evs = events(40)
    container = write_container(tmp_path / "events.avro", evs, codec="deflate")
    server = {"DOSSIER_DATA_DIR": str(tmp_path / "data"), "DOSSIER_CLICKHOUSE_URL": url}
    embedded = {"DOSSIER_DATA_DIR": str(tmp_path / "embedded")}  # the same file, to compare answers

    def load_twice_on_server() -> list[dict[str, object]]:
        _ok(dossier("consume", "migrate", env=server))
        return [
            json.loads(_ok(dossier("consume", "load", str(container), "--format", "json", env=server)).stdout)[0]
            for _ in range(2)
        ]

    def load_embedded() -> None:
        _ok(dossier("consume", "migrate", env=embedded))
        _ok(dossier("consume", "load", str(container), env=embedded))

    with ThreadPoolExecutor(2) as pool:  # CLI start-up dominates: run the two modes side by side
        on_server, on_embedded = pool.submit(load_twice_on_server), pool.submit(load_embedded)
        first, again = on_server.result()
        on_embedded.result()
        assert (first["stored"], first["dead_letters"]) == (len(evs), 0)
        assert (again["stored"], again["duplicates"], again["dead_letters"]) == (0, len(evs), 0)
        assert _content(url) == (len(evs), len(evs), 0, 0)
        commands = [
            ("inspect", "replay", evs[0].dossier_id, "--known-at", "2024-01-15T08:00", "--format", "json"),
            ("inspect", "audit", "--format", "json"),
            ("inspect", "verify", "--format", "json"),
            (
                "inspect",
                "sql",
                "SELECT dossier_id, count() AS n, max(occurred_at) AS last FROM events "
                "GROUP BY dossier_id ORDER BY dossier_id LIMIT 3",
                "--format",
                "json",
            ),
        ]
        answers = {
            (command, mode): pool.submit(_inspect, command, env)
            for command in commands
            for mode, env in (("server", server), ("embedded", embedded))
        }
        for command in commands:
            server_answer, embedded_answer = answers[command, "server"].result(), answers[command, "embedded"].result()
            assert server_answer.returncode == embedded_answer.returncode, command
            assert _comparable(server_answer.stdout) == _comparable(embedded_answer.stdout), command
        # the full verify went on the server's integrity ledger, through a writing client of its own
        ledger_note = json.loads(answers[commands[2], "server"].result().stdout)["computed_on"]["ledger"]
        assert ledger_note.startswith("recorded run "), ledger_note
        audited = json.loads(_inspect(("inspect", "audit", "INTEGRITY-HASH", "--format", "json"), server).stdout)
        assert audited["computed_on"]["integrity"]["hashes"].startswith("recomputed for 0 of "), audited


def _watch(proc: subprocess.Popen[str], assigned: threading.Event, lines: list[str]) -> threading.Thread:
    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "assigned partitions [" in line and "assigned partitions []" not in line:
                assigned.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_two_loader_processes_share_the_partitions(broker: BrokerHandle, topic: str, url: str, tmp_path: Path) -> None:
    """Several consumer processes in one group, one store: what the embedded store cannot do."""
    env = _env(tmp_path, url, broker.bootstrap, topic)
    _ok(dossier("consume", "migrate", env=env))
    ensure_topic(broker.bootstrap, topic, 6)
    evs = events(300)
    messages = keyed(evs)
    args = ("consume", "run", "--group", f"g-{topic}", "--max-events", "400", "--max-wait", "0.2")
    procs = [spawn(*args, "--stop-when-idle", "4", "--format", "json", env=env) for _ in range(2)]
    assigned = [threading.Event(), threading.Event()]
    logs: list[list[str]] = [[], []]
    try:
        readers = [_watch(p, assigned[i], logs[i]) for i, p in enumerate(procs)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(a.is_set() for a in assigned):
            time.sleep(0.2)
        assert all(a.is_set() for a in assigned), "".join(logs[0] + logs[1])[-4000:]
        publish(broker.bootstrap, topic, messages[: len(messages) // 2])
        publish(broker.bootstrap, topic, messages[len(messages) // 2 :])
        outs = []
        for proc in procs:  # stderr is the watcher's to read: communicate() would close it under the watcher
            proc.wait(timeout=90)
            assert proc.stdout is not None
            outs.append(proc.stdout.read())
        for reader in readers:
            reader.join(timeout=10)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], "".join(logs[0] + logs[1])[-4000:]
    stored = [json.loads(out)[0]["stored"] for out in outs]
    assert all(n > 0 for n in stored), stored  # both processes stored batches
    assert sum(stored) == len(evs)
    assert _content(url) == (len(evs), len(evs), 0, 0)
    with opened_store(Settings(clickhouse_url=url)) as store:
        partitions = store.query("SELECT count(DISTINCT _partition) FROM events").scalar()
        staging = store.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '\\_staging\\_%'"
        )
    assert partitions == 6
    assert staging.rows == []  # each loader dropped its staging table on the way out


@pytest.mark.slow
def test_kill_9_then_restart_stores_every_event_once(
    broker: BrokerHandle, topic: str, url: str, tmp_path: Path
) -> None:
    env = _env(tmp_path, url, broker.bootstrap, topic)
    _ok(dossier("consume", "migrate", env=env))
    evs = events(500)
    publish(broker.bootstrap, topic, keyed(evs))
    proc = spawn("consume", "run", "--max-events", "300", "--max-wait", "0.2", env=env)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and not stored:
            time.sleep(0.2)
            stored = _content(url)[0]
    finally:
        proc.kill()  # mid-load: batches in flight, offsets of stored batches maybe not committed
        proc.wait(timeout=30)
    assert 0 < stored < len(evs)
    _ok(dossier("consume", "run", "--stop-when-idle", "3", env=env))
    assert _content(url) == (len(evs), len(evs), 0, 0)
