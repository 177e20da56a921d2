"""Appending to the access log: one hash-chained row per ``dossier inspect`` command (migration 0013).

An :class:`Access` is what a command declares about itself (who, when it started, the command and its
parameters, rows returned, SHA-256 of its output, exit code, how it reached the store). Whoever appends it
gives it the next ``seq`` and chains it: ``hash`` = SHA-256 of :func:`canonical` (``seq``, ``prev_hash`` and
every field), ``prev_hash`` = the previous entry's ``hash``, 32 zero bytes before the first. Hashes are
stored and encoded as lowercase hex.

The canonical encoding is the UTF-8 of a JSON object holding the stored columns (``seq``, ``prev_hash``,
``at``, ``inspector``, ``command``, ``params``, ``exit_code``, ``rows``, ``output_sha256``, ``via``) with keys
sorted, no whitespace, non-ASCII kept as is (RFC 8785's form for strings, integers and null); ``at`` is
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and ``params`` the stored text (itself canonical JSON). Anyone can recompute
it from the rows alone.

Two inspectors at once must not fork the chain. An append reads the last entry, inserts the next one with
``insert_deduplication_token = 'access_log:<seq>'`` and reads that seq back: the table deduplicates by the
token (``non_replicated_deduplication_window``; a ReplicatedMergeTree on a cluster does it through Keeper),
so of two inserts racing for one seq only the first is stored, and the second finds another hash there and
appends again with the next seq. The owner of an embedded store also serialises the appends it makes for
readers (:mod:`dossier_runtime.storeserver`). A seq whose token is known but whose row is gone was recorded
and then deleted: the append stops and says so (a deleted last entry leaves no gap for ``--verify`` to see).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from dossier_runtime.errors import StoreError

#: ``query(sql, parameters) -> rows``.
QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]
#: ``insert(statement, jsonl) -> None``: ``INSERT INTO access_log SETTINGS …`` with JSONEachRow rows.
InsertFn = Callable[[str, bytes], object]

TABLE: Final = "access_log"
GENESIS: Final = "00" * 32
ATTEMPTS: Final = 20
#: Bytes a declared field may hold (a reader's declaration through the endpoint is checked against it).
MAX_FIELD: Final = 64 * 1024

LAST_SQL: Final = "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1"
AT_SEQ_SQL: Final = "SELECT hash FROM access_log WHERE seq = {seq:UInt64}"
EXISTS_SQL: Final = "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'access_log'"
_INSERT: Final = (
    "INSERT INTO `access_log` SETTINGS insert_deduplicate = 1, async_insert = 0, "
    "insert_deduplication_token = 'access_log:{seq}'"
)


class AccessLogError(StoreError):
    """The access could not be recorded (the log is missing, refuses writes, or lost an entry)."""


@dataclasses.dataclass(frozen=True)
class Access:
    """What a command declares about its run; the appender adds seq and the chain."""

    at: datetime  # when the command started (aware)
    inspector: str
    command: str  # e.g. "dossier inspect replay"
    params: str  # canonical JSON object of the parameters as recorded (secrets withheld)
    exit_code: int
    rows: int | None  # rows returned where the command knows it; None is unknown, not zero
    output_sha256: str  # hex SHA-256 of exactly the bytes written to stdout
    via: str  # embedded | endpoint | server

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "at": stamp(self.at)}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Access:
        """Parse a declaration strictly; ValueError or TypeError saying what is wrong."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(body) != fields:
            raise ValueError(f"an access is exactly {sorted(fields)}, not {sorted(body)}")
        texts = ("inspector", "command", "params", "output_sha256", "via")
        if any(not isinstance(body[k], str) or len(body[k].encode()) > MAX_FIELD for k in texts):
            raise TypeError(f"{', '.join(texts)} are text of at most {MAX_FIELD} bytes")
        if not isinstance(body["exit_code"], int) or not (body["rows"] is None or isinstance(body["rows"], int)):
            raise TypeError("exit_code is an integer, rows an integer or null")
        if not isinstance(json.loads(body["params"]), dict):
            raise TypeError("params is a JSON object")
        at = datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError("at needs an offset")
        return cls(**{**body, "at": at})


@dataclasses.dataclass(frozen=True)
class Entry:
    """One stored row of the access log."""

    seq: int
    prev_hash: str
    access: Access
    hash: str

    def row(self) -> dict[str, Any]:
        """The JSONEachRow row (``at`` in ClickHouse's text form, UTC)."""
        body = dataclasses.asdict(self.access)
        body["at"] = self.access.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return {"seq": self.seq, "prev_hash": self.prev_hash, **body, "hash": self.hash}


def stamp(at: datetime) -> str:
    """``at`` as the canonical encoding writes it (UTC, microseconds, ``Z``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(seq: int, prev_hash: str, access: Access) -> bytes:
    """The bytes an entry's hash is taken over (the module docstring describes them)."""
    body = {**dataclasses.asdict(access), "at": stamp(access.at), "seq": seq, "prev_hash": prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain(seq: int, prev_hash: str, access: Access) -> Entry:
    return Entry(seq, prev_hash, access, hashlib.sha256(canonical(seq, prev_hash, access)).hexdigest())


def exists(query: QueryFn) -> bool:
    """Whether the store has the access log (migration 0013)."""
    return bool(int(query(EXISTS_SQL, {})[0][0]))


def append(query: QueryFn, insert: InsertFn, access: Access) -> Entry:
    """Chain ``access`` after the last entry and store it; the stored entry comes back.

    Raises :class:`AccessLogError` when the log is missing, when a seq stays taken by others after
    :data:`ATTEMPTS` tries, or when an entry recorded before has disappeared.
    """
    if not exists(query):
        raise AccessLogError("the store has no access log (it predates migration 0013): run `dossier consume migrate`")
    for _ in range(ATTEMPTS):
        last = query(LAST_SQL, {})
        seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
        entry = chain(seq, prev, access)
        insert(_INSERT.format(seq=seq), json.dumps(entry.row(), ensure_ascii=False).encode() + b"\n")
        stored = {str(row[0]) for row in query(AT_SEQ_SQL, {"seq": seq})}
        if entry.hash in stored:
            return entry
        if not stored:
            raise AccessLogError(
                f"entry {seq} of the access log was recorded once and is gone (deleted?); "
                "run `dossier inspect access-log --verify` and keep the store as it is"
            )
    raise AccessLogError(f"could not take a place in the access log after {ATTEMPTS} tries (other inspectors); retry")
