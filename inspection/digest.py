"""``dossier inspect digest``: a signed digest of the store, computed in ClickHouse over the dossiers' heads.

One query reads every dossier's head (id, last seq, hash of the event at it),
builds its leaf bytes (:mod:`schemas.merkle`, ``dossier-head-1``) and leaf hash
in ClickHouse, ordered by dossier id; Python only combines the levels above
the leaves (one SHA-256 per pair over a flat buffer) and signs the body.

Everything a digest states is read up to one cutoff, the latest
``_ingested_at`` when it starts, so a load running meanwhile does not make
the heads, the counts and the offsets disagree.

The digest file stays small (JSON, ~1 KB). The heads themselves go to a
companion file next to it, the leaf bytes concatenated in tree order and
gzip-compressed (~38 MB per million dossiers: the 32-byte hashes do not
compress): what ``verify --against`` needs to name a dossier that diverged,
and ``prove`` to build a path. It needs no signature of its own: its leaves
must hash to the signed root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from dossier_runtime.broker import find_broker
from dossier_runtime.errors import BrokerError
from dossier_runtime.kafka import ensure_topic, make_producer
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection import accesslog
from schemas.evidence import DIGEST_FORMAT, TREE_ALGORITHM, EvidenceError, canonical_json
from schemas.hashchain import micros
from schemas.merkle import LEAF_ENCODING, MerkleError, RootBuilder, leaf_hash, levels, split_leaves

DIGEST_TOPIC: Final = "dossier.digests"
#: Events up to the digest's cutoff (the latest ``_ingested_at`` when it started).
UP_TO: Final = "_ingested_at <= fromUnixTimestamp64Micro({cutoff_us:Int64}, 'UTC')"

#: Every dossier's head and its leaf, in the tree's order (the bytes of the dossier id).
HEADS_SQL: Final = f"""
SELECT concat(unhex(leftPad(hex(toUInt16(length(dossier_id))), 4, '0')), dossier_id,
              unhex(leftPad(hex(toUInt64(last_seq)), 16, '0')), head) AS leaf,
       SHA256(concat(char(0), leaf)) AS leaf_hash
FROM (
    SELECT dossier_id, max(seq) AS last_seq, argMax(hash, tuple(seq, hash)) AS head
    FROM events WHERE {UP_TO} GROUP BY dossier_id
)
ORDER BY dossier_id
"""  # noqa: S608 (no input in it: the cutoff is bound)

_COVERAGE_SQL: Final = f"""
SELECT count(), min(recorded_at), max(recorded_at), max(_ingested_at), uniqExactIf(_topic, _topic LIKE 'file:%')
FROM events WHERE {UP_TO}
"""  # noqa: S608
_OFFSETS_SQL: Final = f"""
SELECT _topic, _partition, max(_offset) FROM events WHERE {UP_TO} AND _topic NOT LIKE 'file:%' AND _topic != ''
GROUP BY _topic, _partition ORDER BY _topic, _partition
"""  # noqa: S608


@dataclasses.dataclass(frozen=True)
class Heads:
    """The tree's leaves: ``leaves`` their bytes concatenated, ``hashes`` their 32-byte leaf hashes."""

    leaves: bytes
    hashes: bytes

    @property
    def count(self) -> int:
        return len(self.hashes) // 32


def cutoff(store: Store) -> datetime | None:
    """The latest ``_ingested_at``: what a digest started now covers (None for an empty store)."""
    latest = store.query("SELECT maxOrNull(_ingested_at) FROM events").scalar()
    if not isinstance(latest, datetime):
        return None
    return latest if latest.tzinfo else latest.replace(tzinfo=UTC)


def read_heads(store: Store, up_to: datetime) -> Heads:
    """Every dossier's leaf and leaf hash, computed in ClickHouse, as two flat buffers."""
    table = store.query_arrow(HEADS_SQL, {"cutoff_us": micros(up_to)})
    leaves, hashes = bytearray(), bytearray()
    for chunk in table.column("leaf").chunks:
        binary = chunk.cast(pa.binary())  # int32 offsets, little-endian
        offsets = memoryview(binary.buffers()[1])[4 * binary.offset : 4 * (binary.offset + len(binary) + 1)]
        start, stop = int.from_bytes(offsets[:4], "little"), int.from_bytes(offsets[-4:], "little")
        leaves += memoryview(binary.buffers()[2])[start:stop]
    for chunk in table.column("leaf_hash").chunks:
        hashes += memoryview(chunk.buffers()[1])[chunk.offset * 32 : (chunk.offset + len(chunk)) * 32]
    return Heads(bytes(leaves), bytes(hashes))


def coverage(store: Store, up_to: datetime) -> dict[str, Any]:
    """The event count and what the digest covers: Kafka offsets, files loaded, times."""
    params = {"cutoff_us": micros(up_to)}
    events, first, last, ingested, files = store.query(_COVERAGE_SQL, params).rows[0]
    offsets = {f"{t}/{p}": int(o) for t, p, o in store.query(_OFFSETS_SQL, params).rows}
    return {
        "events": int(events),
        "covers": {
            "kafka_offsets": offsets,
            "files_loaded": int(files),
            "first_recorded_at": first.isoformat(),
            "last_recorded_at": last.isoformat(),
            "last_ingested_at": ingested.isoformat(),
        },
    }


