"""Is this batch beyond what the store holds of its dossiers? The loader's index of each dossier's highest ``seq``.

A batch takes the sink's fast path only when every event of it is beyond the highest ``seq`` the store holds for
its dossier (:mod:`consumers.sink`, step 2). Asked of ``dossier_state``, that question reads, once the store is
large, nearly every granule of its ``dossier_id`` column: a live batch's ~9,000 dossiers are spread over the whole
key range, so at the city's year (22.5 million dossiers, ~2,750 granules) each batch read most of them, 0.58-0.61 s a
batch against 0.05-0.09 s at 3 million events (``BENCHMARKS.md``, "The year").

On the embedded store the loader keeps instead, per dossier, the 64-bit ``sipHash64`` of its id and its highest
stored ``seq`` (saturated at 2**32 - 1), as sorted NumPy runs: 12 bytes a dossier, 270 MB for the year. A batch's
dossiers are summarised by ClickHouse (hash, lowest and highest ``seq``) and looked up with one ``searchsorted`` per
run. Every way the index can be wrong makes a batch look *behind*, which only sends it down the exact path:

* two dossiers with one hash share one entry, the higher ``seq`` of the two;
* a ``seq`` of 2**32 - 1 or beyond is remembered as 2**32 - 1, and read back as beyond any other;
* after a batch down the exact path, the index takes the highest ``seq`` of every dossier of the batch, stored
  or not (an invalid or conflicting event included).

What it must never do is know less than the store. It is read from ``dossier_state`` (which never knows less than
``events``: every path feeds it first) in the background, from the moment the sink opens, after noting what
``events`` holds; the batches stored during the read ask ``dossier_state`` and are added to the index when the read
is over. Before each batch it proves it still covers the store: ``events`` is the same table and holds exactly the
rows it held as the read started plus those the sink stored since, with no mutation running. Anything else (a
write by another process or another sink, even during the read; a batch that failed half-way; a mutation)
discards it: that batch asks ``dossier_state``, and the index is read again. A sink whose index is discarded twice
keeps asking ``dossier_state``.

Reading all of ``dossier_state`` takes seconds at the year (22.7M rows), so the index is saved next to the store
(:data:`SUFFIX`) after a full read and at close, when it covers the store; a start reads the file and, from
``dossier_state``, only the rows of parts numbered after it, as the event-id index does
(:mod:`consumers.eventidfile`). The file is as trusted as the store beside it; damage (its checksum, its size, its
order) or another ``dossier_state`` table gives a full read.

On a server other loaders write the same tables, so the index could seldom be proven; the sink asks the server.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Final

import numpy as np
import numpy.typing as npt

from consumers import eventidfile
from consumers.eventidfile import Saved
from consumers.eventids import reading_session
from dossier_runtime.errors import StoreError
from dossier_runtime.outfile import OutputFileError
from dossier_runtime.store import Store

log = logging.getLogger("dossier.dossierseqs")

Keys = npt.NDArray[np.uint64]
Seqs = npt.NDArray[np.uint32]

SEQ_CEILING: Final = np.iinfo(np.uint32).max
#: After this many discards a sink stops reading the index again.
MAX_DISCARDS: Final = 2
#: Whether sinks on an embedded store use the index (benchmarks compare with and without).
USE_INDEX = True

_EVENTS: Final = (
    "SELECT (SELECT toString(uuid) FROM system.tables WHERE database = currentDatabase() AND name = 'events'), "
    "sum(rows), "
    "(SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'events' AND NOT is_done) "
    "FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active"
)
_STORED: Final = f"SELECT sipHash64(dossier_id), toUInt32(least(greatest(seq, 0), {SEQ_CEILING})) FROM dossier_state"  # noqa: S608  (constant SQL)


_DOSSIER_STATE: Final = (
    "SELECT (SELECT toString(uuid) FROM system.tables WHERE database = currentDatabase() AND name = 'dossier_state'), "
    "max(greatest(max_block_number, toInt64(data_version))), sum(rows) "
    "FROM system.parts WHERE database = currentDatabase() AND table = 'dossier_state' AND active"
)
_NEWER: Final = f"{_STORED} WHERE {eventidfile.NEWER_PARTS}"
#: The index saved next to the embedded store, ``<data dir>/store.dossier-seqs``: the dossier hashes (a sorted run)
#: then their seqs, in :mod:`consumers.eventidfile`'s layout; what it covers is said in ``dossier_state``'s
#: numbering (every row of its parts numbered at most the mark is known), and the next start reads the rows of the
#: parts numbered after it. A damaged file, or one of another ``dossier_state`` table, gives a full read.
SUFFIX: Final = ".dossier-seqs"
KIND: Final = eventidfile.Kind(
    b"dossier-audit dossier index\n", "sipHash64(dossier_id), highest seq", "a dossier index", sorted_runs=1
)


@dataclasses.dataclass(frozen=True)
class Run:
    """Dossier hashes, sorted and unique, each with the highest ``seq`` known for it."""

    keys: Keys
    seqs: Seqs

    def __len__(self) -> int:
        return len(self.keys)


def run_of(keys: npt.ArrayLike, seqs: npt.ArrayLike) -> Run:
    """A run from pairs in any order, repeats allowed: one entry per hash, the highest ``seq`` (saturated)."""
    k = np.asarray(keys, dtype=np.uint64)
    s = np.asarray(seqs)
    if s.dtype != np.uint32:
        s = np.clip(s.astype(np.int64), 0, SEQ_CEILING).astype(np.uint32)
    if len(k) == 0:
        return Run(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint32))
    order = np.argsort(k)  # any order among equal hashes: they keep the highest seq
    k, s = k[order], s[order]
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    return Run(k[starts], np.maximum.reduceat(s, starts))


def _merge(a: Run, b: Run) -> Run:
    return run_of(np.concatenate([a.keys, b.keys]), np.concatenate([a.seqs, b.seqs]))


def _seqs_of(values: npt.NDArray[np.uint64]) -> Seqs:
    return np.minimum(values, SEQ_CEILING).astype(np.uint32)


def _read_run(session: Store, sql: str, parameters: dict[str, int]) -> Run:
    """The (hash, seq) pairs ``sql`` selects, streamed, as a run."""
    keys, seqs = [], []
    for batch in session.query_batches(sql, parameters):
        keys.append(np.asarray(batch.column(0).to_numpy(), dtype=np.uint64))
        seqs.append(np.asarray(batch.column(1).to_numpy(), dtype=np.uint32))
    if not keys:
        return run_of([], [])
    return run_of(np.concatenate(keys), np.concatenate(seqs))


def _unusable(saved: Saved | str, table: str, top: int) -> str | None:
    """Why ``saved`` is not this store's dossier index (None: it is, up to its mark)."""
    if isinstance(saved, str):
        return saved
    keys, seqs = saved.runs if len(saved.runs) == 2 else (None, None)
    if keys is None or seqs is None or len(keys) != len(seqs):
        return "the saved dossier index is damaged (its runs)"
    if saved.coverage.table != table:
        return "the saved dossier index is of another dossier_state table (the table was recreated)"
    if saved.coverage.mark > top:
        return "the saved dossier index claims parts dossier_state does not have"
    return None


