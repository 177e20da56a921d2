"""``dossier inspect prove``: one dossier's history with the proof that a signed digest covers it.

The proof holds the signed digest, the dossier's events up to the digest's
head (in the JSON form of :mod:`schemas.jsonform`), the head's leaf index and
its audit path (RFC 9162 §2.1.3) in the digest's tree. Anyone holding the
public key checks it with ``dossier verify-proof`` (:func:`schemas.evidence.check_proof`),
or by hand (docs/evidence.md): no store, no access to the system.

A proof is made only of a history that still matches the digest: every
event's hash recomputed, every link, and the last hash equal to the head.
Otherwise the store no longer holds what the digest signed, which is a
finding (``verify --against`` says more), not a proof.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from dossier_runtime.store import Store
from inspection.digest import stored_heads
from schemas.events import FIELD_NAMES, ZERO_HASH, DossierEvent
from schemas.evidence import PROOF_FORMAT, EvidenceError
from schemas.hashchain import compute_hash
from schemas.jsonform import to_json
from schemas.merkle import inclusion_path, levels

_COLUMNS: Final = ", ".join(f"`{name}`" for name in FIELD_NAMES)
_HISTORY_SQL: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE dossier_id = {{id:String}} AND seq <= {{seq:Int64}} "  # noqa: S608
    "ORDER BY seq, event_id"
)


class DivergedError(EvidenceError):
    """The store no longer holds the history the digest signed for this dossier (a finding: exit 3)."""


def _leaf(digest_path: Path, body: dict[str, Any], dossier_id: str) -> tuple[int, int, bytes, list[bytes]]:
    """(leaf index, seq, head, audit path) of the dossier in the digest's tree."""
    hashes = bytearray()
    found: tuple[int, int, bytes] | None = None
    for index, (name, seq, head, hashed) in enumerate(stored_heads(digest_path, body)):
        hashes += hashed
        if name == dossier_id:
            found = (index, seq, head)
    if found is None:
        raise EvidenceError(f"dossier {dossier_id} is not in the digest (it holds {body['dossiers']:,} dossiers)")
    index, seq, head = found
    return index, seq, head, inclusion_path(levels(bytes(hashes)), index)


def _history(store: Store, dossier_id: str, seq: int, head: bytes) -> list[DossierEvent]:
    """The stored events 1..seq, checked against the digest's head."""
    events = [DossierEvent.from_record(r) for r in store.query(_HISTORY_SQL, {"id": dossier_id, "seq": seq}).named()]
    prev = ZERO_HASH
    for expected, event in enumerate(events, start=1):
        where = f"dossier {dossier_id} seq {expected}"
        if event.seq != expected:
            raise DivergedError(f"{where}: the store holds seq {event.seq} there (a gap or a repeat)")
        if event.prev_hash != prev or compute_hash(event) != event.hash:
            raise DivergedError(f"{where}: its hash or link does not hold (run `dossier inspect verify`)")
        prev = event.hash
    if len(events) != seq or prev != head:
        raise DivergedError(
            f"dossier {dossier_id}: the store no longer holds the history the digest signed up to seq {seq} "
            "(run `dossier inspect verify --against` on the digest)"
        )
    return events


def build_proof(store: Store, digest_path: Path, signed: dict[str, Any], dossier_id: str) -> dict[str, Any]:
    """The proof of one dossier's history against a digest (its heads file read next to it)."""
    body = signed["digest"]
    index, seq, head, path = _leaf(digest_path, body, dossier_id)
    events = _history(store, dossier_id, seq, head)
    return {
        "format": PROOF_FORMAT,
        "dossier_id": dossier_id,
        "leaf_index": index,
        "audit_path": [p.hex() for p in path],
        "events": [to_json(e) for e in events],
        "digest": signed,
    }
