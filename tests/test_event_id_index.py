"""The loader's index of stored event ids (consumers.eventids), on a real embedded store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from consumers import eventidfile, eventids
from consumers.bulk import load_file
from consumers.eventids import EventIdIndex, hashes_of
from consumers.migrations import migrate
from consumers.sink import BatchResult, Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.events import DossierEvent
from schemas.hashchain import seal_chain
from tests.test_consumers_support import events, write_container


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


# -- the index saved next to the store (consumers.eventidfile) -----------------------------------------------------

_IDS = (
    "INSERT INTO events (event_id, dossier_id, seq) SELECT concat({p:String}, toString(number)), "
    "concat({p:String}, toString(intDiv(number, 10))), number % 10 FROM numbers({n:UInt64})"
)


def _index_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "dossier.eventids")


def _ids(store: Store, prefix: str, numbers: range) -> eventids.Hashes:
    ids = [f"{prefix}{n}" for n in numbers]
    return hashes_of(store, "SELECT sipHash64(arrayJoin({i:Array(String)}))", {"i": ids})


def _saved_store(tmp_path: Path) -> Iterator[Store]:
    """A store of 20,000 events whose index was read once, and saved (nothing was saved before)."""
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        store.command(_IDS, {"p": "a-", "n": 20000})
        first = EventIdIndex(store)
        assert len(first) == 20000
        first.close()
        assert first.path == tmp_path / "store.event-ids" and first.path.is_file()
        yield store


@pytest.fixture
def saved_store(tmp_path: Path) -> Iterator[Store]:
    yield from _saved_store(tmp_path)


def test_a_restart_reads_the_saved_index_and_only_what_was_stored_after_it(
    saved_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store = saved_store
    store.command(_IDS, {"p": "b-", "n": 700})  # stored by another loader after the save
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    index = EventIdIndex(store)
    assert len(index) == 20700
    assert "20,000 ids from" in _index_log(caplog) and "700 read from the store" in _index_log(caplog)
    assert index.hits(_ids(store, "a-", range(0, 20000, 997))).all()
    assert index.hits(_ids(store, "b-", range(700))).all()
    assert not index.hits(_ids(store, "c-", range(100))).any()


def test_reads_of_the_store_go_in_chunks_and_keep_every_id_once(
    saved_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read bigger than a chunk (here 3,000 ids) is sorted chunk by chunk into runs: the same index."""
    store = saved_store
    monkeypatch.setattr(eventids, "READ_CHUNK", 3000)
    store.command(_IDS, {"p": "b-", "n": 7000})
    store.command("OPTIMIZE TABLE events FINAL")  # the saved ids come back in the newer part too: not kept twice
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    newer = EventIdIndex(store)
    assert len(newer) == 27000 and "27,000 read from the store (stored since: 7,000 new ids)" in _index_log(caplog)
    # blocks of 1,000 rows: chunks of 3,000, sorted and merged as they come
    runs, read = eventids.sorted_runs(store, "SELECT sipHash64(event_id) FROM events SETTINGS max_block_size = 1000")
    assert read == 27000 and len(runs) > 1 and all(bool((np.diff(r) >= 0).all()) for r in runs)
    whole = np.sort(np.concatenate(runs))
    assert np.array_equal(whole, np.sort(hashes_of(store, "SELECT sipHash64(event_id) FROM events")))
    # onto runs already held, chunk by chunk: each id once, whichever chunk or run had it first
    held = [np.sort(_ids(store, "a-", range(20000)))]
    onto, read = eventids.sorted_runs(
        store, "SELECT sipHash64(event_id) FROM events SETTINGS max_block_size = 1000", runs=held
    )
    assert onto is held and read == 27000 and np.array_equal(np.sort(np.concatenate(onto)), whole)
    for index in (newer, EventIdIndex(store)):
        assert index.hits(_ids(store, "a-", range(0, 20000, 97))).all()
        assert index.hits(_ids(store, "b-", range(7000))).all()
        assert not index.hits(_ids(store, "c-", range(100))).any()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[:-8], "its size is not what its header says"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
        (lambda b: b.replace(b'"format":1', b'"format":2'), "another format"),
        (lambda b: b.replace(b'"runs":[', b'"runs":[99999999999,'), "its size is not what its header says"),
        (lambda b: b.replace(b'"mark":', b'"mark":-'), "damaged (header)"),
        (lambda b: b"", "not an event-id index"),
        (lambda b: b[:40], "no header"),
    ],
)
def test_a_damaged_saved_index_gives_a_full_read(
    saved_store: Store, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes], why: str
) -> None:
    store = saved_store
    path = eventidfile.saved_path(store.local_path or Path())
    path.write_bytes(damage(path.read_bytes()))
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    index = EventIdIndex(store)
    assert len(index) == 20000 and index.hits(_ids(store, "a-", range(20000))).all()
    assert f"read every stored id ({path.name} " in _index_log(caplog) and why in _index_log(caplog)


