"""The loader's index of each dossier's highest stored seq (consumers.dossierseqs): the data structure, and the
sink using it on a real embedded store."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from consumers import dossierseqs, eventids
from consumers.bulk import load_file
from consumers.dossierseqs import SEQ_CEILING, DossierSeqs, run_of
from consumers.migrations import migrate
from consumers.sink import BatchResult, Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.events import DossierEvent
from tests.test_consumers_support import events, write_container


def test_runs_keep_the_highest_seq_of_each_hash_through_every_merge() -> None:
    rng = random.Random(20)
    truth: dict[int, int] = {}
    seqs = DossierSeqs()
    for size in [5000] + [rng.randint(1, 900) for _ in range(60)]:
        keys = [rng.randrange(3000) * 7919 for _ in range(size)]  # repeats inside a batch and across batches
        values = [rng.randrange(1, 40) for _ in range(size)]
        for k, v in zip(keys, values, strict=True):
            truth[k] = max(truth.get(k, -1), v)
        seqs.add(run_of(keys, values))
    assert len(seqs.runs) < 12  # merged on the way, not one run a batch
    asked = np.array(sorted(set(truth) | {1, 2, 3}), dtype=np.uint64)
    assert seqs.highest(asked).tolist() == [truth.get(int(k), -1) for k in asked]
    some = asked[:50]
    lowest = [truth.get(int(k), 0) for k in some]  # a batch starting at the stored seq: behind, every one known
    assert seqs.behind(some, lowest) == sum(int(k) in truth for k in some)
    assert seqs.behind(some, [truth.get(int(k), 0) + 1 for k in some]) == 0


def test_a_seq_beyond_the_ceiling_is_remembered_as_the_ceiling_and_a_negative_one_as_zero() -> None:
    run = run_of([5, 5, 9], [2**40, 3, -7])
    assert run.keys.tolist() == [5, 9] and run.seqs.tolist() == [SEQ_CEILING, 0]
    seqs = DossierSeqs(run)
    keys = np.array([5, 9], dtype=np.uint64)
    assert seqs.behind(keys, [2**41, 1]) == 1  # only the saturated one looks behind: the exact path decides


# -- the sink --------------------------------------------------------------------------------------------------------


def _load(sink: Sink, tmp_path: Path, name: str, evs: list[DossierEvent]) -> BatchResult:
    return load_file(sink, write_container(tmp_path / name, evs), tmp_path).result


@contextlib.contextmanager
def _two_loaders(tmp_path: Path, expected: int) -> Iterator[tuple[Sink, Sink]]:
    """Two loaders of one new store; afterwards the store holds ``expected`` events, each once."""
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        one, two = Sink(store, engine="MergeTree"), Sink(store, engine="MergeTree")
        try:
            yield one, two
        finally:
            one.close()
            two.close()
        assert store.query("SELECT count(), uniqExact(dossier_id, seq) FROM events").rows[0] == (expected, expected)


def _said(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "dossier.dossierseqs")


def test_the_sink_answers_from_the_index_and_a_replay_still_takes_the_exact_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dossier.dossierseqs")
    evs = events(40)
    head = [e for e in evs if e.seq <= 4]
    tail = [e for e in evs if e.seq > 4]
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            sink.dossier_seqs.wait()
            assert "0 dossiers read from dossier_state" in _said(caplog)
            assert _load(sink, tmp_path, "a.avro", head[:80]).fast_path
            assert _load(sink, tmp_path, "b.avro", tail[:80] + head[80:]).fast_path  # next events of stored dossiers
            again = _load(sink, tmp_path, "c.avro", tail[:3])  # a replay: the index knows these dossiers' seqs
            assert not again.fast_path and again.stored == 0 and again.duplicates == 3
            rest = _load(sink, tmp_path, "d.avro", tail[3:])  # a replay of 77 and the 80 never stored
            assert not rest.fast_path and rest.stored == 80 and rest.duplicates == 77
            assert _said(caplog).count("read from dossier_state") == 1 and "discarded" not in _said(caplog)
            assert sink.dossier_seqs.covering() is not None
        finally:
            sink.close()
        assert store.query("SELECT count(), uniqExact(dossier_id, seq) FROM events").rows[0] == (len(evs), len(evs))


def test_rows_the_index_was_not_told_of_discard_it_and_the_store_decides(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two loaders of one store: the second's index was read before the first stored a dossier's events; the
    second then receives them again. Its index does not know them, but cannot account for the first's rows: it is
    discarded, the batch is checked against dossier_state and nothing is stored twice."""
    caplog.set_level(logging.INFO, logger="dossier.dossierseqs")
    evs = events(6)
    with _two_loaders(tmp_path, len(evs)) as (one, two):
        two.dossier_seqs.wait()
        assert _load(two, tmp_path, "a.avro", evs[:8]).fast_path
        assert _load(one, tmp_path, "b.avro", evs[8:24]).fast_path
        replay = _load(two, tmp_path, "c.avro", evs[8:24])
        assert not replay.fast_path and replay.stored == 0 and replay.duplicates == 16
        assert "discarded (events holds 24 rows, the index accounts for 8)" in _said(caplog)
        two.dossier_seqs.wait()  # read again ...
        assert two.dossier_seqs.covering() is not None  # ... it covers the store
        assert _load(two, tmp_path, "d.avro", evs[24:]).fast_path
        assert two.dossier_seqs.discards == 1


