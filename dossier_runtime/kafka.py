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
* Failures say what failed: "authentication failed for user …", "TLS
  handshake with … failed: …", and "cannot reach" only when no connection
  was made. kafka-python raises nothing but a bootstrap timeout for all of
  them, so the causes it logs while bootstrapping are collected
  (:func:`_logged_failures`); it also waits forever on a TLS handshake that a
  plaintext listener never answers, so TLS is tried once first, with a
  deadline (:func:`_check_tls`). librdkafka reports them through
  ``error_cb``: :func:`client_failure` tells which end the command.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from typing import Any, Final

from dossier_runtime.errors import BrokerError, BrokerRefusedError
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


def _auth_failed(where: str, security: KafkaSecurity, reason: str) -> BrokerRefusedError:
    return BrokerRefusedError(
        f"authentication failed for user {security.sasl_username!r} at {where} with {security.sasl_mechanism} "
        f"({reason}); check DOSSIER_KAFKA_SASL_USERNAME, DOSSIER_KAFKA_SASL_PASSWORD and DOSSIER_KAFKA_SASL_MECHANISM"
    )


def _tls_failed(where: str, reason: str) -> BrokerRefusedError:
    return BrokerRefusedError(
        f"TLS handshake with {where} failed: {reason}; check DOSSIER_KAFKA_SSL_CAFILE and that "
        "DOSSIER_KAFKA_BOOTSTRAP names a TLS listener"
    )


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.failures.extend(arg for arg in args if isinstance(arg, BaseException))


@contextlib.contextmanager
def _logged_failures() -> Iterator[list[BaseException]]:
    """The exceptions kafka-python logs (warnings and errors) while a client is made here."""
    handler = _Collected()
    logger = logging.getLogger("kafka")
    logger.addHandler(handler)
    try:
        yield handler.failures
    finally:
        logger.removeHandler(handler)


#: kafka-python's words for a connection that was made, then closed by the broker.
_CLOSED: Final = re.compile(r"socket disconnected|reset by peer|broken pipe", re.IGNORECASE)


def _not_connected(
    bootstrap: str, security: KafkaSecurity, exc: Exception, failures: list[BaseException]
) -> BrokerError:
    """Why kafka-python could not bootstrap, from what it logged on the way: the first cause that says most."""
    from kafka import errors

    refused = (errors.SaslAuthenticationFailedError, errors.UnsupportedSaslMechanismError, errors.IllegalSaslStateError)
    for failure in failures:
        if isinstance(failure, errors.UnsupportedSaslMechanismError):
            return _auth_failed(bootstrap, security, f"the broker does not offer {security.sasl_mechanism}")
        if isinstance(failure, refused):
            return _auth_failed(bootstrap, security, str(failure))
        if security.sasl and not isinstance(failure, errors.KafkaError):  # the SASL client could not parse the answer
            return _auth_failed(bootstrap, security, "the broker refused the SASL exchange")
    for failure in failures:
        if isinstance(failure, errors.KafkaConnectionError) and str(failure).startswith("Handshake failed: "):
            return _tls_failed(bootstrap, str(failure).removeprefix("Handshake failed: "))
    if any(isinstance(f, errors.KafkaConnectionError) and _CLOSED.search(str(f)) for f in failures):
        sasl = ", or refused the SASL login" if security.sasl else ""
        return BrokerError(
            f"Kafka at {bootstrap} closed every connection before it was ready: its listener expects another "
            f"security protocol than {security.protocol}{sasl}; check DOSSIER_KAFKA_SECURITY_PROTOCOL"
            + (" and DOSSIER_KAFKA_SASL_*" if security.sasl else "")
        )
    return _unreachable(bootstrap, exc)


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return host.strip("[]"), int(port)


def _check_tls(bootstrap: str, security: KafkaSecurity) -> None:
    """One TLS handshake with the first bootstrap server that accepts a connection, within the bootstrap timeout.

    The context is built as kafka-python builds it (TLS 1.2+, host name checked,
    the CA file or the system's CAs). Servers that refuse the connection are left
    to the client, which reports them as unreachable.
    """
    if not security.tls:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if security.ssl_cafile:
        context.load_verify_locations(security.ssl_cafile)
    else:
        context.load_default_certs()
    timeout = BOOTSTRAP_TIMEOUT_MS / 1000
    for server in bootstrap.split(","):
        try:
            host, port = _host_port(server)
            sock = socket.create_connection((host, port), timeout=timeout)
        except (OSError, ValueError):
            continue
        with sock:
            try:
                context.wrap_socket(sock, server_hostname=host).close()
                return
            except ssl.SSLCertVerificationError as exc:
                raise _tls_failed(server.strip(), f"certificate verify failed ({exc.verify_message})") from exc
            except TimeoutError as exc:
                raise _tls_failed(server.strip(), f"no answer within {timeout:.0f} s (not a TLS listener?)") from exc
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
                raise _tls_failed(server.strip(), str(reason)) from exc


def _kafka_python_client(cls: Any, bootstrap: str, security: KafkaSecurity, config: dict[str, Any]) -> Any:
    from kafka.errors import KafkaError

    _check_tls(bootstrap, security)
    with _logged_failures() as failures:
        try:
            return cls(**config)
        except KafkaError as exc:
            raise _not_connected(bootstrap, security, exc, failures) from exc


def client_failure(error: Any, bootstrap: str, security: KafkaSecurity) -> BrokerRefusedError | None:
    """The sentence that ends the command for a librdkafka ``error_cb`` error, None if it may pass.

    A refused login is never transient; a TLS error only ends the command when
    the certificate cannot be verified (a handshake cut by a restarting broker
    is retried by librdkafka).
    """
    from confluent_kafka import KafkaError

    code = error.code() if hasattr(error, "code") else None
    text = error.str() if hasattr(error, "str") else str(error)
    reason = re.sub(r" \(after \d+ms in state \w+\)$", "", text)
    where = bootstrap
    found = re.match(r"^\w+://([^/]+)/[^:]*: (.*)$", reason)
    if found:
        where, reason = found.groups()
    if code == KafkaError._AUTHENTICATION:
        return _auth_failed(where, security, reason.removeprefix("SASL authentication error: "))
    if code == KafkaError._SSL and "certificate verify failed" in reason:
        return _tls_failed(where, "certificate verify failed")
    return None


def make_producer(bootstrap: str, security: KafkaSecurity | None = None, **overrides: Any) -> Any:
    """An idempotent, acks=all, lz4 producer; raises :class:`BrokerError` when unreachable."""
    from kafka import KafkaProducer

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
    return _kafka_python_client(KafkaProducer, bootstrap, security or KafkaSecurity(), config)


def make_consumer(bootstrap: str, security: KafkaSecurity | None = None, **overrides: Any) -> Any:
    """A consumer with manual commits and short group timeouts."""
    from kafka import KafkaConsumer

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
    return _kafka_python_client(KafkaConsumer, bootstrap, security or KafkaSecurity(), config)


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

    security = security or KafkaSecurity()
    config = {
        "bootstrap_servers": bootstrap.split(","),
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        **security_config(security),
    }
    return _kafka_python_client(KafkaAdminClient, bootstrap, security, config)


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