class DossierSeqs:
    """The highest ``seq`` known for each dossier hash, as sorted runs merged as in a log-structured merge."""

    def __init__(self, first: Run | None = None) -> None:
        self.runs: list[Run] = [first] if first is not None and len(first) else []

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    def highest(self, keys: Keys) -> npt.NDArray[np.int64]:
        """The highest ``seq`` known for each of ``keys`` (sorted), -1 where none is, the largest Int64 where the
        known one was saturated."""
        out = np.full(len(keys), -1, dtype=np.int64)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run.keys, keys), len(run) - 1)
            hit = run.keys[at] == keys
            out[hit] = np.maximum(out[hit], run.seqs[at[hit]])
        out[out == SEQ_CEILING] = np.iinfo(np.int64).max  # saturated: any seq may be stored
        return out

    def behind(self, keys: Keys, lowest: npt.ArrayLike) -> int:
        """How many of the dossiers ``keys`` (sorted) have a batch whose ``lowest`` seq is not beyond the known."""
        return int(np.count_nonzero(np.asarray(lowest, dtype=np.int64) <= self.highest(keys)))

    def add(self, run: Run) -> None:
        """Take a run: merge the last two runs while the last is at least half the one before."""
        if not len(run):
            return
        runs = self.runs
        runs.append(run)
        while len(runs) > 1 and 2 * len(runs[-1]) >= len(runs[-2]):
            last = runs.pop()
            runs.append(_merge(runs.pop(), last))


