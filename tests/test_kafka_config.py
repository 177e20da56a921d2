"""Kafka client configuration: the same SASL/SSL settings reach kafka-python and librdkafka."""

from __future__ import annotations

from pathlib import Path

from dossier_runtime.kafka import librdkafka_security, make_group_consumer, security_config
from dossier_runtime.settings import KafkaSecurity
from tests.securebroker import make_certificate


def test_sasl_ssl_settings_map_to_both_clients(tmp_path: Path) -> None:
    ca, _ = make_certificate(tmp_path)
    sasl = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "loader", "s3cret", str(ca))
    assert security_config(sasl) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "loader",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": str(ca),
    }
    assert librdkafka_security(sasl) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "loader",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
    }
    assert librdkafka_security(KafkaSecurity()) == {"security.protocol": "PLAINTEXT"}


def test_librdkafka_accepts_the_loader_configuration() -> None:
    """Every property name and value is one librdkafka knows (it refuses unknown ones when the client is made)."""
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "loader", "s3cret", None)
    consumer = make_group_consumer("127.0.0.1:1", "g", security)
    consumer.close()
    assert "s3cret" not in repr(security)  # the password stays out of anything printed
