"""The frozen settings every dossier-audit process runs with.

Only the CLI layer reads the environment (``DOSSIER_*`` variables, through
click's ``envvar=``) and builds a :class:`Settings`; library code receives it.
Secrets (the pseudonym key, Kafka and ClickHouse passwords) are kept out of
``repr`` so they never reach a log line or a traceback.

A ClickHouse server's address (``DOSSIER_CLICKHOUSE_URL``, user and password
percent-encoded in it or given in ``DOSSIER_CLICKHOUSE_USER`` and
``DOSSIER_CLICKHOUSE_PASSWORD``) is parsed when the settings are made
(:class:`ClickHouseServer`): a malformed URL is refused there, in a sentence
that quotes no part of it, since a password that was not percent-encoded
spills into whatever part the parser took it for.

Kafka's transport security fails closed: an unknown protocol or mechanism,
credentials that the protocol would not use, a CA file that cannot be read,
or TLS/SASL asked of the embedded broker (plaintext on loopback only) is a
:class:`SettingsError` when the settings are made, before any byte is sent;
the CLI turns it into exit code 2.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import re
import ssl
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus, unquote, urlsplit

from dossier_runtime.errors import SettingsError

DEFAULT_TOPIC: Final = "dossier-events"
DEFAULT_PARTITIONS: Final = 6
DEFAULT_DATA_DIR: Final = Path("dossier-data")
#: Seconds to open a TCP connection to a ClickHouse server, and for its first answer (the handshake).
CLICKHOUSE_CONNECT_TIMEOUT: Final = 10.0
#: Seconds a ClickHouse server may stay silent during a statement, once connected. Not a limit on a query's
#: length: the client asks for progress headers every 10 s while a query runs. It must outlast what sends none:
#: ``ON CLUSTER`` DDL waits up to ``distributed_ddl_task_timeout`` (180 s) for every node.
DEFAULT_CLICKHOUSE_READ_TIMEOUT: Final = 300.0

#: Every environment variable the code reads, with what it is for. The README's
#: configuration table and docker-compose.yml are checked against this list.
ENVIRONMENT: Final = {
    "DOSSIER_DATA_DIR": "Directory of the embedded store (chDB) and broker state; default ./dossier-data.",
    "DOSSIER_KAFKA_BOOTSTRAP": "Kafka bootstrap servers (host:port,…); unset = the embedded Tansu broker.",
    "DOSSIER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL; others refused.",
    "DOSSIER_KAFKA_SASL_MECHANISM": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL protocols only).",
    "DOSSIER_KAFKA_SASL_USERNAME": "SASL user name.",
    "DOSSIER_KAFKA_SASL_PASSWORD": "SASL password (secret).",
    "DOSSIER_KAFKA_SSL_CAFILE": "CA bundle for SSL connections to Kafka.",
    "DOSSIER_TOPIC": "Topic of dossier events; default dossier-events.",
    "DOSSIER_PARTITIONS": "Partition count the topic is created with; default 6.",
    "DOSSIER_CLICKHOUSE_URL": "http(s)://user:password@host:port/db of a ClickHouse server; unset = embedded chDB.",
    "DOSSIER_CLICKHOUSE_USER": "ClickHouse user name, when DOSSIER_CLICKHOUSE_URL has none (any characters).",
    "DOSSIER_CLICKHOUSE_PASSWORD": "ClickHouse password (secret), when DOSSIER_CLICKHOUSE_URL has none.",
    "DOSSIER_CLICKHOUSE_READ_TIMEOUT": "Seconds a ClickHouse server may stay silent during a statement; default 300.",
    "DOSSIER_CLICKHOUSE_CLUSTER": "ClickHouse cluster (remote_servers name), sharded and replicated; unset = one node.",
    "DOSSIER_PSEUDONYM_KEY": "Secret key of applicant pseudonyms (HMAC); at least 16 bytes.",
    "DOSSIER_WORKING_HOURS": "Working hours, default 07:00-11:30,13:30-17:00.",
    "DOSSIER_SIGNING_KEY": "Ed25519 private key file (PEM) that signs digests (`dossier keys new`); never printed.",
    "DOSSIER_INSPECTOR": "Who runs `dossier inspect` commands, for the store's access log; default the OS user.",
}


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs).

    Everything between the first ``:`` of the user information and the last ``@`` goes, so a password that
    holds ``@`` or ``/`` unencoded is hidden too (at worst a little more than the password is).
    """
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0 or ":" not in rest[:at]:
        return url
    return f"{scheme}://{rest[: rest.index(':')]}:***@{rest[at + 1 :]}"