@dataclasses.dataclass(frozen=True)
class EventsState:
    """``events`` now: its UUID, rows, and mutations not finished."""

    table: str
    rows: int
    pending: int

    @classmethod
    def of(cls, store: Store) -> EventsState:
        table, rows, pending = store.query(_EVENTS).rows[0]
        return cls(str(table or ""), int(rows or 0), int(pending or 0))


class DossierSeqIndex:
    """A sink's index of each dossier's highest stored ``seq`` (see the module docstring).

    ``lock``: the lock every store of events holds (the sink's ``STORE_LOCK``); :meth:`covering` and :meth:`stored`
    are called holding it. The index is read in a thread, on a reading session of its own, when made and after each
    discard; until the read is over, :meth:`covering` says None (the batch asks ``dossier_state``) and the batches
    stored meanwhile are kept, to be added to what was read. The thread holds the lock only to note what ``events``
    holds as the read starts (when it is free) and to take the read in, so no batch waits for the read.
    """

    def __init__(self, store: Store, *, lock: threading.Lock | None = None) -> None:
        self.store = store
        self._lock = lock or threading.Lock()
        self.enabled = USE_INDEX and store.kind == "embedded"
        self._seqs: DossierSeqs | None = None
        self._state: EventsState | None = None  # events as the read started ...
        self._added = 0  # ... and the rows stored since
        self._unsaved = False  # the index knows what its saved file does not
        local = store.local_path if store.kind == "embedded" else None
        self.path = local.with_name(local.name + SUFFIX) if local is not None else None
        if self.path is not None:
            eventidfile.remove_leftovers(self.path)
        self._meanwhile: list[tuple[Run, int]] | None = None  # batches stored during a read
        self.discards = 0
        self._reader: threading.Thread | None = None
        self._read_in_background(wait_for_lock=False)

    def _read_in_background(self, *, wait_for_lock: bool) -> None:
        if self.enabled:
            self._reader = threading.Thread(target=self._read, args=(wait_for_lock,), name="dossier-index", daemon=True)
            self._reader.start()

    def covering(self) -> DossierSeqs | None:
        """The index, proven to cover the store now, or None: ask ``dossier_state``."""
        if self._seqs is None:
            return None
        state = EventsState.of(self.store)
        known = self._state
        if self._proven(state):
            return self._seqs
        log.info(
            "dossier index: discarded (events holds %s rows, the index accounts for %s%s)",
            f"{state.rows:,}", f"{(known.rows if known else 0) + self._added:,}",
            ", a mutation is running" if state.pending else "",
        )  # fmt: skip
        self._seqs = None
        self.discards += 1
        if self.discards >= MAX_DISCARDS:
            self.enabled = False
            log.info("dossier index: discarded %d times; this loader asks dossier_state", self.discards)
        self._read_in_background(wait_for_lock=True)  # after the batch that discarded it
        return None

    def _proven(self, state: EventsState) -> bool:
        """Whether ``events``, now ``state``, holds exactly the rows the index accounts for."""
        known = self._state
        accounted = (known.table, known.rows + self._added, 0) if known is not None else None
        return (state.table, state.rows, state.pending) == accounted

    def _read(self, wait_for_lock: bool) -> None:
        started = time.monotonic()
        try:
            with reading_session(self.store) as session:
                # What events holds, noted under the store's lock. At a sink's start only when it is free: the
                # event-id index holds it while it reads, and nothing is stored; waiting would only put this read
                # after that one. A batch stored while this is noted without the lock can only make the proof
                # fail (the index is then read again), never pass wrongly. A read again after a discard waits
                # for the batch that discarded it.
                free = self._lock.acquire(blocking=wait_for_lock)
                try:
                    self._meanwhile = []
                    state = EventsState.of(session)
                    table, top, held = session.query(_DOSSIER_STATE).rows[0]
                finally:
                    if free:
                        self._lock.release()
                if state.pending:
                    log.info("dossier index: not read (a mutation of events is running)")
                    return
                saved = eventidfile.load(self.path, KIND) if self.path is not None else "the store is a server"
                why = _unusable(saved, str(table or ""), int(top or 0))
                if isinstance(saved, Saved) and why is None:
                    newer = _read_run(session, _NEWER, {"mark": saved.coverage.mark})
                    seqs_index = DossierSeqs(Run(saved.runs[0], _seqs_of(saved.runs[1])))
                    seqs_index.add(newer)
                    said = (
                        f"{len(saved.runs[0]):,} dossiers from {self.path}, {len(newer):,} from parts stored after it"
                    )
                    to_save, unsaved = None, len(newer) > 0
                else:
                    run = _read_run(session, _STORED, {})
                    seqs_index = DossierSeqs(run)
                    said = f"{len(run):,} dossiers read from dossier_state ({why})"
                    cover = eventidfile.Coverage(str(table or ""), int(top or 0), int(held or 0))
                    to_save, unsaved = (cover, run), False
        except StoreError as exc:
            log.info("dossier index: not read (%s)", exc)
            return
        finally:
            with self._lock:
                meanwhile, self._meanwhile = self._meanwhile or [], None
        for each, _rows in meanwhile:
            seqs_index.add(each)
        with self._lock:
            self._seqs, self._state, self._added = seqs_index, state, sum(n for _run, n in meanwhile)
            self._unsaved = unsaved or bool(meanwhile)
        log.info("dossier index: %s in %.2f s", said, time.monotonic() - started)
        if to_save is not None and table:
            self._save(*to_save)

    def _save(self, cover: eventidfile.Coverage, run: Run) -> None:
        if self.path is None or not cover.table:
            return
        started = time.monotonic()
        try:
            eventidfile.save(self.path, cover, [run.keys, run.seqs.astype(np.uint64)], KIND)
        except OutputFileError as exc:
            log.info("dossier index: not saved (%s); the next start reads dossier_state", exc)
            return
        log.info(
            "dossier index: saved %s dossiers to %s in %.2f s", f"{len(run):,}", self.path, time.monotonic() - started
        )

    def tracking(self) -> bool:
        """Whether :meth:`stored` is to be told of the batch now being stored (the index is read, or being read)."""
        return self._seqs is not None or self._meanwhile is not None

    def stored(self, run: Run, rows: int) -> None:
        """A batch was stored: ``rows`` rows into ``events``; ``run``, at least the highest seq of each dossier."""
        if self._meanwhile is not None:
            self._meanwhile.append((run, rows))
        elif self._seqs is not None:
            self._seqs.add(run)
            self._added += rows
            self._unsaved = True

    def wait(self) -> None:
        """Until the read under way, if any, is over."""
        if self._reader is not None:
            self._reader.join()

    def close(self) -> None:
        """Save the index when it covers the store and knows more than its file (call it without the lock)."""
        self.wait()
        with self._lock:
            try:
                seqs = self._seqs if self._unsaved and self._proven(EventsState.of(self.store)) else None
                if seqs is not None:
                    table, top, held = self.store.query(_DOSSIER_STATE).rows[0]
                    cover = eventidfile.Coverage(str(table or ""), int(top or 0), int(held or 0))
            except StoreError as exc:  # closing after a failure: the error that ended the run is the one to say
                log.info("dossier index: not saved (%s)", exc)
                seqs = None
        if seqs is not None:
            run = seqs.runs[0]
            for each in seqs.runs[1:]:
                run = _merge(run, each)
            self._save(cover, run)
        self._seqs = None
