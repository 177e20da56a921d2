"""Signed digests and inclusion proofs: the formats, Ed25519 signing, and checking a proof with no store.

A digest (``dossier inspect digest``) is ``{"digest": BODY, "signature": SIG}``:
``SIG.value`` is the Ed25519 signature (base64) of :func:`canonical_json` of
BODY, by the key whose raw 32-byte public key hashes (SHA-256) to
``SIG.key_id``. A proof (``dossier inspect prove``) carries a signed digest, a
dossier's events up to the digest's head and the audit path of that head in
the digest's tree (:mod:`schemas.merkle`). docs/evidence.md describes every
field and how to check a proof by hand.

Keys are PEM: PKCS#8 for the private key (unencrypted, the file is mode 0600)
and SubjectPublicKeyInfo for the public one, as ``openssl pkey`` reads them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import JsonFormError
from schemas.events import ZERO_HASH
from schemas.hashchain import compute_hash
from schemas.jsonform import from_json
from schemas.merkle import LEAF_ENCODING, MerkleError, leaf_bytes, leaf_hash, root_from_path

DIGEST_FORMAT: Final = "dossier-audit/digest/1"
PROOF_FORMAT: Final = "dossier-audit/proof/1"
SIGNATURE_ALGORITHM: Final = "Ed25519"
TREE_ALGORITHM: Final = "RFC 9162 SHA-256"


class EvidenceError(ValueError):
    """A digest, proof or key that does not hold; the message is one sentence saying which and why."""


def canonical_json(value: Any) -> bytes:
    """The bytes that are signed: JSON with sorted keys, no spaces, UTF-8 (no floats are ever in a digest)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_key_pair() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key: (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, public_pem(key.public_key())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise EvidenceError("the signing key is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError("the signing key is not an Ed25519 key (make one with `dossier keys new DIR`)")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise EvidenceError("the public key is not a PEM public key (signing.pub of `dossier keys new`)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError("the public key is not an Ed25519 key (signing.pub of `dossier keys new`)")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: names the key in a digest without carrying it."""
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def sign_digest(body: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed digest: ``{"digest": body, "signature": …}``."""
    signature = key.sign(canonical_json(body))
    return {
        "digest": dict(body),
        "signature": {
            "algorithm": SIGNATURE_ALGORITHM,
            "key_id": key_id(key.public_key()),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }


def check_digest(signed: Any, key: Ed25519PublicKey) -> dict[str, Any]:
    """The digest's body once its format and signature hold for ``key``; :class:`EvidenceError` otherwise."""
    body = signed.get("digest") if isinstance(signed, dict) else None
    signature = signed.get("signature") if isinstance(signed, dict) else None
    if not isinstance(body, dict) or not isinstance(signature, dict) or body.get("format") != DIGEST_FORMAT:
        raise EvidenceError(f"not a signed digest of format {DIGEST_FORMAT}")
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise EvidenceError(f"the digest is not signed with {SIGNATURE_ALGORITHM}")
    if signature.get("key_id") != key_id(key):
        raise EvidenceError(
            f"the digest was signed by key {str(signature.get('key_id'))[:16]}…, not by the public key given "
            f"({key_id(key)[:16]}…)"
        )
    try:
        key.verify(base64.b64decode(str(signature.get("value")), validate=True), canonical_json(body))
    except (InvalidSignature, ValueError):
        raise EvidenceError("the digest's signature is not valid: it was altered or forged") from None
    tree = body.get("tree")
    if not isinstance(tree, dict) or tree.get("leaf") != LEAF_ENCODING or tree.get("algorithm") != TREE_ALGORITHM:
        raise EvidenceError(f"the digest's tree is not a {TREE_ALGORITHM} tree of {LEAF_ENCODING} leaves")
    return body


@dataclasses.dataclass(frozen=True)
class ProofCheck:
    """What a valid proof established."""

    dossier_id: str
    events: int
    head_seq: int
    digest_created_at: str
    root: str


def check_proof(proof: Any, key: Ed25519PublicKey) -> ProofCheck:
    """Check a proof with no store: signature, every event's hash and link, and the head's path to the root."""
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        raise EvidenceError(f"not a proof of format {PROOF_FORMAT}")
    body = check_digest(proof.get("digest"), key)
    dossier_id, events = proof.get("dossier_id"), proof.get("events")
    if not isinstance(dossier_id, str) or not isinstance(events, list) or not events:
        raise EvidenceError("the proof names no dossier or holds no events")
    prev = ZERO_HASH
    for number, obj in enumerate(events, start=1):
        try:
            event = from_json(obj)
        except JsonFormError as exc:
            raise EvidenceError(f"event {number} of the proof is not a contract event: {exc}") from None
        where = f"dossier {dossier_id} seq {event.seq}"
        if event.dossier_id != dossier_id or event.seq != number:
            raise EvidenceError(f"event {number} of the proof is {event.dossier_id} seq {event.seq}, not {where}")
        if event.prev_hash != prev:
            raise EvidenceError(f"{where}: its prev_hash is not the hash of seq {number - 1}")
        if compute_hash(event) != event.hash:
            raise EvidenceError(f"{where}: its content does not match its hash")
        prev = event.hash
    return _check_path(proof, body, dossier_id, len(events), prev)


def _check_path(proof: dict[str, Any], body: dict[str, Any], dossier_id: str, seq: int, head: bytes) -> ProofCheck:
    tree = body["tree"]
    try:
        path = [bytes.fromhex(str(h)) for h in proof.get("audit_path") or []]
        index, size = int(proof["leaf_index"]), int(tree["size"])
        found = root_from_path(index, size, leaf_hash(leaf_bytes(dossier_id, seq, head)), path)
    except (KeyError, TypeError, ValueError, MerkleError):
        raise EvidenceError("the proof's leaf index or audit path is malformed") from None
    if found is None or found.hex() != tree.get("root"):
        raise EvidenceError(
            f"the head of dossier {dossier_id} (seq {seq}) does not lead to the digest's root: the events or the "
            "audit path were altered, or they belong to another digest"
        )
    return ProofCheck(dossier_id, seq, seq, str(body.get("created_at")), str(tree["root"]))
