"""DOSSIER_CLICKHOUSE_URL and the connection to a server: any password, one sentence for every failure, no hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from dossier_audit.cli import main
from dossier_runtime.errors import SettingsError, StoreError
from dossier_runtime.settings import Settings, clickhouse_server, redact_url
from dossier_runtime.store import opened_store
from tests import chserver

PASSWORD = "p@ss:w/rd#1%"
DOSSIER = [sys.executable, "-m", "dossier_audit"]


def test_user_and_password_are_percent_decoded() -> None:
    url = f"https://{quote('ops@team', safe='')}:{quote(PASSWORD, safe='')}@ch.example:8443/audit"
    assert url == "https://ops%40team:p%40ss%3Aw%2Frd%231%25@ch.example:8443/audit"
    server = clickhouse_server(url)
    assert (server.username, server.password, server.host, server.port, server.database, server.secure) == (
        "ops@team",
        PASSWORD,
        "ch.example",
        8443,
        "audit",
        True,
    )
    assert PASSWORD not in repr(server) and server.location == "https://ops@team@ch.example:8443/audit"
    assert clickhouse_server("http://h/").port == 8123 and clickhouse_server("http://h/").database == "default"
    separate = clickhouse_server("http://h:8123/db", user="dossier", password=PASSWORD)
    assert (separate.username, separate.password) == ("dossier", PASSWORD)
    assert redact_url(f"http://u:{PASSWORD}@h:8123/db") == "http://u:***@h:8123/db"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"http://dossier:{PASSWORD}@localhost:8123/dossier", "host or port cannot be read"),
        ("http://dossier:1#x@localhost:8123/dossier", "? or #"),
        ("http://dossier:ab%zz@localhost:8123/dossier", "does not start a %XX escape"),
        ("http://dossier:12/x@@localhost:8123/dossier", "path must be the database name alone"),
        ("localhost:8123", "must start with http:// or https://"),
        ("ftp://localhost/dossier", "must start with http:// or https://"),
        ("http://localhost:0/dossier", "from 1 to 65535"),
        ("http://localhost:99999/dossier", "from 1 to 65535"),
        ("http:///dossier", "names no host"),
    ],
)
def test_a_malformed_url_is_one_sentence_and_exit_2_without_the_password(url: str, why: str) -> None:
    with pytest.raises(SettingsError, match=why.replace("?", r"\?")):
        Settings(clickhouse_url=url)
    result = CliRunner().invoke(main, ["consume", "status"], env={"DOSSIER_CLICKHOUSE_URL": url})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    for secret in ("1#x", "ab%zz", "12/x", "ss:w"):
        assert secret not in result.output


def test_login_given_twice_or_without_a_server_is_refused() -> None:
    with pytest.raises(SettingsError, match="has a password and DOSSIER_CLICKHOUSE_PASSWORD is set too"):
        Settings(clickhouse_url="http://u:p@h:8123/db", clickhouse_password="q")
    with pytest.raises(SettingsError, match="DOSSIER_CLICKHOUSE_PASSWORD is set but DOSSIER_CLICKHOUSE_URL is unset"):
        Settings(clickhouse_password=PASSWORD)
    assert PASSWORD not in repr(Settings(clickhouse_url="http://h:8123/db", clickhouse_password=PASSWORD))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a wrong port, a stuck proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [*DOSSIER, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done, time.monotonic() - started


def test_a_port_that_never_answers_ends_within_the_connect_timeout(silent_port: int, tmp_path: Path) -> None:
    env = {"DOSSIER_DATA_DIR": str(tmp_path), "DOSSIER_CLICKHOUSE_URL": f"http://u:secret@127.0.0.1:{silent_port}/db"}
    done, took = _cli(env, "consume", "status")
    assert done.returncode == 1, done.stderr
    assert 9 < took < 18, took  # one 10 s handshake: not retried, not 300 s
    assert done.stderr == (
        f"Error: ClickHouse at 127.0.0.1:{silent_port} accepted the connection but did not answer within 10 s; "
        "check that DOSSIER_CLICKHOUSE_URL names ClickHouse's HTTP port (8123, or 8443 for https)\n"
    )
    assert "secret" not in done.stdout + done.stderr


def test_a_closed_port_is_one_sentence_at_once(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    done, took = _cli({"DOSSIER_CLICKHOUSE_URL": f"http://127.0.0.1:{port}/db"}, "consume", "status")
    assert done.returncode == 1 and took < 10
    assert done.stderr.startswith(f"Error: cannot reach ClickHouse at 127.0.0.1:{port}: Connection refused")
    assert done.stderr.count("\n") == 1 and "Unexpected Http Driver" not in done.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chserver.ChServer]:
    handle = chserver.start(tmp_path_factory.mktemp("chserver") / "data", user="ops@team", password=PASSWORD)
    yield handle
    handle.stop()


def test_a_password_of_any_characters_works_encoded_or_apart(server: chserver.ChServer) -> None:
    encoded = f"http://{quote(server.user, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/default"
    apart = Settings(
        clickhouse_url=f"http://127.0.0.1:{server.port}/default",
        clickhouse_user=server.user,
        clickhouse_password=PASSWORD,
    )
    for settings in (Settings(clickhouse_url=encoded), apart):
        with opened_store(settings) as store:
            assert store.query("SELECT currentUser() != '', 1").rows[0][1] == 1
            assert PASSWORD not in store.location
    wrong = Settings(
        clickhouse_url=f"http://127.0.0.1:{server.port}/default",
        clickhouse_user=server.user,
        clickhouse_password=PASSWORD[:-1],
    )
    with pytest.raises(StoreError, match=f"ClickHouse at 127.0.0.1:{server.port} refused the user name or password"):
        opened_store(wrong).__enter__()


def test_the_cli_reads_the_login_from_its_own_variables(server: chserver.ChServer, tmp_path: Path) -> None:
    env = {
        "DOSSIER_DATA_DIR": str(tmp_path),
        "DOSSIER_CLICKHOUSE_URL": f"http://127.0.0.1:{server.port}/default",
        "DOSSIER_CLICKHOUSE_USER": server.user,
        "DOSSIER_CLICKHOUSE_PASSWORD": PASSWORD,
    }
    done, _ = _cli(env, "consume", "migrate", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"applied now"' in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_a_statement_past_the_read_timeout_is_one_sentence(server: chserver.ChServer) -> None:
    settings = Settings(
        clickhouse_url=f"http://127.0.0.1:{server.port}/default",
        clickhouse_user=server.user,
        clickhouse_password=PASSWORD,
        clickhouse_read_timeout=1,
    )
    with opened_store(settings) as store:
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            store.query("SELECT sleep(2)")
        assert time.monotonic() - started < 2
    assert str(failed.value) == (
        f"ClickHouse at 127.0.0.1:{server.port} did not answer within 1 s (DOSSIER_CLICKHOUSE_READ_TIMEOUT); "
        "check the server, or raise the timeout for longer statements"
    )
    time.sleep(1.5)  # the shim runs one statement at a time: let the sleeping one finish
