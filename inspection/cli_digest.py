"""``dossier inspect digest`` and ``dossier inspect prove``: signed digests of the store and proofs against them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dossier_runtime.errors import BrokerError
from dossier_runtime.settings import Settings
from inspection import digest as digests
from inspection.cliutil import EXIT_FINDINGS, Progress, emit, format_option, pass_settings, quiet_option, reader
from inspection.proof import DivergedError, build_proof
from schemas.evidence import EvidenceError, load_private_key, sign_digest


def signing_key(path: Path | None) -> Any:
    """The private key DOSSIER_SIGNING_KEY names; its content is never printed, not even in an error."""
    if path is None:
        raise click.UsageError("no signing key: set DOSSIER_SIGNING_KEY to the signing.key of `dossier keys new DIR`")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        return load_private_key(pem)
    except EvidenceError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


@click.command("digest")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Digest file.")
@click.option(
    "--key",
    "key_path",
    envvar="DOSSIER_SIGNING_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 private key (PEM) to sign with [env DOSSIER_SIGNING_KEY].",
)
@click.option("--publish", is_flag=True, help=f"Also send the signed digest to the Kafka topic {digests.DIGEST_TOPIC}.")
@format_option
@quiet_option
@pass_settings
def digest_cmd(settings: Settings, out: Path, key_path: Path | None, publish: bool, fmt: str, quiet: bool) -> None:
    """Write a signed digest of the store: a Merkle root over every dossier's head.

    The root (RFC 9162 hashing) covers each dossier's id, last seq and last
    hash in dossier-id order; the digest also states the event and dossier
    counts, the Kafka offsets, files and times it covers, and is signed with
    Ed25519. Keep the digest file and its heads file (FILE → FILE.heads.gz,
    next to it) outside the system: `verify --against` and `prove` need both.
    An existing FILE is never overwritten. docs/evidence.md has the formats.

    \b
    Examples:
      DOSSIER_SIGNING_KEY=keys/signing.key dossier inspect digest --out digest-2026-12-06.json
      DOSSIER_SIGNING_KEY=keys/signing.key dossier inspect digest --out digest.json --publish
    """
    key = signing_key(key_path)
    if out.exists() or digests.heads_path(out).exists():
        raise click.ClickException(f"{out} or its heads file already exists: a digest is evidence, write a new one")
    progress = Progress(quiet)
    started = time.monotonic()
    with reader(settings) as store:
        progress.step("reading every dossier's head")
        built = digests.build(store, heads_file=digests.heads_path(out).name, now=datetime.now(UTC))
        location = store.location
    if built is None:
        raise click.ClickException(f"the store ({location}) holds no events: nothing to digest")
    body, heads = built
    signed = sign_digest(body, key)
    took = time.monotonic() - started
    try:
        heads_size = digests.write(out, signed, heads)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    published = None
    if publish:
        try:
            bootstrap, partition, offset = digests.publish(settings, signed)
        except BrokerError as exc:
            raise click.ClickException(f"the digest is written to {out} but not published: {exc}") from None
        published = f"{digests.DIGEST_TOPIC}/{partition}@{offset} on {bootstrap}"
    row = {"digest": str(out), "heads_file": str(digests.heads_path(out)), "heads_bytes": heads_size,
           "root": body["tree"]["root"], "dossiers": body["dossiers"], "events": body["events"],
           "key_id": signed["signature"]["key_id"], "seconds": round(took, 2), "published": published}  # fmt: skip
    computed_on = {"store": location, "cutoff": body["cutoff"], **body["covers"], "access_log": body["access_log"]}
    title = f"Digest of {body['events']:,} events in {body['dossiers']:,} dossiers signed: root {body['tree']['root']}"
    emit([row], fmt, columns=list(row), computed_on=computed_on, key="digest", title=title, quiet=quiet)


def load_digest(path: Path) -> dict[str, Any]:
    try:
        signed = digests.read_signed(path)
    except OSError as exc:
        raise click.ClickException(f"cannot read the digest {path}: {exc.strerror}") from None
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    if not isinstance(signed, dict) or not isinstance(signed.get("digest"), dict) or "tree" not in signed["digest"]:
        raise click.ClickException(f"{path} is not a digest of `dossier inspect digest`")
    return signed


@click.command("prove")
@click.argument("dossier_id")
@click.option("--digest", "digest_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Proof file.")
@quiet_option
@pass_settings
def prove_cmd(settings: Settings, dossier_id: str, digest_path: Path, out: Path, quiet: bool) -> None:
    """Write an inclusion proof of one dossier's history against a digest.

    The proof holds the dossier's events up to the digest's head, the head's
    audit path in the digest's tree and the signed digest itself: anyone with
    the public key checks it with `dossier verify-proof`, without the store.
    Exit code 3 when the store no longer holds the history the digest signed.

    \b
    Example:
      dossier inspect prove 000.00.06.H29-230209-0001 --digest digest.json --out 000.00.06.H29-230209-0001.proof.json
    """
    signed = load_digest(digest_path)
    progress = Progress(quiet)
    with reader(settings) as store:
        try:
            proof = build_proof(store, digest_path, signed, dossier_id)
        except DivergedError as exc:
            click.echo(f"no proof: {exc}", err=True)
            raise SystemExit(EXIT_FINDINGS) from None
        except EvidenceError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        with digests.atomic_file(out) as f:
            f.write(json.dumps(proof, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    progress.step(f"proof of {len(proof['events'])} event(s) of {dossier_id} written to {out}")
    if not quiet:
        click.echo(f"{out}: {dossier_id}, {len(proof['events'])} event(s), leaf {proof['leaf_index']} of "
                   f"{signed['digest']['tree']['size']:,}, key {key_id_of(signed)}")  # fmt: skip


def key_id_of(signed: dict[str, Any]) -> str:
    return str((signed.get("signature") or {}).get("key_id", "?"))[:16] + "…"
