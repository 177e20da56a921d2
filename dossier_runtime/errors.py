"""Operational errors of the runtime: each message says what to do next."""

from __future__ import annotations


class RuntimeSetupError(Exception):
    """Something outside the data (broker, store, configuration) is not as it must be."""


class SettingsError(RuntimeSetupError):
    """The configuration contradicts itself or names what is not there; refused before anything connects."""


class BrokerError(RuntimeSetupError):
    """The Kafka broker cannot be started, reached or used."""


class BrokerRefusedError(BrokerError):
    """The broker was reached but refused us (authentication or TLS failed): trying again cannot help."""


class StoreError(RuntimeSetupError):
    """The ClickHouse store cannot be opened, reached or used."""
