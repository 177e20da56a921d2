"""Kafka clients with the settings this project relies on.

kafka-python for producers, admin and one-off reads; confluent-kafka
(librdkafka) for the live loader's consumer group, which reads every event
of the stream: librdkafka parses record batches in C at about a fifth of
kafka-python's CPU per record (BENCHMARKS.md), and that CPU is shared with
the store on the same cores.

* Producers: ``acks=all``, idempotence, lz4, and short bootstrap/delivery
  timeouts, so an unreachable broker is a clear error within seconds, not a
  30-second hang (platform.md A-11). Callers must check every send's future:
  ``flush()`` returning says nothing about delivery.
* Consumers: short session/heartbeat settings (a group join takes ~3 s on
  Tansu instead of ~23 s, platform.md A-1), manual commits.
* Topics are created explicitly with their final partition count: Tansu
  auto-creates unknown topics with 4 partitions and cannot add partitions
  later (platform.md A-8).
"""

from __future__ import annotations

from typing import Any, Final

from dossier_runtime.errors import BrokerError
from dossier_runtime.settings import KafkaSecurity

BOOTSTRAP_TIMEOUT_MS: Final = 5_000
DELIVERY_TIMEOUT_MS: Final = 15_000
REQUEST_TIMEOUT_MS: Final = 10_000


#: The SASL/SSL setting names of each client: protocol, mechanism, user, password, CA file.
_KAFKA_PYTHON_NAMES: Final = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "ssl_cafile",
)
_LIBRDKAFKA_NAMES: Final = ("security.protocol", "sasl.mechanisms", "sasl.username", "sasl.password", "ssl.ca.location")


def _security(security: KafkaSecurity, names: tuple[str, str, str, str, str]) -> dict[str, Any]:
    protocol, mechanism, user, password, cafile = names
    config: dict[str, Any] = {protocol: security.protocol}
    if security.sasl_mechanism:
        config[mechanism] = security.sasl_mechanism
        config[user] = security.sasl_username
        config[password] = security.sasl_password
    if security.ssl_cafile:
        config[cafile] = security.ssl_cafile
    return config


def security_config(security: KafkaSecurity) -> dict[str, Any]:
    """kafka-python keyword arguments for SASL/SSL, passed through from configuration."""
    return _security(security, _KAFKA_PYTHON_NAMES)


def librdkafka_security(security: KafkaSecurity) -> dict[str, Any]:
    """The same SASL/SSL configuration in librdkafka's terms."""
    return _security(security, _LIBRDKAFKA_NAMES)


def _unreachable(bootstrap: str, exc: Exception) -> BrokerError:
    return BrokerError(
        f"cannot reach Kafka at {bootstrap} within {BOOTSTRAP_TIMEOUT_MS / 1000:.0f} s ({type(exc).__name__}); "
        "check DOSSIER_KAFKA_BOOTSTRAP, or unset it to use the embedded broker"
    )


def make_producer(bootstrap: str, security: KafkaSecurity | None = None, **overrides: Any) -> Any:
    """An idempotent, acks=all, lz4 producer; raises :class:`BrokerError` when unreachable."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "lz4",
        "linger_ms": 5,
        "batch_size": 512 * 1024,
        "max_request_size": 8 * 1024 * 1024,
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "allow_auto_create_topics": False,
        **security_config(security or KafkaSecurity()),
    }
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from exc


def make_consumer(bootstrap: str, security: KafkaSecurity | None = None, **overrides: Any) -> Any:
    """A consumer with manual commits and short group timeouts."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": 5_000,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
        "request_timeout_ms": 30_000,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "allow_auto_create_topics": False,
        **security_config(security or KafkaSecurity()),
    }
    config.update(overrides)
    try:
        return KafkaConsumer(**config)
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from exc


def make_group_consumer(bootstrap: str, group: str, security: KafkaSecurity | None = None, **overrides: Any) -> Any:
    """A librdkafka consumer in ``group``: manual commits, short group timeouts, bounded prefetch.

    ``overrides`` are librdkafka properties (``on_commit``, ``error_cb``,
    ``logger``, …). Nothing connects until the first call that needs the
    broker; an unreachable one shows as errors through ``error_cb``.
    """
    from confluent_kafka import Consumer

    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6_000,
        "heartbeat.interval.ms": 1_000,
        "allow.auto.create.topics": False,
        "topic.metadata.refresh.interval.ms": 5_000,  # a recreated or vanished topic is seen within seconds
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "queued.max.messages.kbytes": 32 * 1024,  # prefetched, per partition
        # Fetch again 10 ms after the prefetch queue drained below its bounds, not 1 s (the default): with a
        # backlog the queue is always full, and the default capped reading at ~140k messages/s (BENCHMARKS.md).
        "fetch.queue.backoff.ms": 10,
        "socket.timeout.ms": REQUEST_TIMEOUT_MS,
        **librdkafka_security(security or KafkaSecurity()),
    }
    config.update(overrides)
    return Consumer(config)


def make_admin(bootstrap: str, security: KafkaSecurity | None = None) -> Any:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **security_config(security or KafkaSecurity()),
        )
    except KafkaError as exc:
        raise _unreachable(bootstrap, exc) from exc


def ensure_topic(bootstrap: str, topic: str, partitions: int, security: KafkaSecurity | None = None) -> int:
    """Create ``topic`` with ``partitions`` unless it exists; return its partition count.

    An existing topic with a different partition count is reported, because
    keys would hash to other partitions than the loader expects.
    """
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = make_admin(bootstrap, security)
    try:
        if topic not in admin.list_topics():
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
        described = admin.describe_topics([topic])
        count = len(described[0]["partitions"]) if described else 0
    except KafkaError as exc:
        raise BrokerError(f"cannot create or describe topic {topic!r} on {bootstrap}: {exc}") from exc
    finally:
        admin.close()
    if count != partitions:
        raise BrokerError(
            f"topic {topic!r} has {count} partitions, configured {partitions}; "
            "set DOSSIER_PARTITIONS to match or use another DOSSIER_TOPIC"
        )
    return count
