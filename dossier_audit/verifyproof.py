"""``dossier verify-proof``: check a dossier's proof with the public key alone, no store, no system."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from schemas.evidence import EvidenceError, check_proof, load_public_key

EXIT_INVALID = 3


@click.command("verify-proof")
@click.argument("proof_path", metavar="PROOF", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    metavar="PUB",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The digest signer's public key (signing.pub).",
)
def verify_proof_cmd(proof_path: Path, public_key: Path) -> None:
    """Check a proof of `dossier inspect prove`, offline: exit 0 valid, 3 invalid.

    Valid means: the digest in it is signed by PUB; every event's hash is
    recomputed from its fields and links to the one before; and the last
    event's hash, as the dossier's head, leads through the audit path to the
    digest's Merkle root. The proof then shows the dossier's whole history as
    the store held it when the digest was signed.

    \b
    Example:
      dossier verify-proof 000.00.06.H29-230209-0001.proof.json --public-key keys/signing.pub
    """
    try:
        key = load_public_key(public_key.read_bytes())
        raw = proof_path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {exc.filename}: {exc.strerror}") from None
    except EvidenceError as exc:
        raise click.ClickException(f"{public_key}: {exc}") from None
    try:
        checked = check_proof(json.loads(raw.decode("utf-8")), key)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        click.echo(f"INVALID proof {proof_path}: it is not a JSON file")
        sys.exit(EXIT_INVALID)
    except EvidenceError as exc:
        click.echo(f"INVALID proof {proof_path}: {exc}")
        sys.exit(EXIT_INVALID)
    click.echo(
        f"VALID proof {proof_path}: dossier {checked.dossier_id}, events 1..{checked.head_seq}, in the digest of "
        f"{checked.digest_created_at} (root {checked.root})"
    )
