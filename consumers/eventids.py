"""Is this ``event_id`` already another event's? The loader's index of every stored id, in memory.

The contract makes ``event_id`` unique across the store. ``events`` is ordered by ``(dossier_id, seq)``, so the
stored event of an id is a scan away, and a lookup of a batch's random ids in a sorted index on disk touches most
of its granules once the store is large. The loader keeps instead the 64-bit ``sipHash64`` of every stored id in
memory (8 bytes an event: 80 MB for 10 million events, 2.2 GB for the city's year), as sorted NumPy runs:

* a batch's ids are looked up with one ``searchsorted`` per run (microseconds per thousand ids);
* only the ids of events about to be stored as new are looked up (a replayed event keeps its id legitimately), so
  a hit is an id reused by another event, or, rarely, two ids with the same 64-bit hash: the caller confirms
  each hit against ``events`` by the id itself before it refuses anything;
* two sorted runs: the ids read from the store and merged since (``main``), and the ids stored recently
  (``recent``, small enough to stay in the processor's cache); ``recent`` is merged into ``main`` (a stable sort
  of two sorted runs is a linear merge) once it holds an eighth of it, so each id is merged a few times at most.
  A batch is sorted before its lookup, so the searches walk ``main`` in order.

The index is read from the store at the first lookup (``SELECT sipHash64(event_id) FROM events``). It covers what
the store held then and what this loader stored since: two loaders writing one server at once do not see each
other's new ids, and ``dossier inspect verify`` remains the check across the whole store (``event-id-reused``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from dossier_runtime.store import Store

#: ``recent`` is merged into ``main`` once it holds this share of it (and at least RECENT_MIN ids).
RECENT_SHARE: Final = 8
RECENT_MIN: Final = 1 << 20

Hashes = npt.NDArray[np.uint64]


def hashes_of(store: Store, sql: str, parameters: Mapping[str, Any] | None = None) -> Hashes:
    """The first column of ``sql`` (``sipHash64(event_id)``) as a NumPy array."""
    table = store.query_arrow(sql, parameters)
    if table.num_rows == 0:
        return np.empty(0, dtype=np.uint64)
    return np.asarray(table.column(0).to_numpy(), dtype=np.uint64)


class EventIdIndex:
    """Hashes of every stored ``event_id`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._main: Hashes | None = None
        self._recent: Hashes = np.empty(0, dtype=np.uint64)

    def _loaded(self) -> Hashes:
        if self._main is None:
            self._main = np.sort(hashes_of(self.store, "SELECT sipHash64(event_id) FROM events"))
        return self._main

    def __len__(self) -> int:
        return len(self._loaded()) + len(self._recent)

    def hits(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """Which of ``hashes`` an indexed id has (a hash equal to a stored one: confirm by the id itself)."""
        order = np.argsort(hashes)
        keys = hashes[order]
        found = np.zeros(len(keys), dtype=bool)
        for run in (self._loaded(), self._recent):
            if len(run):
                at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
                found |= run[at] == keys
        out = np.empty_like(found)
        out[order] = found
        return out

    def add(self, hashes: Hashes) -> None:
        """Index the ids of events just stored."""
        if len(hashes) == 0:
            return
        main = self._loaded()
        self._recent = np.sort(np.concatenate([self._recent, np.sort(hashes)]), kind="stable")
        if len(self._recent) >= max(len(main) // RECENT_SHARE, RECENT_MIN):
            self._main = np.sort(np.concatenate([main, self._recent]), kind="stable")
            self._recent = np.empty(0, dtype=np.uint64)


__all__ = ["EventIdIndex", "Hashes", "hashes_of"]