def access_log_head(store: Store) -> dict[str, Any] | None:
    """The access log's head (seq and hash of its last entry, :func:`inspection.accesslog.head`); None without one."""
    found = accesslog.head(store)
    if found is None:
        return None
    seq, value = found
    return {"seq": int(seq), "hash": bytes(value).hex()}


def heads_path(digest: Path) -> Path:
    """The companion heads file of a digest file: ``X.json`` → ``X.heads.gz``."""
    stem = digest.name[: -len(".json")] if digest.name.endswith(".json") else digest.name
    return digest.with_name(f"{stem}.heads.gz")


def build(store: Store, *, heads_file: str, now: datetime) -> tuple[dict[str, Any], Heads] | None:
    """The digest's body (unsigned) and its heads; None for an empty store."""
    up_to = cutoff(store)
    if up_to is None:
        return None
    heads = read_heads(store, up_to)
    covered = coverage(store, up_to)
    tree_levels = levels(heads.hashes)
    body = {
        "format": DIGEST_FORMAT,
        "created_at": now.astimezone(UTC).isoformat(timespec="microseconds"),
        "cutoff": up_to.isoformat(timespec="microseconds"),
        "events": covered["events"],
        "dossiers": heads.count,
        "covers": covered["covers"],
        "tree": {
            "algorithm": TREE_ALGORITHM,
            "leaf": LEAF_ENCODING,
            "size": heads.count,
            "root": tree_levels[-1].hex(),
        },
        "heads_file": heads_file,
        "access_log": access_log_head(store),
    }
    return body, heads


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Any]:
    """A file written whole or not at all: a temporary file next to it, renamed at the end."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write(path: Path, signed: dict[str, Any], heads: Heads) -> int:
    """Write the heads file, then the digest; the heads file's size in bytes."""
    companion = heads_path(path)
    with atomic_file(companion) as f:
        f.write(gzip.compress(heads.leaves, compresslevel=6, mtime=0))
    with atomic_file(path) as f:
        f.write(json.dumps(signed, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    return companion.stat().st_size


def read_signed(path: Path) -> Any:
    """A digest (or proof) file's JSON; :class:`EvidenceError` for a file that is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EvidenceError(f"{path} is not a JSON file") from None


def stored_heads(digest_path: Path, body: dict[str, Any]) -> Iterator[tuple[str, int, bytes, bytes]]:
    """``(dossier_id, seq, head, leaf hash)`` of the digest's heads file, in order; its leaves must hash to the root.

    The check runs as the file is read: :class:`EvidenceError` after the last leaf when the root differs, so
    callers act on what they read only once the generator is exhausted.
    """
    path = digest_path.with_name(str(body.get("heads_file") or heads_path(digest_path).name))
    try:
        data = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise EvidenceError(f"the digest's heads file {path} is missing (it is written next to the digest)") from None
    except (OSError, EOFError):
        raise EvidenceError(f"the digest's heads file {path} is not a gzip file") from None
    builder = RootBuilder()
    try:
        for dossier_id, seq, head, leaf in split_leaves(data):
            hashed = leaf_hash(leaf)
            builder.add(hashed)
            yield dossier_id, seq, head, hashed
    except MerkleError as exc:
        raise EvidenceError(f"the digest's heads file {path} is damaged: {exc}") from None
    if builder.root().hex() != body["tree"]["root"] or builder.size != body["tree"]["size"]:
        raise EvidenceError(f"the digest's heads file {path} does not hash to the digest's root: it was altered")


def publish(settings: Settings, signed: dict[str, Any]) -> tuple[str, int, int]:
    """Send the signed digest (without its heads) to :data:`DIGEST_TOPIC`, acks=all, waiting for the ack.

    Returns (bootstrap, partition, offset). The embedded broker keeps messages in memory only, so it is used
    only when a running stack already has one; otherwise DOSSIER_KAFKA_BOOTSTRAP must name a cluster.
    """
    from kafka.errors import KafkaError

    handle = None if settings.kafka_bootstrap else find_broker(settings.data_dir)
    bootstrap = settings.kafka_bootstrap or (handle.bootstrap if handle is not None else None)
    if bootstrap is None:
        raise BrokerError(
            f"no Kafka to publish the digest to: set DOSSIER_KAFKA_BOOTSTRAP, or run `dossier consume run` for "
            f"{settings.data_dir} (its embedded broker keeps messages in memory only)"
        )
    ensure_topic(bootstrap, DIGEST_TOPIC, 1, settings.kafka_security)
    producer = make_producer(bootstrap, settings.kafka_security)
    try:
        key = bytes.fromhex(signed["digest"]["tree"]["root"])
        sent = producer.send(DIGEST_TOPIC, key=key, value=canonical_json(signed))
        meta = sent.get(timeout=60)
    except KafkaError as exc:
        raise BrokerError(f"publishing the digest to {DIGEST_TOPIC} on {bootstrap} failed: {exc}") from exc
    finally:
        producer.close()
    return bootstrap, int(meta.partition), int(meta.offset)