def test_no_damage_to_the_saved_index_is_ever_a_crash_or_a_wrong_index(saved_store: Store) -> None:
    store = saved_store
    path = eventidfile.saved_path(store.local_path or Path())
    good = path.read_bytes()
    rng = np.random.default_rng(7)
    cuts = [int(c) for c in rng.integers(0, len(good), 30)]
    flips = [int(f) for f in rng.integers(0, len(good), 30)]
    for damaged in [good[:c] for c in cuts] + [good[:f] + bytes([good[f] ^ 0x5A]) + good[f + 1 :] for f in flips]:
        assert isinstance(eventidfile.load(path.with_name("x")), str)
        path.write_bytes(damaged)
        loaded = eventidfile.load(path)
        assert isinstance(loaded, str), "a damaged file was taken as an index"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("ALTER TABLE events DELETE WHERE seq = 3 SETTINGS mutations_sync = 2", "fewer than the 20,000"),
        ("RECREATE", "of another events table"),
    ],
)
def test_a_saved_index_of_another_store_state_gives_a_full_read(
    saved_store: Store, caplog: pytest.LogCaptureFixture, change: str, why: str
) -> None:
    store = saved_store
    if change == "RECREATE":  # the same rows in a new events table: its part numbers start again
        store.command("CREATE TABLE events_copy AS events")
        store.command("INSERT INTO events_copy SELECT * FROM events")
        store.command("DROP TABLE events SYNC")
        store.command("RENAME TABLE events_copy TO events")
    else:
        store.command(change)
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    index = EventIdIndex(store)
    stored = int(store.query("SELECT count() FROM events").scalar())
    assert len(index) == stored and index.hits(hashes_of(store, "SELECT sipHash64(event_id) FROM events")).all()
    assert why in _index_log(caplog) and "read every stored id" in _index_log(caplog)


def test_an_id_rewritten_after_the_save_is_read_again(saved_store: Store) -> None:
    store = saved_store
    store.command(
        "ALTER TABLE events UPDATE event_id = 'rewritten0' WHERE event_id = 'a-17' SETTINGS mutations_sync = 2"
    )
    index = EventIdIndex(store)
    assert index.hits(_ids(store, "rewritten", range(1))).all()


def test_parts_rewritten_after_the_save_are_read_again_once_then_saved(
    saved_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mutation of every part (a migration's rewrite) puts every row in a part numbered after the saved file: the
    next start reads them all again, and saves, so that the start after it does not."""
    monkeypatch.setattr(eventids, "SAVE_MIN_ROWS", 1000)
    store = saved_store
    store.command("ALTER TABLE events UPDATE unit_code = 'rewritten' WHERE 1 SETTINGS mutations_sync = 2")
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    index = EventIdIndex(store)
    assert len(index) == 20000
    index.close()
    assert "20,000 read from the store (stored since: 0 new ids)" in _index_log(caplog)
    assert "event-id index: saved 20,000 ids covering 20,000 events" in _index_log(caplog)
    caplog.clear()
    again = EventIdIndex(store)
    assert len(again) == 20000 and again.hits(_ids(store, "a-", range(0, 20000, 991))).all()
    again.close()
    assert "0 read from the store" in _index_log(caplog), _index_log(caplog)


def _sink_load(sink: Sink, tmp_path: Path, name: str, evs: list[DossierEvent]) -> BatchResult:
    return load_file(sink, write_container(tmp_path / name, evs), tmp_path).result


def test_an_id_reused_across_a_restart_is_caught_from_the_saved_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader saves its index at close with what it stored; the next one reads nothing from the store and still
    refuses an id the first stored (the slow path's ids too: the second file repeats the first)."""
    monkeypatch.setattr(eventids, "SAVE_MIN_ROWS", 1)
    evs = events(3)
    one, two, three = evs[:8], evs[8:16], evs[16:]
    taken = two[1].event_id
    reusing = list(seal_chain([e.replace(event_id=taken) if e.seq == 2 else e for e in three]))
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        first = Sink(store, engine="MergeTree")
        assert _sink_load(first, tmp_path, "a.avro", one).fast_path
        assert not _sink_load(first, tmp_path, "b.avro", one + two).fast_path  # a replay, then new events
        first.close()
        caplog.set_level(logging.INFO, logger="dossier.eventids")
        second = Sink(store, engine="MergeTree")
        assert len(second.event_ids) == 16
        assert "16 ids from" in _index_log(caplog) and " 0 read from the store" in _index_log(caplog)
        result = _sink_load(second, tmp_path, "c.avro", reusing)
        second.close()
        assert result.stored == 7 and [d.kind for d in result.dead] == ["conflict"]
        assert f"event_id {taken} is already the id of dossier {two[0].dossier_id} seq 2" in result.dead[0].error


def test_a_loader_that_cannot_account_for_every_stored_row_saves_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loaders of one store: the first saves its index after its batch (it accounts for every stored row then);
    the second's index does not cover the first's rows, so it claims nothing; a restart reads the first's file and
    what the second stored after it."""
    monkeypatch.setattr(eventids, "SAVE_MIN_ROWS", 1)
    caplog.set_level(logging.INFO, logger="dossier.eventids")
    evs = events(2)
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        one, two = Sink(store, engine="MergeTree"), Sink(store, engine="MergeTree")
        _sink_load(one, tmp_path, "a.avro", evs[:8])
        _sink_load(two, tmp_path, "b.avro", evs[8:])
        one.close()
        two.close()
        said = _index_log(caplog)
        assert "saved 8 ids covering 8 events" in said and "saved 16" not in said
        assert said.count("not saved (the store holds 16 events, the index accounts for 8") == 1
        caplog.clear()
        again = EventIdIndex(store)
        assert len(again) == 16 and again.hits(hashes_of(store, "SELECT sipHash64(event_id) FROM events")).all()
        assert "8 ids from" in _index_log(caplog) and "8 read from the store" in _index_log(caplog)
