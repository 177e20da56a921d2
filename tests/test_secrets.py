"""Secrets never show: each one set to a marker, every command's output and every file it writes searched for it.

The markers: the ClickHouse password (in DOSSIER_CLICKHOUSE_URL, percent-encoded or not, and in
DOSSIER_CLICKHOUSE_PASSWORD), the Kafka SASL password, the pseudonym key and the signing key (the content of
DOSSIER_SIGNING_KEY's file: a real key's PEM body and its raw 32 bytes, or a marker where the file is not a key).
Each is searched as it is, percent-encoded, in hex and in base64 (a login travels as base64 in an HTTP
Authorization header). Commands run where they fail (a malformed URL, nothing listening, a refused login, a server
whose error repeats the whole request) and where they succeed (a ClickHouse server that takes the password, the
embedded store), and their reports' ``computed_on`` are part of what they print.
"""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization

from dossier_runtime.broker import free_port
from tests import chserver
from tests.leakscan import run_many, scan_text, scan_tree, secret_forms
from tests.securebroker import tansu
from tests.test_personal_data import CODE, _inputs

CH_PASSWORD = "ch-Pw:m@rker/5150%x"  # every character a URL would have to encode
SASL_PASSWORD = "sasl-pw-marker-6021"
PSEUDONYM_KEY = "pseudonym-key-marker-7733-abcdef"
SIGNING_MARKER = "signing-key-marker-9402-not-a-pem"
D_RECEIVED = "000.00.31.H29-240304-0001"


def _needles(extra: Mapping[str, str]) -> dict[str, str]:
    needles: dict[str, str] = {}
    for secret, label in (
        (CH_PASSWORD, "ClickHouse password"),
        (SASL_PASSWORD, "SASL password"),
        (PSEUDONYM_KEY, "pseudonym key"),
        (SIGNING_MARKER, "signing key file content"),
        *extra.items(),
    ):
        needles |= {form: label for form in secret_forms(secret)}
    for user in ("auditor", "dossier"):  # HTTP Basic authentication: base64 of user:password
        login = base64.b64encode(f"{user}:{CH_PASSWORD}".encode()).decode()
        needles[login] = "ClickHouse login (Basic)"
    return needles


def _check(results: list[dict[str, object]], expected: Mapping[str, tuple[int, ...]]) -> list[tuple[str, str]]:
    """(command, what it printed), each command's exit code checked against ``expected`` (by its first words)."""
    printed = []
    for r in results:
        args = [str(a) for a in r["args"]]  # type: ignore[attr-defined]
        command = " ".join(args)
        codes = next((c for prefix, c in expected.items() if command.startswith(prefix)), (0,))
        assert r["code"] in codes, r
        assert "Traceback" not in str(r["stderr"]), r
        printed.append((command, f"{r['stdout']}{r['stderr']}"))
    return printed


