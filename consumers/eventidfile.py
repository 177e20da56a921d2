"""The loader's event-id index saved next to the embedded store, and exactly what it covers.

Reading every stored id takes minutes at a year's store size, so a loader saves its index
(:mod:`consumers.eventids`) as ``<data dir>/store.event-ids`` and the next start reads the file and, from the
store, only what was stored after it. The file is untrusted input: anything that is not provably a whole file of
this format, for this ``events`` table, gives a reason instead (the caller then reads the store), never an
exception or a wrong index.

What a file covers is said in MergeTree's own numbering. Every insert (and every mutation) of a plain MergeTree
table takes a new number from the table's one counter; a part is named after the range of insert numbers it holds
and the mutation version applied to it (``<partition>_<min>_<max>_<level>[_<mutation>]``), and a merge keeps the
range. So "every row of a part whose numbers are all at most ``mark`` has its hash in the file" stays true while
parts merge, and a row stored, or rewritten by a mutation, after the file was written is in a part with a number
above ``mark``: that is what the next start reads (:data:`NEWER_PARTS`). ``table`` (the UUID of ``events``)
tells a recreated table, whose counter starts again, from the one the file describes; ``rows`` is how many rows
``events`` held then.

Layout: :data:`MAGIC`, one line of JSON (``format``, ``hash``, ``table``, ``mark``, ``rows``, ``runs``: the
length of each sorted run, ``sha256`` of what follows), then the runs' hashes as little-endian ``uint64``,
one run after the other. Written whole or not at all (:func:`dossier_runtime.outfile.atomic_output`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from dossier_runtime.outfile import TMP_SUFFIX, atomic_output

Hashes = npt.NDArray[np.uint64]

MAGIC: Final = b"dossier-audit event-id index\n"
FORMAT: Final = 1
#: What each value of the file is the hash of; a file of another hash is not this index.
HASH: Final = "sipHash64(event_id)"
SUFFIX: Final = ".event-ids"
_HEADER_MAX: Final = 64 * 1024
_MAX_RUNS: Final = 128
_CHUNK: Final = 1 << 22  # values per step when hashing, reading and checking order
_DTYPE: Final = np.dtype("<u8")
_writing: dict[Path, int] = {}  # paths this process is writing now (their temporary files are not leftovers)
_writing_lock = threading.Lock()

#: The rows of ``events`` stored, or rewritten, after a file of ``mark`` was written (see the module docstring).
#: Partition ids never contain ``_``, so the name's fields are counted from the left.
NEWER_PARTS: Final = (
    "greatest(toInt64(splitByChar('_', _part)[3]), "
    "toInt64(if(length(splitByChar('_', _part)) >= 5, splitByChar('_', _part)[5], '0'))) > {mark:Int64}"
)


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Every row of table ``table``'s parts numbered at most ``mark`` is indexed; the table held ``rows`` rows."""

    table: str
    mark: int
    rows: int


@dataclasses.dataclass(frozen=True)
class Saved:
    coverage: Coverage
    runs: list[Hashes]


