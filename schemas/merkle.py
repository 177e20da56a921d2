"""The Merkle tree of a digest: RFC 6962 / RFC 9162 hashing over dossier heads.

A digest commits to every dossier's chain *head* (its id, last seq and last
hash; the hash of the last event commits to the whole chain before it). The
heads, in the byte order of their dossier ids, are the leaves of a Merkle tree
hashed exactly as Certificate Transparency hashes its log (RFC 9162 §2.1.1):

* leaf hash  ``SHA-256(0x00 || leaf bytes)``
* node hash  ``SHA-256(0x01 || left || right)``
* ``n`` leaves split at the largest power of two below ``n``; the empty tree's
  root is ``SHA-256("")``.

So an inclusion proof (RFC 9162 §2.1.3) is the audit path any CT library
checks. Leaf bytes (``dossier-head-1``, docs/evidence.md)::

    uint16 big-endian  byte length of the dossier id (UTF-8)
    bytes              the dossier id
    uint64 big-endian  last seq
    32 bytes           hash of the event at that seq

Levels are built bottom-up, pairing left to right and carrying an odd last
node up unchanged; that yields the RFC's tree for every ``n``. A level is one
``bytes`` of concatenated 32-byte hashes, so a tree of millions of leaves is a
tight hashlib loop, not a structure of objects.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from typing import Final

LEAF_ENCODING: Final = "dossier-head-1"
HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_ID_LEN: Final = struct.Struct(">H")
_SEQ: Final = struct.Struct(">Q")


class MerkleError(ValueError):
    """Bytes that are not a well-formed leaf list, or an index outside the tree."""


def leaf_bytes(dossier_id: str, seq: int, head: bytes) -> bytes:
    """The leaf of one dossier's head (``dossier-head-1``)."""
    raw = dossier_id.encode("utf-8")
    if len(raw) > 0xFFFF or len(head) != HASH_SIZE or not 0 <= seq < 2**63:
        raise MerkleError(f"not a dossier head: {dossier_id!r} seq {seq}")
    return _ID_LEN.pack(len(raw)) + raw + _SEQ.pack(seq) + head


def split_leaves(data: bytes) -> Iterator[tuple[str, int, bytes, bytes]]:
    """``(dossier_id, seq, head, leaf bytes)`` of each leaf in a concatenation of leaves (a heads file)."""
    at, end = 0, len(data)
    while at < end:
        if at + 2 > end:
            raise MerkleError(f"truncated leaf at byte {at}")
        (size,) = _ID_LEN.unpack_from(data, at)
        stop = at + 2 + size + 8 + HASH_SIZE
        if stop > end:
            raise MerkleError(f"truncated leaf at byte {at}")
        try:
            dossier_id = data[at + 2 : at + 2 + size].decode("utf-8")
        except UnicodeDecodeError:
            raise MerkleError(f"leaf at byte {at}: the dossier id is not UTF-8") from None
        (seq,) = _SEQ.unpack_from(data, at + 2 + size)
        yield dossier_id, seq, data[stop - HASH_SIZE : stop], data[at:stop]
        at = stop


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def next_level(level: bytes) -> bytes:
    """The level above ``level`` (concatenated hashes): pairs hashed left to right, an odd last one carried up."""
    view, pairs = memoryview(level), len(level) // (2 * HASH_SIZE)
    sha256 = hashlib.sha256
    upper = b"".join([sha256(b"\x01" + view[i : i + 2 * HASH_SIZE]).digest() for i in range(0, pairs * 64, 64)])
    if len(level) // HASH_SIZE % 2:
        upper += level[-HASH_SIZE:]
    return upper


def levels(leaf_hashes: bytes) -> list[bytes]:
    """Every level from the leaf hashes up to the root (the last, one hash); ``[]`` for no leaves."""
    if len(leaf_hashes) % HASH_SIZE:
        raise MerkleError("leaf hashes are not a whole number of 32-byte hashes")
    if not leaf_hashes:
        return []
    out = [leaf_hashes]
    while len(out[-1]) > HASH_SIZE:
        out.append(next_level(out[-1]))
    return out


def root(leaf_hashes: bytes) -> bytes:
    """The tree's root (RFC 9162 MTH) from the concatenated leaf hashes."""
    built = levels(leaf_hashes)
    return built[-1] if built else EMPTY_ROOT


def inclusion_path(tree_levels: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 9162 §2.1.3.1), bottom-up, from :func:`levels`."""
    size = len(tree_levels[0]) // HASH_SIZE if tree_levels else 0
    if not 0 <= index < size:
        raise MerkleError(f"leaf {index} is not in a tree of {size}")
    path = []
    for level in tree_levels[:-1]:
        sibling = index ^ 1
        if sibling * HASH_SIZE < len(level):
            path.append(level[sibling * HASH_SIZE : (sibling + 1) * HASH_SIZE])
        index //= 2
    return path


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or None when the path cannot fit the tree."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in path):
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return node if sn == 0 else None


class RootBuilder:
    """The root of leaves given one at a time, in O(log n) memory: the perfect subtrees so far, folded at the end."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (leaves, hash) of each perfect subtree, largest first
        self.size = 0

    def add(self, leaf_hash_: bytes) -> None:
        size, node = 1, leaf_hash_
        while self._stack and self._stack[-1][0] == size:
            node = node_hash(self._stack.pop()[1], node)
            size *= 2
        self._stack.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
