"""The frozen settings every dossier-audit process runs with.

Only the CLI layer reads the environment (``DOSSIER_*`` variables, through
click's ``envvar=``) and builds a :class:`Settings`; library code receives it.
Secrets (the pseudonym key, Kafka and ClickHouse passwords) are kept out of
``repr`` so they never reach a log line or a traceback.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

DEFAULT_TOPIC: Final = "dossier-events"
DEFAULT_PARTITIONS: Final = 6
DEFAULT_DATA_DIR: Final = Path("dossier-data")

#: Every environment variable the code reads, with what it is for. The README's
#: configuration table and docker-compose.yml are checked against this list.
ENVIRONMENT: Final = {
    "DOSSIER_DATA_DIR": "Directory of the embedded store (chDB) and broker state; default ./dossier-data.",
    "DOSSIER_KAFKA_BOOTSTRAP": "Kafka bootstrap servers (host:port,…); unset = the embedded Tansu broker.",
    "DOSSIER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    "DOSSIER_KAFKA_SASL_MECHANISM": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    "DOSSIER_KAFKA_SASL_USERNAME": "SASL user name.",
    "DOSSIER_KAFKA_SASL_PASSWORD": "SASL password (secret).",
    "DOSSIER_KAFKA_SSL_CAFILE": "CA bundle for SSL connections to Kafka.",
    "DOSSIER_TOPIC": "Topic of dossier events; default dossier-events.",
    "DOSSIER_PARTITIONS": "Partition count the topic is created with; default 6.",
    "DOSSIER_CLICKHOUSE_URL": "http(s)://user:password@host:port/db of a ClickHouse server; unset = embedded chDB.",
    "DOSSIER_CLICKHOUSE_CLUSTER": "ClickHouse cluster (remote_servers name), sharded and replicated; unset = one node.",
    "DOSSIER_PSEUDONYM_KEY": "Secret key of applicant pseudonyms (HMAC); at least 16 bytes.",
    "DOSSIER_WORKING_HOURS": "Working hours, default 07:00-11:30,13:30-17:00.",
}


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclasses.dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = dataclasses.field(default=None, repr=False)
    ssl_cafile: str | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the data lives and how to reach Kafka and ClickHouse."""

    data_dir: Path = DEFAULT_DATA_DIR
    kafka_bootstrap: str | None = None
    kafka_security: KafkaSecurity = KafkaSecurity()
    topic: str = DEFAULT_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    clickhouse_url: str | None = dataclasses.field(default=None, repr=False)
    clickhouse_cluster: str | None = None
    pseudonym_key: bytes | None = dataclasses.field(default=None, repr=False)
    working_hours: str | None = None

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def embedded_clickhouse(self) -> bool:
        return not self.clickhouse_url

    def describe(self) -> dict[str, str]:
        """What a report may say about where its data came from: no secrets."""
        return {
            "kafka": self.kafka_bootstrap or "embedded Tansu broker",
            "topic": self.topic,
            "clickhouse": redact_url(self.clickhouse_url)
            if self.clickhouse_url
            else f"embedded chDB in {self.data_dir}",
        }