def _signing_key(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A real key pair from `dossier keys new`; the private key's PEM body and raw bytes as needles."""
    keys = tmp_path / "keys"
    [made] = run_many([["keys", "new", str(keys)]], {})
    assert made["code"] == 0, made
    pem = (keys / "signing.key").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
    needles = {body: "signing key (PEM body)", raw.hex(): "signing key (raw, hex)"}
    needles[base64.b64encode(raw).decode()] = "signing key (raw, base64)"
    return keys / "signing.key", needles


class _Echo(http.server.BaseHTTPRequestHandler):
    """A 'ClickHouse' (or a proxy before one) whose every error repeats the request: line, headers and body."""

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        text = f"Code: 500. DB::Exception: bad request {self.requestline} {dict(self.headers)} {body!r}".encode()
        self.send_response(500)
        self.send_header("X-ClickHouse-Exception-Code", "500")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


READING = [
    ["consume", "migrate"],
    ["consume", "status", "--no-lag"],
    ["inspect", "audit", "--format", "json"],
    ["inspect", "verify", "--format", "json"],
    ["inspect", "export", "--format", "jsonl"],
    ["inspect", "sql", "SELECT count() FROM events"],
]


@pytest.mark.slow
def test_no_secret_in_any_output_or_file_where_commands_fail_or_succeed(tmp_path: Path, echo_server: int) -> None:
    work = tmp_path / "work"
    work.mkdir()
    csv_file, _, _ = _inputs(work)
    signing, key_needles = _signing_key(tmp_path)
    needles = _needles(key_needles)
    printed: list[tuple[str, str]] = []
    data = str(tmp_path / "data")
    events = str(work / "events.jsonl")
    base = {"DOSSIER_DATA_DIR": data, "DOSSIER_PSEUDONYM_KEY": PSEUDONYM_KEY, "DOSSIER_SIGNING_KEY": str(signing)}

    # the embedded stack: import, simulate, load, report, sign a digest (the signing key and pseudonym key in use)
    succeed = [
        ["produce", "import", str(csv_file), "--procedure-code", CODE, "--skip-invalid", "--rejected-out",
         str(tmp_path / "rejected.csv"), "--out", events],
        ["produce", "simulate", "--dossiers", "30", "--workers", "1", "--out", str(work / "sim")],
        ["consume", "load", events],
        ["consume", "load-catalogue", str(work / "sim")],
        *READING[1:],
        ["inspect", "replay", D_RECEIVED, "--format", "json"],
        ["inspect", "scorecard", "--format", "json"],
        ["inspect", "digest", "--out", str(work / "digest.json")],
    ]  # fmt: skip
    printed += _check(run_many(succeed, base), {"inspect audit": (0, 3), "inspect verify": (0, 3)})
    assert (work / "digest.json").exists()

    # Kafka with SASL: nothing listening, then a broker that refuses the login; the store is still readable
    closed = free_port()
    sasl = {
        **base,
        "DOSSIER_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}",
        "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "DOSSIER_KAFKA_SASL_MECHANISM": "PLAIN",
        "DOSSIER_KAFKA_SASL_USERNAME": "auditor",
        "DOSSIER_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
    }
    kafka = [
        ["produce", "publish", events],
        ["produce", "import", str(csv_file), "--procedure-code", CODE, "--skip-invalid", "--rejected-out",
         str(tmp_path / "rejected.csv"), "--publish"],
        ["consume", "run", "--stop-when-idle", "1"],
        ["consume", "status"],
        ["inspect", "audit", "--format", "json"],
    ]  # fmt: skip
    expected = {"produce": (1,), "consume run": (1,), "consume status": (0, 1), "inspect audit": (0, 3)}
    printed += _check(run_many(kafka, sasl), expected)
    with tansu("--authentication") as port:
        for mechanism in ("SCRAM-SHA-512", "PLAIN"):
            refused = {
                **sasl,
                "DOSSIER_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
                "DOSSIER_KAFKA_SASL_MECHANISM": mechanism,
            }
            printed += _check(run_many(kafka[:1] + kafka[2:3], refused), {"": (1,)})

    # ClickHouse: a malformed URL (the password not encoded), nothing listening, a server repeating the request
    encoded = quote(CH_PASSWORD, safe="")
    for env, codes in (
        ({"DOSSIER_CLICKHOUSE_URL": f"http://auditor:{CH_PASSWORD}@127.0.0.1:{closed}/dossier"}, (2,)),
        ({"DOSSIER_CLICKHOUSE_URL": f"http://auditor:{encoded}@127.0.0.1:{closed}/dossier"}, (1,)),
        ({"DOSSIER_CLICKHOUSE_URL": f"http://127.0.0.1:{closed}/dossier", "DOSSIER_CLICKHOUSE_USER": "auditor",
          "DOSSIER_CLICKHOUSE_PASSWORD": CH_PASSWORD}, (1,)),
        ({"DOSSIER_CLICKHOUSE_URL": f"http://auditor:{encoded}@127.0.0.1:{echo_server}/dossier"}, (1,)),
    ):  # fmt: skip
        commands = [*READING, ["consume", "load", events], ["inspect", "digest", "--out", str(work / "d2.json")]]
        printed += _check(run_many(commands, {**base, **env}), {"": codes})

    # a ClickHouse server that takes the password (and one that refuses a wrong one)
    server = chserver.start(
        tmp_path.parent / f"{tmp_path.name}-chserver" / "data", user="auditor", password=CH_PASSWORD
    )
    try:
        url = server.fresh_database().replace(CH_PASSWORD, encoded)
        on_server = {**base, "DOSSIER_CLICKHOUSE_URL": url}
        commands = [READING[0], ["consume", "load", events], *READING[1:], ["inspect", "replay", D_RECEIVED]]
        printed += _check(run_many(commands, on_server), {"inspect audit": (0, 3), "inspect verify": (0, 3)})
        wrong = {**on_server, "DOSSIER_CLICKHOUSE_URL": url.replace("auditor", "nobody")}  # the password is sent
        printed += _check(run_many(READING[:3], wrong), {"": (1,)})
    finally:
        server.stop()

    # a pseudonym key too short, a signing key file that is no key
    bad = {**base, "DOSSIER_PSEUDONYM_KEY": PSEUDONYM_KEY[:12]}
    printed += _check(run_many([["produce", "import", str(csv_file), "--procedure-code", CODE, "--check"]], bad),
                      {"": (2,)})  # fmt: skip
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text(SIGNING_MARKER + "\n")
    bad = {**base, "DOSSIER_SIGNING_KEY": str(not_a_key)}
    printed += _check(run_many([["inspect", "digest", "--out", str(work / "d3.json")]], bad), {"": (1, 2)})

    leaks = [leak for command, output in printed for leak in scan_text(command, output, needles)]
    skip = [signing, not_a_key]  # the key files themselves
    file_leaks, files = scan_tree(tmp_path, {k: v for k, v in needles.items()}, skip=skip)
    assert leaks + file_leaks == [], "\n".join(leaks + file_leaks)
    assert files > 20 and len(printed) > 40
    assert sum('"computed_on"' in output for _, output in printed) >= 6  # the reports' provenance was searched too
