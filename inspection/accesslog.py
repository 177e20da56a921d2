"""Reading and proving the access log: who ran which ``dossier inspect`` command against this store.

Every command that reaches the store through :func:`inspection.cliutil.reader` is recorded after it ran
(:mod:`inspection.cli_access` records it, :mod:`dossier_runtime.accessrecord` chains and appends it). This
module lists the entries, recomputes the chain (:func:`verify`), and gives the head a signed digest covers
(:func:`head`). docs/access-log.md describes the whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from dossier_runtime.accessrecord import GENESIS, Access, Entry, chain
from dossier_runtime.store import Store

ENTRY_COLUMNS: Final = (
    "seq",
    "at",
    "inspector",
    "command",
    "params",
    "exit_code",
    "rows",
    "output_sha256",
    "via",
    "prev_hash",
    "hash",
)
FINDING_COLUMNS: Final = ("kind", "seq", "detail")

#: Parameters never recorded, only that they were given: anything named like a secret.
SECRET_PARAM: Final = re.compile(r"(password|secret|token|key)$|passphrase", re.I)
#: Free text that may carry clear personal data (an inspector's SQL and its values): recorded as SHA-256.
FREE_TEXT_PARAMS: Final = {"sql": frozenset({"query", "param_pairs"})}
WITHHELD: Final = "(withheld)"

_HEAD_SQL: Final = "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1"
_EXISTS_SQL: Final = "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'access_log'"
_ENTRIES_SQL: Final = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM access_log ORDER BY seq, hash"  # noqa: S608


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something the chain does not prove: a gap, a fork, a broken link or an altered entry."""

    kind: str  # missing | duplicate | link | altered
    seq: int
    detail: str

    def row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def recorded_params(command: str, params: Mapping[str, Any]) -> str:
    """The parameters of ``command`` as the access log keeps them: canonical JSON, secrets withheld.

    Values are as parsed (paths and dates as text); unset ones are left out. Free text is kept as
    ``sha256:<hex>`` of its UTF-8, so a statement shown later can be matched against the log.
    """
    kept: dict[str, Any] = {}
    for name, value in sorted(params.items()):
        if value is None or value == () or value is False:
            continue
        if SECRET_PARAM.search(name):
            kept[name] = WITHHELD
        elif name in FREE_TEXT_PARAMS.get(command, ()):
            kept[name] = _hashed(value)
        else:
            kept[name] = _plain(value)
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hashed(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_hashed(v) for v in value]
    return "sha256:" + hashlib.sha256(str(value).encode("utf-8", "backslashreplace")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def has_log(store: Store) -> bool:
    return bool(int(store.query(_EXISTS_SQL).scalar() or 0))


def head(store: Store) -> tuple[int, bytes] | None:
    """(seq of the last entry, its hash as 32 bytes): what a digest of the store commits to.

    In an intact log the seq is the number of entries. An empty log gives ``(0, 32 zero bytes)`` (the first
    entry's ``prev_hash``); a store without an access log (older than migration 0013) gives None.
    """
    if not has_log(store):
        return None
    rows = store.query(_HEAD_SQL).rows
    if not rows:
        return 0, bytes.fromhex(GENESIS)
    return int(rows[0][0]), bytes.fromhex(str(rows[0][1]))


def entries(store: Store) -> list[dict[str, Any]]:
    """Every entry by seq, as named rows."""
    return store.query(_ENTRIES_SQL).named()


def verify(rows: Sequence[dict[str, Any]]) -> list[Finding]:
    """Recompute the chain over ``rows`` (by seq): every seq from 1 once, every link, every hash.

    A deleted entry shows as a missing seq (and the next one's link); an entry altered in place shows as
    altered (its hash is not the hash of its fields); one rewritten with a recomputed hash breaks the next
    entry's link. A deleted last entry leaves no trace here: a digest's head (:func:`head`) catches it.
    """
    found: list[Finding] = []
    expected, prev = 1, GENESIS
    for row in rows:
        seq = int(row["seq"])
        if seq < expected:
            found.append(Finding("duplicate", seq, f"a second entry {seq} (a fork of the chain): {row['hash']}"))
            continue
        if seq > expected:
            span = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            found.append(Finding("missing", expected, f"entries {span} are missing (deleted?)"))
        entry = _entry(row)
        if entry.prev_hash != prev and seq == expected:
            found.append(Finding("link", seq, f"prev_hash {entry.prev_hash} is not entry {seq - 1}'s hash {prev}"))
        recomputed = chain(seq, entry.prev_hash, entry.access).hash
        if recomputed != entry.hash:
            found.append(Finding("altered", seq, f"stored hash {entry.hash}, its fields hash to {recomputed}"))
        expected, prev = seq + 1, entry.hash
    return found


def _entry(row: dict[str, Any]) -> Entry:
    access = Access(
        at=row["at"],
        inspector=str(row["inspector"]),
        command=str(row["command"]),
        params=str(row["params"]),
        exit_code=int(row["exit_code"]),
        rows=None if row["rows"] is None else int(row["rows"]),
        output_sha256=str(row["output_sha256"]),
        via=str(row["via"]),
    )
    return Entry(int(row["seq"]), str(row["prev_hash"]), access, str(row["hash"]))
