"""Shared fixtures: the real embedded broker (Tansu) on a free loopback port, unique topics."""

from __future__ import annotations

import compileall
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dossier_runtime import sqlparser
from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker

ROOT = Path(__file__).resolve().parent.parent
# The packages whose commands the tests start as processes, a few thousand of them.
PACKAGES = ("schemas", "dossier_runtime", "dossier_audit", "producers", "consumers", "inspection", "bench")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the project's modules once, before the workers start.

    A process started with PYTHONDONTWRITEBYTECODE (as CI sets it) compiles every project module it imports and
    keeps nothing, so each of the suite's command processes would compile them again: about 0.13 s a process on
    this project's 30,000 lines. `compileall` writes the bytecode whatever that variable says, and a process
    reads bytecode that is there either way.
    """
    if hasattr(session.config, "workerinput"):
        return
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=2)


@pytest.fixture(scope="module", autouse=True)
def _parse_session_ends_with_its_module() -> Iterator[None]:
    """Close this worker's parse-only chDB session (`dossier_runtime.sqlparser`) when a test module ends.

    chDB holds one engine path per process, and the console's parse session holds ``:memory:``. A worker that
    ran a few of the console's tests would otherwise keep it open into the next module, where a test opening
    chDB at a path of its own is refused ("EmbeddedServer already initialized with path ':memory:'"), depending
    on how xdist happened to share the tests out.
    """
    yield
    sqlparser.release()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One Tansu broker per test session (per xdist worker); tests use their own topics."""
    handle = start_broker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    yield handle
    stop_broker(handle)


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
