"""Is this ``event_id`` already another event's? The loader's index of every stored id, in memory.

The contract makes ``event_id`` unique across the store. ``events`` is ordered by ``(dossier_id, seq)``, so the
stored event of an id is a scan away, and a lookup of a batch's random ids in a sorted index on disk touches most
of its granules once the store is large. The loader keeps instead the 64-bit ``sipHash64`` of every stored id in
memory (8 bytes an event: 80 MB for 10 million events, 2.2 GB for the city's year), as sorted NumPy runs:

* a batch's ids are looked up with one ``searchsorted`` per run (microseconds per thousand ids);
* only the ids of events about to be stored as new are looked up (a replayed event keeps its id legitimately), so
  a hit is an id reused by another event, or, rarely, two ids with the same 64-bit hash: the caller confirms
  each hit against ``events`` by the id itself before it refuses anything;
* sorted runs of geometrically decreasing size, as in a log-structured merge: the ids read from the store, then
  what was stored since; a batch's ids become a new run, and the last two runs are merged (a stable sort of two
  sorted runs is a linear merge) while the last is at least half the one before, so each id is merged
  O(log n) times and a lookup searches O(log n) runs. A batch is sorted before its lookup, so each search walks
  its run in order.

Start-up. Reading every stored id (``SELECT sipHash64(event_id) FROM events``) takes about 0.7 s a million
events, minutes for a year. So the index starts reading when it is made (the sink opens), in a thread, on a
reading session of its own, holding the store's write lock (the sink's ``STORE_LOCK``) until it is done: the read
overlaps the consumer group's join, and no batch is stored meanwhile. On an embedded store the index is saved next to it
(:mod:`consumers.eventidfile`, ``<data dir>/store.event-ids``) with exactly what it covers, and a start reads
that file and, from the store, only the parts numbered after it. Where the file cannot be proven to cover the
store (none, damaged, another format, the ``events`` table recreated, fewer rows than the file covered) or the
store is a server (other loaders may write it), the start reads every stored id; the log ``dossier.eventids``
says which at info level.

The index is saved after a start that read much, whenever what it covers has grown by :data:`SAVE_GROWTH` of it
(at least :data:`SAVE_MIN_ROWS` rows; in the background), and at close. Rows a mutation rewrote after the save (a
migration's, say) are in new parts that every start reads again: they count as grown, so the next save covers
them. It claims to cover only what it can prove: the embedded store has one writing process, every store went
through the lock, and ``events`` holds exactly the rows the index accounts for (the rows it read, and those
:meth:`EventIdIndex.add` was told were stored) with no mutation since. Otherwise nothing is saved, and the next
start reads what was stored since the last file (or everything).

The index covers what the store held when it was read and what this loader stored since: two loaders writing one
server at once do not see each other's new ids, and ``dossier inspect verify`` remains the check across the
whole store (``event-id-reused``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from consumers import eventidfile
from consumers.eventidfile import Coverage, Hashes, Saved
from dossier_runtime.errors import StoreError
from dossier_runtime.outfile import OutputFileError
from dossier_runtime.store import Store
from dossier_runtime.storebackends import ChdbBackend

log = logging.getLogger("dossier.eventids")

#: Save when what the index covers has grown by this share of what the saved file covers ...
SAVE_GROWTH: Final = 1 / 32
#: ... and by at least this many rows (reading a million ids from the store takes under a second).
SAVE_MIN_ROWS: Final = 1_000_000

_ALL: Final = "SELECT sipHash64(event_id) FROM events"
_NEWER: Final = f"SELECT sipHash64(event_id) FROM events WHERE {eventidfile.NEWER_PARTS}"  # noqa: S608  (constant SQL)
#: ``events`` seen from a mark; a part's number is the highest insert or mutation number it holds.
_STATE: Final = (
    "SELECT (SELECT toString(uuid) FROM system.tables WHERE database = currentDatabase() AND name = 'events'), "
    "sum(rows), max(greatest(max_block_number, toInt64(data_version))), "
    "sumIf(rows, greatest(max_block_number, toInt64(data_version)) <= {mark:Int64}), "
    "countIf(toInt64(data_version) != min_block_number AND toInt64(data_version) > {mark:Int64}), "
    "(SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'events' AND NOT is_done) "
    "FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active"
)


#: Hashes a read of the store takes before it sorts them into a run (128 MB): what bounds the memory of reading
#: every stored id. Read whole, the 285M ids of the city's year took 14 GB resident at the peak (the result in
#: chDB, in Arrow, as NumPy, sorted, and each run's binary search), over the 8 GiB a process may hold.
READ_CHUNK: Final = 16_000_000


def sorted_runs(
    store: Store, sql: str, parameters: Mapping[str, Any] | None = None, *, runs: list[Hashes] | None = None
) -> tuple[list[Hashes], int]:
    """The first column of ``sql`` (``sipHash64(event_id)``) streamed into sorted runs of :data:`READ_CHUNK` each
    (:func:`_append`), and how many rows it read. With ``runs``, a hash those runs (or the chunks before) already
    hold is not added again, and the new runs go into that list.

    One query, so one snapshot of the table, whatever the merges do meanwhile; memory is the runs plus a chunk.
    """
    out = runs if runs is not None else []
    dedupe = runs is not None
    read = 0
    pending: list[Hashes] = []
    held = 0

    def flush() -> None:
        nonlocal pending, held
        if not pending:
            return
        chunk = np.concatenate(pending) if len(pending) > 1 else pending[0].copy()
        pending, held = [], 0
        chunk.sort()
        _append(out, chunk[~_known(out, chunk)] if dedupe else chunk)

    for batch in store.query_batches(sql, parameters):
        if batch.num_rows == 0:
            continue
        column = np.asarray(batch.column(0).to_numpy(), dtype=np.uint64)
        read += len(column)
        pending.append(column)
        held += len(column)
        if held >= READ_CHUNK:
            flush()
    flush()
    return out, read


def hashes_of(store: Store, sql: str, parameters: Mapping[str, Any] | None = None) -> Hashes:
    """The first column of ``sql`` (``sipHash64(event_id)``) as a NumPy array."""
    table = store.query_arrow(sql, parameters)
    if table.num_rows == 0:
        return np.empty(0, dtype=np.uint64)
    return np.asarray(table.column(0).to_numpy(), dtype=np.uint64)


@dataclasses.dataclass(frozen=True)
class StoreState:
    """``events`` now, seen from ``mark``: its UUID, rows, highest part number, the rows of parts numbered at most
    ``mark``, parts a mutation rewrote after ``mark``, and mutations not finished."""

    table: str
    rows: int
    top: int
    rows_to_mark: int
    mutated: int
    pending: int

    @classmethod
    def of(cls, store: Store, mark: int) -> StoreState:
        table, rows, top, to_mark, mutated, pending = store.query(_STATE, {"mark": mark}).rows[0]
        return cls(str(table or ""), int(rows or 0), int(top or 0), int(to_mark or 0), int(mutated), int(pending))


@contextlib.contextmanager
def reading_session(store: Store) -> Iterator[Store]:
    """A reading session of its own on an embedded store, so that a long read in a thread does not hold up the
    queries of the store's own session (the sink's, as it opens); ``store`` itself otherwise."""
    local = store.local_path
    if local is None:
        yield store
        return
    session = Store(ChdbBackend(local, store.database, readonly=True), role="reader", location=store.location)
    try:
        yield session
    finally:
        session.close()


def _known(runs: Sequence[Hashes], keys: Hashes) -> npt.NDArray[np.bool_]:
    """Which of ``keys`` (sorted) a run holds."""
    found = np.zeros(len(keys), dtype=bool)
    for run in runs:
        if len(run):
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[at] == keys
    return found


def _append(runs: list[Hashes], run: Hashes) -> None:
    """Add a sorted run, merging the last two while the last is at least half the one before."""
    runs.append(run)
    while len(runs) > 1 and 2 * len(runs[-1]) >= len(runs[-2]):
        merged = np.concatenate([runs.pop(-2), runs.pop()])
        # Sorted in place, the two runs already released: at the peak about 1.5 times the merged run (the sort's
        # buffer), not 3 times (the runs, their concatenation and a sorted copy): 3.3 GB less at the city's year.
        merged.sort(kind="stable")
        runs.append(merged)


class EventIdIndex:
    """Hashes of every stored ``event_id`` (see the module docstring).

    ``lock``: the lock every store of events holds (the sink's ``STORE_LOCK``); the index takes it while it reads
    and saves, so the index must be made, and closed, by a thread that does not hold it, and :meth:`add` is
    called by one that does.
    """

    def __init__(self, store: Store, *, lock: threading.Lock | None = None) -> None:
        self.store = store
        self._lock = lock or threading.Lock()
        local = store.local_path if store.kind == "embedded" else None
        self.path = eventidfile.saved_path(local) if local is not None else None
        self._runs: list[Hashes] | None = None
        self._error: BaseException | None = None
        self._cover: Coverage | None = None  # what the store held when the index last proved it covers it ...
        self._added = 0  # ... and the rows stored since, as add() was told
        self._saved_rows = 0  # rows the file on disk covers
        self._on_disk = False
        self._reread = 0  # rows the start read from the store that the file on disk covered already (rewritten)
        self._writer: threading.Thread | None = None
        self._ready = threading.Event()  # the read is over (the save after it may still run)
        self._lock.acquire()  # released by the reading thread: no batch is stored before the index is read
        self._reader: threading.Thread | None = None
        if store.kind == "embedded":
            self._reader = threading.Thread(target=self._read_then_release, name="event-id-index", daemon=True)
            self._reader.start()
        else:  # a server's client is one session, which takes one query at a time: read here, before the sink's
            self._read_then_release()

    # -- reading -------------------------------------------------------------------------------------------------

    def _read_then_release(self) -> None:
        snapshot = None
        try:
            self._runs = self._read()
            snapshot = self._snapshot() if self._due() else None
        except BaseException as exc:  # handed to the thread that uses the index (_loaded)
            self._error = exc
        finally:
            self._lock.release()
            self._ready.set()
        if snapshot is not None:
            self._write(*snapshot)

    def _read(self) -> list[Hashes]:
        with reading_session(self.store) as store:
            return self._read_from(store)

    def _read_from(self, store: Store) -> list[Hashes]:
        started = time.monotonic()
        saved: Saved | str = "the store is a server (other loaders may write it)"
        if self.path is not None:
            eventidfile.remove_leftovers(self.path)
            saved = eventidfile.load(self.path)
        state = StoreState.of(store, saved.coverage.mark if isinstance(saved, Saved) else 0)
        why = self._unusable(saved, state)
        if isinstance(saved, Saved) and why is None:
            kept = sum(map(len, saved.runs))
            runs, newer = sorted_runs(store, _NEWER, {"mark": saved.coverage.mark}, runs=list(saved.runs))
            if newer + state.rows_to_mark >= state.rows:
                self._prove(state, read=state.rows)  # a merge meanwhile may have added older rows to the read
                self._saved_rows, self._on_disk = saved.coverage.rows, True
                # Rows the file held but a mutation rewrote since (e.g. a migration) are read again at every start
                # until a save covers their new parts: they count towards the next save like new rows.
                self._reread = max(0, newer - (state.rows - saved.coverage.rows))
                log.info(
                    "event-id index: %s ids from %s (it covers %s stored events), %s read from the store (stored "
                    "since: %s new ids) in %.2f s",
                    f"{kept:,}", self.path, f"{saved.coverage.rows:,}", f"{newer:,}",
                    f"{sum(map(len, runs)) - kept:,}", time.monotonic() - started,
                )  # fmt: skip
                return runs
            why = "the store changed while it was read"
        runs, read = sorted_runs(store, _ALL)
        self._prove(state, read=read)
        log.info(
            "event-id index: read every stored id (%s), %s ids in %.2f s", why, f"{read:,}",
            time.monotonic() - started,
        )  # fmt: skip
        return runs

    def _unusable(self, saved: Saved | str, state: StoreState) -> str | None:
        """Why ``saved`` does not provably cover the store (None: it does, up to its mark)."""
        if isinstance(saved, str):
            return saved
        cover = saved.coverage
        if cover.table != state.table:
            return f"{self.path} is of another events table (the table was recreated)"
        if state.rows < cover.rows:
            return f"the store holds {state.rows:,} events, fewer than the {cover.rows:,} {self.path} covers"
        if state.rows_to_mark > cover.rows:
            return f"the store's parts up to {self.path}'s mark hold more events than it covers"
        return None

    def _prove(self, state: StoreState, *, read: int) -> None:
        """The index holds every row of ``state`` (``read`` rows accounted for): remember it, when provable."""
        if self.path is None or state.pending or read != state.rows or not state.table:
            self._cover = None
            if self.path is not None:
                log.info("event-id index: not saved (a mutation of events is running, or the store changed)")
            return
        self._cover = Coverage(state.table, state.top, state.rows)
        self._added = 0

    def _loaded(self) -> list[Hashes]:
        if self._runs is None:
            self._ready.wait()
            if self._error is not None:
                raise self._error
            assert self._runs is not None
        return self._runs

    # -- lookups -------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(run) for run in self._loaded())

    def hits(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """Which of ``hashes`` an indexed id has (a hash equal to a stored one: confirm by the id itself)."""
        order = np.argsort(hashes)
        found = _known(self._loaded(), hashes[order])
        out = np.empty_like(found)
        out[order] = found
        return out

    def add(self, hashes: Hashes) -> None:
        """Index the ids of events just stored (one hash per stored row; the caller holds the lock)."""
        runs = self._loaded()
        if len(hashes) == 0:
            return
        _append(runs, np.sort(hashes))
        self._added += len(hashes)
        if self._due() and (self._writer is None or not self._writer.is_alive()):
            try:
                snapshot = self._snapshot()
            except StoreError as exc:  # the batch is stored: a save that cannot be proven is only skipped
                log.info("event-id index: not saved (%s)", exc)
                self._cover = None
                return
            if snapshot is not None:
                self._writer = threading.Thread(target=self._write, args=snapshot, name="event-id-save", daemon=True)
                self._writer.start()

    # -- saving --------------------------------------------------------------------------------------------------

    def _due(self) -> bool:
        """Whether to save: nothing saved yet, or what the index covers grew by a share of what the file covers."""
        if self._cover is None or self.path is None:
            return False
        grown = self._cover.rows + self._added - self._saved_rows + self._reread
        return not self._on_disk or grown >= max(SAVE_MIN_ROWS, int(SAVE_GROWTH * self._saved_rows))

    def _snapshot(self) -> tuple[Coverage, list[Hashes]] | None:
        """What the index provably covers now, with its runs (which are never changed, only replaced), or None."""
        cover = self._cover
        if cover is None:
            return None
        if self._added:
            state = StoreState.of(self.store, cover.mark)
            accounted = cover.rows + self._added
            if state.table != cover.table or state.pending or state.mutated or state.rows != accounted:
                log.info(
                    "event-id index: not saved (the store holds %s events, the index accounts for %s, or events was "
                    "mutated): the next start reads what was stored after the saved index",
                    f"{state.rows:,}", f"{accounted:,}",
                )  # fmt: skip
                self._cover = None
                return None
            self._prove(state, read=state.rows)
        assert self._runs is not None and self._cover is not None
        self._saved_rows, self._on_disk, self._reread = self._cover.rows, True, 0  # claimed now: one writer for it
        return self._cover, list(self._runs)

    def _write(self, cover: Coverage, runs: list[Hashes]) -> None:
        assert self.path is not None
        started = time.monotonic()
        try:
            eventidfile.save(self.path, cover, runs)
        except OutputFileError as exc:
            log.info("event-id index: not saved (%s); the next start reads the store", exc)
            return
        log.info(
            "event-id index: saved %s ids covering %s events to %s in %.2f s",
            f"{sum(map(len, runs)):,}", f"{cover.rows:,}", self.path, time.monotonic() - started,
        )  # fmt: skip

    def close(self) -> None:
        """Save what the index covers when that is due (call it without holding the lock)."""
        if self._reader is not None:
            self._reader.join()
        if self._writer is not None:
            self._writer.join()
        with self._lock:
            try:
                snapshot = self._snapshot() if self._runs is not None and self._due() else None
            except StoreError as exc:
                log.info("event-id index: not saved (%s)", exc)
                return
        if snapshot is not None:
            self._write(*snapshot)


__all__ = ["SAVE_GROWTH", "SAVE_MIN_ROWS", "EventIdIndex", "Hashes", "StoreState", "hashes_of"]
