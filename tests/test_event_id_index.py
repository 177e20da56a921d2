"""The loader's index of stored event ids (consumers.eventids), on a real embedded store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from consumers import eventids
from consumers.eventids import EventIdIndex, hashes_of
from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store


def test_the_index_knows_every_stored_id_and_what_is_added(tmp_path: Path) -> None:
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        store.command(
            "INSERT INTO events (event_id, dossier_id, seq) "
            "SELECT concat('id-', toString(number)), concat('d', toString(intDiv(number, 10))), number % 10 "
            "FROM numbers(20000)"
        )
        index = EventIdIndex(store)
        assert len(index) == 20000

        def of(ids: list[str]) -> eventids.Hashes:
            return hashes_of(store, "SELECT sipHash64(arrayJoin({i:Array(String)}))", {"i": ids})

        stored = of([f"id-{n}" for n in (0, 7, 19999)])
        new = of([f"new-{n}" for n in range(5000)])
        assert index.hits(stored).all() and not index.hits(new).any()
        mixed = np.concatenate([new[:3], stored[1:2], new[3:5]])
        assert index.hits(mixed).tolist() == [False, False, False, True, False, False]  # in the caller's order
        for chunk in np.array_split(new, 10):  # runs of 500 merged on the way, up to the stored 20,000
            index.add(chunk)
        index.add(of([f"more-{n}" for n in range(20000)]))  # as big as the store's run: merged with it
        assert len(index) == 45000 and index.hits(new).all() and index.hits(stored).all()
        assert not index.hits(of(["never-stored"])).any()
