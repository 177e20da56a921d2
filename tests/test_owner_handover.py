"""A reader whose owner goes away mid-command goes on: the owner hands the embedded store over.

Two inspectors' commands on one embedded store: the first opens it and serves it, the second reads through the
first's endpoint. When the first finishes, the second must neither fail nor record anything twice. Closing, the
owner removes its endpoint file, answers every request it accepted (waiting up to 30 s), and answers 503 "closing"
to connections it had not yet accepted; the reader then opens the store itself and sends again what surely did
not run. A write whose fate is unknown (the connection dropped after it was sent) is not sent again: it fails,
saying so.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dossier_runtime import storeserver
from dossier_runtime.accessrecord import GENESIS, Access, AccessLogError
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, lock_holder, open_store, opened_store, store_path
from dossier_runtime.storebackends import EndpointBackend, OwnerGoneError
from dossier_runtime.storeserver import read_endpoint
from inspection import accesslog
from tests.test_access_log import data  # noqa: F401  (the fixture: a hand-written history, loaded)

HOLDER = """
import sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])))
print(store.kind, flush=True)
sys.stdin.readline()
store.close()
print("closed", flush=True)
sys.stdin.readline()
"""


def _access(who: str) -> Access:
    return Access(datetime.now(UTC), who, "dossier inspect sql", "{}", 0, 1, GENESIS, "endpoint")


@pytest.fixture
def holder(data: Path) -> Iterator[subprocess.Popen[str]]:  # noqa: F811
    """Another reading command that opened the store first, and so serves it, until told to close it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "embedded"
    try:
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=60)


def test_a_reader_goes_on_when_its_owner_closes(data: Path, holder: subprocess.Popen[str]) -> None:  # noqa: F811
    assert holder.stdin is not None and holder.stdout is not None
    with opened_store(Settings(data_dir=data)) as store:
        assert store.kind == "endpoint"
        count = store.query("SELECT count() FROM events").scalar()
        first = store.record_access(_access("before"))
        holder.stdin.write("close\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        assert read_endpoint(data) is None  # the owner's endpoint file went with it

        assert store.query("SELECT count() FROM events").scalar() == count  # read again, on the store itself
        assert store.kind == "embedded" and "through" not in store.location
        second = store.record_access(_access("after"))
        assert store.access_refusal() is None
        entries = accesslog.entries(store)
    assert (first.seq, second.seq) == (1, 2)
    assert [e["inspector"] for e in entries] == ["before", "after"] and not accesslog.verify(entries)
    assert lock_holder(store_path(Settings(data_dir=data))) is None  # closed: nothing of the handover is left open


def test_a_closing_owner_runs_nothing_and_says_so(data: Path) -> None:  # noqa: F811
    with opened_store(Settings(data_dir=data), role="writer") as owner:
        record = owner._endpoint
        assert record is not None
        reader = EndpointBackend(record.port, record.server.token, 0, owner.database)
        record.server.closing = True  # as between its accept loop's end and its socket's close
        with pytest.raises(OwnerGoneError, match="is closing it") as refused:
            reader.record_access(_access("late").to_json())
        assert refused.value.ran is False
        record.server.closing = False
        assert accesslog.entries(owner) == []  # the access the closing owner refused is not on the log


class _Dropper:
    """A loopback 'owner' that reads each request and drops the connection without an answer."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.requests.append(conn.recv(65536))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, as at a crash
            conn.close()


def test_a_write_whose_fate_is_unknown_is_not_sent_again(data: Path) -> None:  # noqa: F811
    dropper = _Dropper()
    reopened: list[Store] = []

    def reopen() -> Store:
        reopened.append(open_store(Settings(data_dir=data), serve=False))
        return reopened[-1]

    store = Store(EndpointBackend(dropper.port, "token", 0, "dossier"), role="reader", location="x", reopen=reopen)
    try:
        with pytest.raises(AccessLogError, match="stopped answering"):
            store.record_access(_access("maybe-recorded"))
        assert reopened == [] and len(dropper.requests) == 1  # sent once, not again elsewhere
        assert store.query("SELECT count() FROM events").scalar() > 0  # a read goes again, on the store itself
        assert len(reopened) == 1 and store.kind == "embedded"
        assert accesslog.entries(store) == []
    finally:
        store.close()
        dropper.sock.close()


def test_an_owner_holding_many_files_still_hands_over(data: Path) -> None:  # noqa: F811
    """A process with descriptors past 1024 (a long test run, a busy loader) closes its endpoint all the same."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with opened_store(Settings(data_dir=data)) as owner:
            assert owner._endpoint is not None and owner._endpoint.server.fileno() > 1024
        assert read_endpoint(data) is None and lock_holder(store_path(Settings(data_dir=data))) is None
        with opened_store(Settings(data_dir=data), serve=False) as again:  # nothing of the first is left open
            assert again.kind == "embedded"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_that_sends_nothing_does_not_hold_the_owner(
    data: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closing waits for every accepted request; one that never comes is dropped after the handler's timeout."""
    monkeypatch.setattr(storeserver._Handler, "timeout", 1)
    owner = open_store(Settings(data_dir=data))
    assert owner._endpoint is not None
    silent = socket.create_connection(("127.0.0.1", owner._endpoint.port))
    try:
        time.sleep(0.2)  # accepted by now: a handler waits for its request line
        closing = threading.Thread(target=owner.close, daemon=True)
        closing.start()
        closing.join(10)
        assert not closing.is_alive(), "the owner is still waiting for a request that never comes"
        assert silent.recv(1) == b""  # dropped, not answered
    finally:
        silent.close()
        owner.close()


def test_a_request_under_way_is_answered_before_the_owner_closes(data: Path) -> None:  # noqa: F811
    owner = open_store(Settings(data_dir=data))
    try:
        assert owner._endpoint is not None
        reader = EndpointBackend(owner._endpoint.port, owner._endpoint.server.token, 0, owner.database)
        answers: list[object] = []
        slow = threading.Thread(
            target=lambda: answers.extend(reader.batches("SELECT sleepEachRow(0.5) FROM numbers(6)", None, None))
        )
        slow.start()
        time.sleep(0.5)  # the query is running on the owner, ~2.5 s from its end
        started = time.monotonic()
        owner.close()
        assert time.monotonic() - started >= 1.5  # it waited for the query (its accept loop stops within 0.5 s)
        slow.join(30)
        assert not slow.is_alive() and sum(batch.num_rows for batch in answers) == 6  # type: ignore[attr-defined]
    finally:
        owner.close()


def test_inspectors_running_commands_at_once_all_get_their_answers(data: Path) -> None:  # noqa: F811
    """Whichever command opens the store serves the others, and finishes first: none of them may fail for it.

    Before the handover, a third of these commands failed ("… stopped answering; run the command again").
    """
    commands = [
        ["inspect", "scorecard", "--format", "json"],
        ["inspect", "replay", "000.00.31.H29-240207-0001", "--format", "json"],
        ["inspect", "verify", "--format", "json"],
    ]
    failed = []
    for _ in range(3):
        running = [
            subprocess.Popen(
                [sys.executable, "-m", "dossier_audit", "--data-dir", str(data), *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        for command, proc in zip(commands, running, strict=True):
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0 or not out.strip():
                failed.append(f"{' '.join(command)}: exit {proc.returncode}: {err[-500:]}")
    assert failed == []
    with opened_store(Settings(data_dir=data)) as store:
        entries = accesslog.entries(store)
    assert len(entries) >= 9 and not accesslog.verify(entries)  # every command on the log, one chain