_URL_FORM: Final = "http(s)://user:password@host:port/database"
_URL_ADVICE: Final = (
    "percent-encode @ : / ? # % in the user name and password (p@ss becomes p%40ss), or give them in "
    "DOSSIER_CLICKHOUSE_USER and DOSSIER_CLICKHOUSE_PASSWORD"
)
_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclasses.dataclass(frozen=True)
class ClickHouseServer:
    """Where a ClickHouse server is and who connects: ``DOSSIER_CLICKHOUSE_URL`` taken apart."""

    secure: bool
    host: str
    port: int
    database: str
    username: str
    password: str = dataclasses.field(repr=False)
    connect_timeout: float = CLICKHOUSE_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_CLICKHOUSE_READ_TIMEOUT

    @property
    def address(self) -> str:
        """``host:port``, what every message about the server names."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def location(self) -> str:
        """The server as a URL without the password (reports say where their data came from)."""
        return f"{'https' if self.secure else 'http'}://{self.username}@{self.address}/{self.database}"

    def redact(self, text: str) -> str:
        """``text`` with the password replaced by ``***`` in every form a request carries it.

        A server, or a proxy before it, may repeat the request in its error (the Authorization header's base64
        of ``user:password``, a ``password=`` parameter), and the error is what a command prints.
        """
        if not self.password:
            return text
        login = f"{self.username}:{self.password}".encode()
        forms = {self.password, quote(self.password, safe=""), quote_plus(self.password)}
        forms |= {base64.b64encode(login).decode(), base64.b64encode(self.password.encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def _url_refused(what: str, *, advice: str = _URL_ADVICE) -> SettingsError:
    return SettingsError(f"DOSSIER_CLICKHOUSE_URL is not a ClickHouse URL ({_URL_FORM}): {what}; {advice}")


def clickhouse_server(
    url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    read_timeout: float = DEFAULT_CLICKHOUSE_READ_TIMEOUT,
) -> ClickHouseServer:
    """``url`` taken apart, user and password percent-decoded; ``user``/``password`` fill in what it lacks.

    Raises :class:`SettingsError` for a malformed URL, never quoting it: the parts a parser would name are
    where an unencoded password ends up.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise _url_refused("its host or port cannot be read (the port must be a number from 1 to 65535)") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _url_refused("it must start with http:// or https://", advice="for example http://localhost:8123/dossier")
    if not parts.hostname:
        raise _url_refused("it names no host")
    if port == 0:
        raise _url_refused("its port must be a number from 1 to 65535")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _url_refused("it has a ? or # part, which a ClickHouse URL does not take")
    database = parts.path.strip("/")
    if "/" in database or "@" in database:
        raise _url_refused("its path must be the database name alone")
    for field, given, variable in (
        ("user name", parts.username, "DOSSIER_CLICKHOUSE_USER"),
        ("password", parts.password, "DOSSIER_CLICKHOUSE_PASSWORD"),
    ):
        if given is not None and _PERCENT.search(given):
            raise _url_refused(f"its {field} has a % that does not start a %XX escape (write % as %25)")
        if given and (user if field == "user name" else password) is not None:
            raise SettingsError(
                f"DOSSIER_CLICKHOUSE_URL has a {field} and {variable} is set too; give it in one place only"
            )
    secure = parts.scheme.lower() == "https"
    return ClickHouseServer(
        secure=secure,
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        database=unquote(database) or "default",
        username=user if user is not None else unquote(parts.username or "") or "default",
        password=password if password is not None else unquote(parts.password or ""),
        read_timeout=read_timeout,
    )


#: What DOSSIER_KAFKA_SECURITY_PROTOCOL and DOSSIER_KAFKA_SASL_MECHANISM accept (in any letter case).
#: OAUTHBEARER and GSSAPI need a token provider or Kerberos set-up that these settings cannot express.
PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SASL_VARIABLES: Final = {
    "sasl_mechanism": "DOSSIER_KAFKA_SASL_MECHANISM",
    "sasl_username": "DOSSIER_KAFKA_SASL_USERNAME",
    "sasl_password": "DOSSIER_KAFKA_SASL_PASSWORD",
}


