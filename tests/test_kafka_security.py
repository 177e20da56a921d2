"""Kafka transport security fails closed: bad settings are refused before any byte is sent, and a broker
that refuses us is named for what it did (authentication, TLS), not "cannot reach".

Tansu 0.6 cannot serve TLS and cannot hold a SASL user on memory storage (tests/securebroker.py): TLS runs
through a Python TLS front before a plaintext Tansu, and SASL is tested where it is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from dossier_audit.cli import main
from dossier_runtime.broker import BrokerHandle, free_port
from dossier_runtime.errors import SettingsError
from dossier_runtime.kafka import client_failure, make_admin, make_group_consumer
from dossier_runtime.settings import KafkaSecurity, Settings
from tests.securebroker import SilentListener, make_certificate, tansu, tls_front
from tests.test_consumers_support import dossier
from tests.test_publish_support import full_history, write_jsonl

PASSWORD = "pw-never-printed-4711"
SASL = {
    "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "DOSSIER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "DOSSIER_KAFKA_SASL_USERNAME": "alice",
    "DOSSIER_KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture
def listener() -> Iterator[SilentListener]:
    silent = SilentListener()
    yield silent
    silent.close()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path, "broker")


def invoke(args: list[str], env: dict[str, str]) -> Result:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _refusals(cafile: Path, not_pem: Path) -> list[tuple[dict[str, str], str]]:
    accepted_mechanisms = "accepted values: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
    return [
        (
            {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL_TYPO"},
            "DOSSIER_KAFKA_SECURITY_PROTOCOL is 'SSL_TYPO'; accepted values: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        ({"DOSSIER_KAFKA_SECURITY_PROTOCOL": "BOGUS"}, "DOSSIER_KAFKA_SECURITY_PROTOCOL is 'BOGUS'; accepted values"),
        ({**SASL, "DOSSIER_KAFKA_SASL_MECHANISM": "GSSAPI"}, f"is 'GSSAPI'; {accepted_mechanisms} (OAUTHBEARER"),
        ({**SASL, "DOSSIER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"}, f"is 'SCRAM-SHA-1'; {accepted_mechanisms}"),
        (
            {**SASL, "DOSSIER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
            "DOSSIER_KAFKA_SASL_MECHANISM and DOSSIER_KAFKA_SASL_USERNAME and DOSSIER_KAFKA_SASL_PASSWORD are set "
            "but DOSSIER_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, which would not use them",
        ),
        (
            {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL", "DOSSIER_KAFKA_SASL_PASSWORD": PASSWORD},
            "DOSSIER_KAFKA_SASL_PASSWORD is set but DOSSIER_KAFKA_SECURITY_PROTOCOL is SSL, which would not use it",
        ),
        (
            {**SASL, "DOSSIER_KAFKA_SASL_MECHANISM": ""},
            f"SASL_PLAINTEXT but DOSSIER_KAFKA_SASL_MECHANISM is unset; {accepted_mechanisms}",
        ),
        (
            {**SASL, "DOSSIER_KAFKA_SASL_PASSWORD": ""},
            "SASL_PLAINTEXT but DOSSIER_KAFKA_SASL_PASSWORD is unset; SASL needs both the user name and the password",
        ),
        (
            {**SASL, "DOSSIER_KAFKA_SSL_CAFILE": str(cafile)},
            "DOSSIER_KAFKA_SSL_CAFILE is set but DOSSIER_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT, which does not "
            "use TLS",
        ),
        (
            {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL", "DOSSIER_KAFKA_SSL_CAFILE": str(cafile.parent / "none.pem")},
            "which does not exist; give the PEM file of the CA certificates",
        ),
        (
            {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL", "DOSSIER_KAFKA_SSL_CAFILE": str(not_pem)},
            "which holds no PEM certificate",
        ),
    ]


def test_every_inconsistent_setting_is_refused_with_exit_2_before_any_byte_is_sent(
    tmp_path: Path, cert: tuple[Path, Path], listener: SilentListener
) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    events = write_jsonl(tmp_path / "events.jsonl", full_history())
    for env, sentence in _refusals(cert[0], not_pem):
        env = {"DOSSIER_KAFKA_BOOTSTRAP": listener.bootstrap, "DOSSIER_DATA_DIR": str(tmp_path / "d"), **env}
        for args in (["produce", "publish", str(events)], ["consume", "run"], ["consume", "status"]):
            result = invoke(args, env)
            assert result.exit_code == 2, (args, result.output)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: ") and sentence in lines[0], (env, lines)
            assert PASSWORD not in result.output
    assert listener.connections == 0
    assert not (tmp_path / "d").exists()


def _leaf_commands(group: click.Group, path: list[str]) -> Iterator[list[str]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, [*path, name])
        else:
            yield [*path, name]


def test_every_command_refuses_an_unknown_protocol_and_still_shows_its_help(tmp_path: Path) -> None:
    env = {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL_TYPO", "DOSSIER_DATA_DIR": str(tmp_path / "d")}
    commands = list(_leaf_commands(main, []))
    assert ["calendar", "due"] in commands and ["demo"] in commands
    for args in commands:
        result = invoke(args, env)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("Error: DOSSIER_KAFKA_SECURITY_PROTOCOL is 'SSL_TYPO'"), args
        assert invoke([*args, "--help"], env).exit_code == 0, args
    assert not (tmp_path / "d").exists()


def test_tls_or_sasl_without_a_bootstrap_is_refused_the_embedded_broker_is_plaintext(tmp_path: Path) -> None:
    env = {"DOSSIER_KAFKA_SECURITY_PROTOCOL": "ssl", "DOSSIER_DATA_DIR": str(tmp_path / "d")}
    result = invoke(["consume", "run"], env)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: DOSSIER_KAFKA_SECURITY_PROTOCOL is SSL but DOSSIER_KAFKA_BOOTSTRAP is unset, and the embedded broker "
        "speaks PLAINTEXT on loopback only; set DOSSIER_KAFKA_BOOTSTRAP to your cluster, or unset "
        "DOSSIER_KAFKA_SECURITY_PROTOCOL and the SASL/SSL variables\n"
    )
    assert not (tmp_path / "d").exists()  # no broker started, no store opened


def test_protocol_and_mechanism_are_read_in_any_case_and_the_password_is_never_shown() -> None:
    security = KafkaSecurity(" sasl_plaintext", "scram-sha-256", "alice", PASSWORD)
    assert (security.protocol, security.sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    settings = Settings(kafka_bootstrap="h:9092", kafka_security=security)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.describe())
    with pytest.raises(SettingsError) as refused:
        KafkaSecurity("PLAINTEXT", None, None, PASSWORD)
    assert PASSWORD not in str(refused.value)


def test_publish_and_load_through_tls_with_the_ca_file(tmp_path: Path, topic: str, cert: tuple[Path, Path]) -> None:
    front = free_port()
    events = full_history(1) + full_history(2)
    with tansu(advertised_port=front) as plain, tls_front(front, plain, *cert):
        env = {
            "DOSSIER_DATA_DIR": str(tmp_path / "d"),
            "DOSSIER_KAFKA_BOOTSTRAP": f"127.0.0.1:{front}",
            "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL",
            "DOSSIER_KAFKA_SSL_CAFILE": str(cert[0]),
            "DOSSIER_TOPIC": topic,
            "DOSSIER_PARTITIONS": "2",
        }
        published = invoke(["produce", "publish", str(write_jsonl(tmp_path / "e.jsonl", events)), "--format=json"], env)
        assert published.exit_code == 0, published.output
        assert json.loads(published.stdout)["delivered"] == len(events)
        loaded = dossier("consume", "run", "--stop-when-idle", "2", "--format", "json", env=env)
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout)[0]["stored"] == len(events)


def test_a_certificate_signed_by_another_ca_is_a_tls_sentence_and_nothing_is_delivered(
    tmp_path: Path, topic: str, cert: tuple[Path, Path]
) -> None:
    other_ca, _ = make_certificate(tmp_path, "other")
    front = free_port()
    with tansu(advertised_port=front) as plain, tls_front(front, plain, *cert):
        env = {
            "DOSSIER_KAFKA_BOOTSTRAP": f"127.0.0.1:{front}",
            "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL",
            "DOSSIER_KAFKA_SSL_CAFILE": str(other_ca),
            "DOSSIER_TOPIC": topic,
        }
        result = invoke(["produce", "publish", str(write_jsonl(tmp_path / "e.jsonl", full_history()))], env)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: TLS handshake with 127.0.0.1:{front} failed: certificate verify failed (self-signed certificate); "
            "check DOSSIER_KAFKA_SSL_CAFILE and that DOSSIER_KAFKA_BOOTSTRAP names a TLS listener; "
            "nothing was published\n"
        )
        admin = make_admin(f"127.0.0.1:{front}", KafkaSecurity("SSL", ssl_cafile=str(cert[0])))
        try:
            assert topic not in admin.list_topics()  # not even the topic was created
        finally:
            admin.close()


def test_tls_to_a_listener_that_never_answers_fails_within_seconds(
    tmp_path: Path, cert: tuple[Path, Path], listener: SilentListener
) -> None:
    """kafka-python alone would wait forever for the handshake; the check before it has a deadline."""
    env = {
        "DOSSIER_KAFKA_BOOTSTRAP": listener.bootstrap,
        "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SSL",
        "DOSSIER_KAFKA_SSL_CAFILE": str(cert[0]),
    }
    started = time.monotonic()
    result = invoke(["produce", "publish", str(write_jsonl(tmp_path / "e.jsonl", full_history()))], env)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: TLS handshake with {listener.bootstrap} failed: no answer within 5 s (not a TLS listener?)"
    )
    assert listener.received[:1] == b"\x16"  # a TLS ClientHello, never plaintext Kafka


def test_a_refused_sasl_login_says_authentication_failed(tmp_path: Path) -> None:
    """Tansu with --authentication and no users (none can be made on memory storage): every login is refused."""
    with tansu("--authentication") as port:
        env = {"DOSSIER_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "DOSSIER_DATA_DIR": str(tmp_path / "d"), **SASL}
        result = invoke(["produce", "publish", str(write_jsonl(tmp_path / "e.jsonl", full_history()))], env)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: authentication failed for user 'alice' at 127.0.0.1:{port} ")
        assert "check DOSSIER_KAFKA_SASL_USERNAME, DOSSIER_KAFKA_SASL_PASSWORD and DOSSIER_KAFKA_SASL_MECHANISM" in (
            result.stderr
        )
        assert PASSWORD not in result.output

        loaded = dossier("consume", "run", "--stop-when-idle", "2", env=env)
        assert loaded.returncode == 1
        assert (
            loaded.stderr.strip()
            .splitlines()[-1]
            .startswith(f"Error: authentication failed for user 'alice' at 127.0.0.1:{port} ")
        )
        assert "Traceback" not in loaded.stderr and PASSWORD not in loaded.stderr + loaded.stdout


def test_sasl_against_a_broker_without_sasl_says_authentication_failed(tmp_path: Path, broker: BrokerHandle) -> None:
    env = {"DOSSIER_KAFKA_BOOTSTRAP": broker.bootstrap, **SASL, "DOSSIER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}
    result = invoke(["produce", "publish", str(write_jsonl(tmp_path / "e.jsonl", full_history()))], env)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: authentication failed for user 'alice' at {broker.bootstrap} with SCRAM-SHA-256 "
        "(the broker does not offer SCRAM-SHA-256)"
    )


def test_librdkafka_login_refusal_is_a_sentence_that_ends_the_loader() -> None:
    """The live loader's librdkafka consumer reports a refused login through error_cb; client_failure names it."""
    security = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", PASSWORD)
    with tansu("--authentication") as port:
        errors: list[object] = []
        consumer = make_group_consumer(f"127.0.0.1:{port}", "g", security, error_cb=errors.append)
        try:
            consumer.subscribe(["t"])
            deadline = time.monotonic() + 10
            while not errors and time.monotonic() < deadline:
                consumer.poll(0.1)
        finally:
            consumer.close()
    failures = [client_failure(error, f"127.0.0.1:{port}", security) for error in errors]
    refused = next(f for f in failures if f is not None)
    assert str(refused).startswith(
        f"authentication failed for user 'alice' at 127.0.0.1:{port} with SCRAM-SHA-512 (SASL SCRAM authentication "
        "failed: broker responded with unknown-user); check DOSSIER_KAFKA_SASL_USERNAME"
    )
    assert client_failure("some log line", "h:1", security) is None
