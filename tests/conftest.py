"""Shared fixtures: the real embedded broker (Tansu) on a free loopback port, unique topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One Tansu broker per test session (per xdist worker); tests use their own topics."""
    handle = start_broker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    yield handle
    stop_broker(handle)


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