@dataclasses.dataclass(frozen=True)
class KafkaSecurity:
    """How the Kafka clients authenticate and encrypt; checked for consistency when made.

    Protocol and mechanism are normalised to upper case (``ssl`` is ``SSL``,
    as Kafka's own clients read it). Messages name variables and values,
    never the password.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = dataclasses.field(default=None, repr=False)
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        protocol = self.protocol.strip().upper()
        if protocol not in PROTOCOLS:
            raise SettingsError(
                f"DOSSIER_KAFKA_SECURITY_PROTOCOL is {self.protocol!r}; accepted values: {', '.join(PROTOCOLS)}"
            )
        object.__setattr__(self, "protocol", protocol)
        if self.sasl_mechanism is not None:
            mechanism = self.sasl_mechanism.strip().upper()
            if mechanism not in MECHANISMS:
                raise SettingsError(
                    f"DOSSIER_KAFKA_SASL_MECHANISM is {self.sasl_mechanism!r}; accepted values: "
                    f"{', '.join(MECHANISMS)} (OAUTHBEARER and GSSAPI cannot be configured here)"
                )
            object.__setattr__(self, "sasl_mechanism", mechanism)
        if self.sasl:
            self._check_sasl()
        else:
            unused = [name for field, name in _SASL_VARIABLES.items() if getattr(self, field) is not None]
            if unused:
                raise SettingsError(
                    f"{' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} set but "
                    f"DOSSIER_KAFKA_SECURITY_PROTOCOL is {protocol}, which would not use "
                    f"{'it' if len(unused) == 1 else 'them'}; set DOSSIER_KAFKA_SECURITY_PROTOCOL to SASL_PLAINTEXT "
                    "or SASL_SSL, or unset them"
                )
        if self.ssl_cafile is not None:
            if not self.tls:
                raise SettingsError(
                    f"DOSSIER_KAFKA_SSL_CAFILE is set but DOSSIER_KAFKA_SECURITY_PROTOCOL is {protocol}, which "
                    "does not use TLS; set DOSSIER_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL, or unset "
                    "DOSSIER_KAFKA_SSL_CAFILE"
                )
            _check_cafile(self.ssl_cafile)

    def _check_sasl(self) -> None:
        if self.sasl_mechanism is None:
            raise SettingsError(
                f"DOSSIER_KAFKA_SECURITY_PROTOCOL is {self.protocol} but DOSSIER_KAFKA_SASL_MECHANISM is unset; "
                f"accepted values: {', '.join(MECHANISMS)}"
            )
        missing = [
            name for field, name in _SASL_VARIABLES.items() if field != "sasl_mechanism" and not getattr(self, field)
        ]
        if missing:
            raise SettingsError(
                f"DOSSIER_KAFKA_SECURITY_PROTOCOL is {self.protocol} but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} unset; SASL needs both the user name and the password"
            )

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def _check_cafile(path: str) -> None:
    """The CA file is a readable file with at least one PEM certificate (what both Kafka clients load)."""
    advice = "give the PEM file of the CA certificates that signed the brokers' certificates"
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise SettingsError(f"DOSSIER_KAFKA_SSL_CAFILE is {path!r}, which {what}; {advice}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise SettingsError(
            f"DOSSIER_KAFKA_SSL_CAFILE is {path!r}, which holds no PEM certificate ({exc.reason}); {advice}"
        ) from exc
    except OSError as exc:
        raise SettingsError(
            f"DOSSIER_KAFKA_SSL_CAFILE is {path!r}, which cannot be read ({exc.strerror}); {advice}"
        ) from exc


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the data lives and how to reach Kafka and ClickHouse."""

    data_dir: Path = DEFAULT_DATA_DIR
    kafka_bootstrap: str | None = None
    kafka_security: KafkaSecurity = KafkaSecurity()
    topic: str = DEFAULT_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    clickhouse_url: str | None = dataclasses.field(default=None, repr=False)
    clickhouse_user: str | None = None
    clickhouse_password: str | None = dataclasses.field(default=None, repr=False)
    clickhouse_read_timeout: float = DEFAULT_CLICKHOUSE_READ_TIMEOUT
    clickhouse_cluster: str | None = None
    pseudonym_key: bytes | None = dataclasses.field(default=None, repr=False)
    working_hours: str | None = None
    inspector: str | None = None  # recorded in the access log; None = the OS user

    def __post_init__(self) -> None:
        if self.embedded_kafka and self.kafka_security.protocol != "PLAINTEXT":
            raise SettingsError(
                f"DOSSIER_KAFKA_SECURITY_PROTOCOL is {self.kafka_security.protocol} but DOSSIER_KAFKA_BOOTSTRAP is "
                "unset, and the embedded broker speaks PLAINTEXT on loopback only; set DOSSIER_KAFKA_BOOTSTRAP to "
                "your cluster, or unset DOSSIER_KAFKA_SECURITY_PROTOCOL and the SASL/SSL variables"
            )
        if self.clickhouse_url:
            _ = self.clickhouse_server  # a malformed URL is refused now, before anything connects
        else:
            unused = [
                name
                for name, value in (
                    ("DOSSIER_CLICKHOUSE_USER", self.clickhouse_user),
                    ("DOSSIER_CLICKHOUSE_PASSWORD", self.clickhouse_password),
                )
                if value is not None
            ]
            if unused:
                raise SettingsError(
                    f"{' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} set but DOSSIER_CLICKHOUSE_URL "
                    "is unset, and the embedded store takes no login; set DOSSIER_CLICKHOUSE_URL to your server "
                    f"(http(s)://host:port/database), or unset {'it' if len(unused) == 1 else 'them'}"
                )

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def embedded_clickhouse(self) -> bool:
        return not self.clickhouse_url

    @functools.cached_property
    def clickhouse_server(self) -> ClickHouseServer | None:
        """The ClickHouse server to use, or None for the embedded store."""
        if not self.clickhouse_url:
            return None
        return clickhouse_server(
            self.clickhouse_url,
            user=self.clickhouse_user,
            password=self.clickhouse_password,
            read_timeout=self.clickhouse_read_timeout,
        )

    def describe(self) -> dict[str, str]:
        """What a report may say about where its data came from: no secrets."""
        return {
            "kafka": self.kafka_bootstrap or "embedded Tansu broker",
            "topic": self.topic,
            "clickhouse": self.clickhouse_server.location
            if self.clickhouse_server
            else f"embedded chDB in {self.data_dir}",
        }
