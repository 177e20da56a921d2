"""Shared fixtures: the real embedded broker (Tansu) on a free loopback port, unique topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with a ``slow`` test first, each kept whole (its module fixtures are set up once).

    With ``-n 2`` a worker takes tests in collection order: a two-minute test collected late can leave the
    other worker idle at the end. Run first, the long ones overlap, and the short ones fill in behind them.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within each group is kept


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One Tansu broker per test session (per xdist worker); tests use their own topics."""
    handle = start_broker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    yield handle
    stop_broker(handle)


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"