def test_a_loader_whose_index_keeps_being_discarded_asks_dossier_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dossier.dossierseqs")
    evs = events(8)
    with _two_loaders(tmp_path, len(evs)) as (one, two):
        for k in range(4):  # each writes between the other's batches
            batch = evs[16 * k : 16 * k + 16]
            two.dossier_seqs.wait()
            assert _load(two, tmp_path, f"t{k}.avro", batch[:8]).fast_path
            one.dossier_seqs.wait()
            assert _load(one, tmp_path, f"o{k}.avro", batch[8:]).fast_path
        assert not two.dossier_seqs.enabled and not one.dossier_seqs.enabled
        assert "this loader asks dossier_state" in _said(caplog)
        replay = _load(two, tmp_path, "again.avro", evs[8:16])
        assert not replay.fast_path and replay.stored == 0


def test_batches_stored_while_the_index_is_read_are_added_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read holds the store's lock only at its start and end: a batch stored in between asks dossier_state,
    and the index then knows it (a replay of part of it takes the exact path through the index)."""
    started, go_on = threading.Event(), threading.Event()
    real = eventids.reading_session

    @contextlib.contextmanager
    def held(store: Store) -> Iterator[Store]:
        with real(store) as session:
            query_batches = session.query_batches

            def after_the_batch(sql: str, parameters: dict[str, int]) -> Iterator[pa.RecordBatch]:
                started.set()  # what events holds is noted: the read itself waits for the batch
                assert go_on.wait(60)
                return query_batches(sql, parameters)

            monkeypatch.setattr(session, "query_batches", after_the_batch)
            yield session

    monkeypatch.setattr(dossierseqs, "reading_session", held)
    evs = events(10)
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            assert started.wait(60)
            assert _load(sink, tmp_path, "a.avro", evs[:40]).fast_path  # five dossiers, during the read
            go_on.set()
            sink.dossier_seqs.wait()
            seqs = sink.dossier_seqs.covering()
            assert seqs is not None and len(seqs) == 5
            again = _load(sink, tmp_path, "b.avro", evs[32:])  # the fifth dossier again, then five new ones
            assert not again.fast_path and again.stored == 40 and again.duplicates == 8
        finally:
            go_on.set()
            sink.close()


# -- the index saved next to the store -------------------------------------------------------------------------------


def _saved(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> list[DossierEvent]:
    """A store of 20 dossiers whose loader saved its index at close; the dossiers' events."""
    evs = events(20)
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            sink.dossier_seqs.wait()
            assert _load(sink, tmp_path, "a.avro", evs[:80]).fast_path
            assert _load(sink, tmp_path, "b.avro", evs[80:]).fast_path
        finally:
            sink.close()
    assert "saved 20 dossiers to" in _said(caplog)
    caplog.clear()
    return evs


def test_a_restart_reads_the_saved_index_and_only_the_parts_stored_after_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dossier.dossierseqs")
    evs = _saved(tmp_path, caplog)
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        store.command("INSERT INTO dossier_state (dossier_id, seq) VALUES ('written-after', 7)")  # another writer's
        sink = Sink(store, engine="MergeTree")
        try:
            sink.dossier_seqs.wait()
            assert "20 dossiers from" in _said(caplog) and "1 from parts stored after it" in _said(caplog)
            seqs = sink.dossier_seqs.covering()
            assert seqs is not None and len(seqs) == 21
            after = store.query("SELECT sipHash64('written-after')").scalar()
            assert seqs.highest(np.array([after], dtype=np.uint64)).tolist() == [7]
            replay = _load(sink, tmp_path, "c.avro", evs[76:84])  # the saved index knows these
            assert not replay.fast_path and replay.stored == 0 and replay.duplicates == 8
        finally:
            sink.close()
        assert store.query("SELECT count() FROM events").scalar() == len(evs)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "store.dossier-seqs is damaged (checksum)"),
        (lambda b: b[:-4], "its size is not what its header says"),
        (lambda b: b.replace(b'"table":"', b'"table":"0'), "another dossier_state table"),
        (lambda b: b.replace(b"dossier index", b"event-id index"), "store.dossier-seqs is not a dossier index"),
    ],
)
def test_a_damaged_saved_index_gives_a_full_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes], why: str
) -> None:
    caplog.set_level(logging.INFO, logger="dossier.dossierseqs")
    evs = _saved(tmp_path, caplog)
    path = tmp_path / "data" / "store.dossier-seqs"
    path.write_bytes(damage(path.read_bytes()))
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer", serve=False) as store:
        sink = Sink(store, engine="MergeTree")
        try:
            sink.dossier_seqs.wait()
            assert "20 dossiers read from dossier_state" in _said(caplog) and why in _said(caplog)
            replay = _load(sink, tmp_path, "c.avro", evs[76:84])
            assert not replay.fast_path and replay.stored == 0
        finally:
            sink.close()