def saved_path(local_path: Path) -> Path:
    """Where the index of the embedded store in ``local_path`` (``<data dir>/store``) is saved."""
    return local_path.with_name(local_path.name + SUFFIX)


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of saved index: its first line, what its values are (a file saying otherwise is not this index), and
    how many of its first runs are sorted (the rest, e.g. values paired with a sorted run, are not)."""

    magic: bytes
    hash: str
    what: str
    sorted_runs: int | None = None  # None: every run


EVENT_IDS: Final = Kind(MAGIC, HASH, "an event-id index")


def save(path: Path, coverage: Coverage, runs: Sequence[Hashes], kind: Kind = EVENT_IDS) -> None:
    """Write ``runs`` (each sorted, unless ``kind`` says otherwise) with their coverage to ``path``, whole or not at
    all.

    Raises :class:`dossier_runtime.outfile.OutputFileError` when the disk refuses it.
    """
    digest = hashlib.sha256()
    for run in runs:
        for view in _chunks(run):
            digest.update(view)
    header = {
        "format": FORMAT,
        "hash": kind.hash,
        "table": coverage.table,
        "mark": coverage.mark,
        "rows": coverage.rows,
        "runs": [len(run) for run in runs],
        "sha256": digest.hexdigest(),
    }
    with _writing_lock:
        _writing[path] = _writing.get(path, 0) + 1
    try:
        with atomic_output(path, binary=True) as out:
            out.write(kind.magic + json.dumps(header, separators=(",", ":")).encode() + b"\n")
            for run in runs:
                for view in _chunks(run):
                    out.write(view)
    finally:
        with _writing_lock:
            _writing[path] -= 1
            if not _writing[path]:
                del _writing[path]


def load(path: Path, kind: Kind = EVENT_IDS) -> Saved | str:
    """The index saved in ``path``, or why there is none to use (missing, damaged, another format)."""
    try:
        with path.open("rb") as handle:
            return _parse(handle, os.fstat(handle.fileno()).st_size, kind)
    except FileNotFoundError:
        return f"no saved index ({path.name})"
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror or exc})"
    except MemoryError:
        return f"{path.name} does not fit in memory"


def _parse(handle: Any, size: int, kind: Kind) -> Saved | str:
    name = Path(handle.name).name
    if handle.read(len(kind.magic)) != kind.magic:
        return f"{name} is not {kind.what}"
    line = handle.readline(_HEADER_MAX)
    if not line.endswith(b"\n"):
        return f"{name} is damaged (no header)"
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return f"{name} is damaged (header)"
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("hash") != kind.hash:
        return f"{name} was written in another format"
    coverage = _coverage(header)
    lengths = header.get("runs")
    digest = header.get("sha256")
    if (
        coverage is None
        or not isinstance(digest, str)
        or not isinstance(lengths, list)
        or len(lengths) > _MAX_RUNS
        or not all(type(n) is int and n >= 0 for n in lengths)
    ):
        return f"{name} is damaged (header)"
    if size != len(kind.magic) + len(line) + 8 * sum(lengths):
        return f"{name} is damaged (its size is not what its header says)"
    check = hashlib.sha256()
    runs = []
    for length in lengths:
        run = np.empty(length, dtype=_DTYPE)
        for view in _chunks(run):
            if handle.readinto(view) != len(view):
                return f"{name} is damaged (shorter than its header says)"
            check.update(view)
        runs.append(run.astype(np.uint64, copy=False))
    if check.hexdigest() != digest:
        return f"{name} is damaged (checksum)"
    if not all(_is_sorted(run) for run in runs[: kind.sorted_runs]):
        return f"{name} is damaged (a run out of order)"
    return Saved(coverage, runs)


def _coverage(header: dict[str, Any]) -> Coverage | None:
    table, mark, rows = header.get("table"), header.get("mark"), header.get("rows")
    if not isinstance(table, str) or not table or type(mark) is not int or type(rows) is not int:
        return None
    return Coverage(table, mark, rows) if mark >= 0 and rows >= 0 else None


def _chunks(run: Hashes) -> list[memoryview]:
    """``run``'s bytes in pieces (hashing and file I/O release the GIL per piece; no copy of the run)."""
    data = memoryview(np.ascontiguousarray(run, dtype=_DTYPE).data).cast("B")
    step = 8 * _CHUNK
    return [data[i : i + step] for i in range(0, len(data), step)]


def _is_sorted(run: Hashes) -> bool:
    for start in range(0, max(len(run) - 1, 0), _CHUNK):
        end = min(start + _CHUNK + 1, len(run))
        if not bool((run[start + 1 : end] >= run[start : end - 1]).all()):
            return False
    return True


def remove_leftovers(path: Path) -> None:
    """Remove half-written copies of ``path`` that a killed process left (the writer's temporary names)."""
    with _writing_lock:
        if path in _writing:
            return
        for leftover in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()


__all__ = [
    "FORMAT",
    "HASH",
    "MAGIC",
    "NEWER_PARTS",
    "Coverage",
    "Saved",
    "load",
    "remove_leftovers",
    "save",
    "saved_path",
]
