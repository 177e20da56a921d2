"""``dossier inspect verify --against DIGEST``: does the store still hold the history a digest signed?

For every dossier of the digest, the store must hold an event at the
digest's last seq whose hash is the digest's head (later events are allowed).
``verify`` itself recomputes every event's hash and link, so an intact chain
ending in the digest's head is the very history the digest saw; a chain
rewritten and re-hashed consistently ends in another hash and is named here.

The digest's heads and the store's current heads are both read in dossier-id
order and merged as they stream, so memory stays bounded whatever the
number of dossiers. Only dossiers that grew since the digest need one more
lookup (the hash at the digest's seq), in batches of bound arrays.

What the digest cannot say is *which* earlier event of a consistently
rewritten chain was changed: it keeps only the head. The finding names the
head's seq; a proof (``inspect prove``) taken at the digest holds the events
themselves for a side-by-side comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from dossier_runtime.store import Store
from inspection import accesslog
from inspection.verify import Finding

AGAINST_KINDS: Final = (
    "digest-dossier-missing",
    "digest-events-missing",
    "digest-history-rewritten",
    "digest-access-log-rewritten",
)
_BATCH: Final = 5_000

_CURRENT_SQL: Final = """
SELECT dossier_id, max(seq) AS last_seq, argMax(hash, tuple(seq, hash)) AS head
FROM events GROUP BY dossier_id ORDER BY dossier_id
"""
_AT_SEQ_SQL: Final = """
SELECT dossier_id, seq, groupUniqArray(hash)
FROM events
WHERE dossier_id IN {ids:Array(String)}
  AND (dossier_id, seq) IN (SELECT tupleElement(k, 1), tupleElement(k, 2)
                            FROM (SELECT arrayJoin(arrayZip({ids:Array(String)}, {seqs:Array(Int64)})) AS k))
GROUP BY dossier_id, seq
"""


def _current(store: Store) -> Iterator[tuple[str, int, bytes]]:
    for batch in store.query_batches(_CURRENT_SQL):
        ids = batch.column(0).cast("binary").to_pylist()
        seqs, heads = batch.column(1).to_pylist(), batch.column(2).to_pylist()
        for raw, seq, head in zip(ids, seqs, heads, strict=True):
            yield raw.decode("utf-8", errors="backslashreplace"), int(seq), bytes(head)


def _rewritten(dossier_id: str, seq: int, stored: bytes, signed: bytes) -> Finding:
    return Finding(
        "digest-history-rewritten",
        dossier_id,
        seq,
        f"the event at seq {seq} has hash {stored.hex()}, the digest's head is {signed.hex()}: the history up to "
        f"seq {seq} is not the one the digest signed",
    )


def _missing_events(dossier_id: str, seq: int, last: int) -> Finding:
    return Finding(
        "digest-events-missing",
        dossier_id,
        last + 1,
        f"the store holds seq 1..{last}, the digest signed seq 1..{seq}: events {last + 1}..{seq} are gone",
    )


def compare(store: Store, digest_heads: Iterable[tuple[str, int, bytes, bytes]]) -> tuple[list[Finding], int]:
    """Findings for the dossiers whose stored history diverges from the digest's, and how many were compared."""
    findings: list[Finding] = []
    grown: list[tuple[str, int, bytes]] = []
    current = _current(store)
    now = next(current, None)
    compared = 0
    for dossier_id, seq, head, _leaf in digest_heads:
        compared += 1
        while now is not None and now[0] < dossier_id:
            now = next(current, None)
        if now is None or now[0] != dossier_id:
            findings.append(Finding("digest-dossier-missing", dossier_id, 1, f"the digest signed seq 1..{seq}"))
        elif now[1] < seq:
            findings.append(_missing_events(dossier_id, seq, now[1]))
        elif now[1] == seq and now[2] != head:
            findings.append(_rewritten(dossier_id, seq, now[2], head))
        elif now[1] > seq:
            grown.append((dossier_id, seq, head))
            if len(grown) >= _BATCH:
                findings += _check_grown(store, grown)
                grown = []
    findings += _check_grown(store, grown)
    return sorted(findings, key=lambda f: (f.dossier_id, f.seq)), compared


def _check_grown(store: Store, grown: list[tuple[str, int, bytes]]) -> list[Finding]:
    """Dossiers with events after the digest: their hash at the digest's seq must still be its head."""
    if not grown:
        return []
    rows = store.query(_AT_SEQ_SQL, {"ids": [g[0] for g in grown], "seqs": [g[1] for g in grown]}).rows
    stored = {(str(d), int(s)): [bytes(h) for h in hashes] for d, s, hashes in rows}
    out = []
    for dossier_id, seq, head in grown:
        found = stored.get((dossier_id, seq))
        if found is None:
            out.append(
                Finding(
                    "digest-events-missing",
                    dossier_id,
                    seq,
                    f"the store holds no event at seq {seq}, the digest's head of this dossier",
                )
            )
        elif found != [head]:
            other = next((h for h in found if h != head), found[0])
            out.append(_rewritten(dossier_id, seq, other, head))
    return out


def access_log(store: Store, body: dict[str, Any]) -> list[Finding]:
    """The digest's access-log head (``access_log``: seq and hash) must still be an entry of the store's log."""
    signed = body.get("access_log")
    if not signed or not signed.get("seq"):
        return []
    entries = accesslog.entries(store) if accesslog.has_log(store) else []
    rows = [r for r in entries if int(r["seq"]) == int(signed["seq"])]
    hashes = sorted({str(r["hash"]) for r in rows})
    if hashes == [signed["hash"]]:
        return []
    held = f"holds {', '.join(hashes)}" if hashes else "holds no such entry"
    detail = f"the digest signed entry {signed['seq']} with hash {signed['hash']}; the store's access log {held}"
    return [Finding("digest-access-log-rewritten", "(access log)", int(signed["seq"]), detail)]
