"""``dossier keys``: the Ed25519 key pair that signs digests.

``keys new DIR`` writes ``DIR/signing.key`` (PKCS#8 PEM, mode 0600 from the
moment it exists: ``os.open`` with ``O_EXCL`` and 0o600, never a chmod after)
and ``DIR/signing.pub`` (SubjectPublicKeyInfo PEM). An existing key is never
overwritten: a digest signed with it could no longer be told from a forgery
once its key is lost. The private key is never printed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from schemas.evidence import key_id, load_public_key, new_key_pair

KEY_FILE = "signing.key"
PUB_FILE = "signing.pub"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` and write ``data`` whole, or leave nothing behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def new_keys(directory: Path) -> str:
    """Write a new key pair into ``directory``; the key id (SHA-256 of the raw public key, hex)."""
    key_path, pub_path = directory / KEY_FILE, directory / PUB_FILE
    for path in (key_path, pub_path):
        if path.exists():
            raise click.ClickException(f"{path} exists: a signing key is never overwritten (choose another DIR)")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        private, public = new_key_pair()
        _write_new(key_path, private, 0o600)
        try:
            _write_new(pub_path, public, 0o644)
        except BaseException:
            key_path.unlink()
            raise
    except FileExistsError as exc:
        raise click.ClickException(f"{exc.filename} exists: a signing key is never overwritten") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the key into {directory}: {exc.strerror}") from None
    return key_id(load_public_key(public))


@click.group("keys")
def keys_group() -> None:
    """Signing keys of digests (Ed25519).

    \b
    Example:
      dossier keys new my-keys
    """


@keys_group.command("new")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def new_cmd(directory: Path) -> None:
    """Write a new key pair: DIR/signing.key (mode 0600) and DIR/signing.pub.

    Sign digests with DOSSIER_SIGNING_KEY=DIR/signing.key; hand signing.pub
    to whoever checks them. The private key is never printed, and an existing
    key is never overwritten.

    \b
    Example:
      dossier keys new other-keys   # then: export DOSSIER_SIGNING_KEY=other-keys/signing.key
    """
    ident = new_keys(directory)
    click.echo(f"{directory / KEY_FILE} (private, mode 0600) and {directory / PUB_FILE} written; key id {ident}")
