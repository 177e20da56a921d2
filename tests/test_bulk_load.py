"""Bulk loads of multi-block container files: parts parsed in parallel, record indices, corrupt blocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastavro import writer

import consumers.bulk as bulk
from consumers.avrofile import split_blocks
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.events import DossierEvent
from schemas.registry import current_schema
from tests.test_consumers_support import events


def _container(path: Path, evs: list[DossierEvent], codec: str = "null") -> Path:
    """A container of many small blocks (about 40 records each)."""
    with path.open("wb") as handle:
        writer(handle, current_schema().parsed, [e.to_record() for e in evs], codec=codec, sync_interval=16 * 1024)
    return path


def _offsets(store: Store) -> dict[str, int]:
    return {str(i): int(o) for i, o in store.query("SELECT event_id, _offset FROM events").rows}


@pytest.fixture
def split_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut even these small test files into parts, as a big file is."""
    monkeypatch.setattr(bulk, "_PARALLEL_MIN_BYTES", 0)


@pytest.mark.usefixtures("split_small_files")
@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_parts_keep_record_indices_and_a_second_load_stores_nothing(tmp_path: Path, codec: str) -> None:
    evs = events(150)
    path = _container(tmp_path / "a.avro", evs, codec)
    assert len(split_blocks(memoryview(path.read_bytes()))[2]) > 10
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        first = bulk.load_file(sink, path, tmp_path)
        again = bulk.load_file(sink, path, tmp_path)
        sink.close()
        assert (first.result.stored, first.result.dead) == (len(evs), [])
        assert (again.result.stored, again.result.duplicates, again.result.dead) == (0, len(evs), [])
        assert _offsets(store) == {str(e.event_id): i for i, e in enumerate(evs)}
        assert store.query("SELECT count() FROM dossier_state FINAL").scalar() == 150
        assert store.query("SELECT count() FROM system.tables WHERE name LIKE '\\_staging\\_%'").scalar() == 0
        assert not list(tmp_path.glob(".load-*"))


@pytest.mark.usefixtures("split_small_files")
def test_a_corrupt_block_is_dead_lettered_and_the_rest_keeps_its_indices(tmp_path: Path) -> None:
    evs = events(100)
    path = _container(tmp_path / "c.avro", evs)
    data = bytearray(path.read_bytes())
    _header_end, _sync, blocks = split_blocks(memoryview(bytes(data)))
    start, end, count = blocks[3]
    first_bad = sum(c for _s, _e, c in blocks[:3])
    data[start + 6 : end - 16] = b"\xff" * (end - 16 - start - 6)  # the records, not the block's framing
    path.write_bytes(bytes(data))
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        loaded = bulk.load_file(sink, path, tmp_path)
        sink.close()
        [dead] = loaded.result.dead
        assert (dead.kind, dead.offset, dead.topic) == ("undecodable", first_bad, "file:c.avro")
        assert loaded.result.stored == len(evs) - count
        expected = {str(e.event_id): i for i, e in enumerate(evs) if not first_bad <= i < first_bad + count}
        assert _offsets(store) == expected
        assert store.query("SELECT kind, offset FROM dead_letters FINAL").rows == [("undecodable", first_bad)]


def test_pieces_cut_at_gaps_and_into_parts() -> None:
    blocks = [(0, 10, 5), (10, 20, 5), (20, 30, 5), (40, 50, 5), (50, 60, 5)]  # a block dropped at 30-40
    assert bulk._pieces(blocks, 1) == [blocks[:3], blocks[3:]]
    assert bulk._pieces(blocks, 2) == [blocks[:3], blocks[3:]]
    assert bulk._pieces(blocks, 5) == [[b] for b in blocks]
    assert bulk._pieces(blocks[:3], 2) == [blocks[:2], blocks[2:3]]


def _load_all(tmp_path: Path, paths: list[Path]) -> tuple[list[bulk.FileLoad], dict[str, tuple[str, int]]]:
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            loads = list(bulk.load_files(sink, paths, tmp_path))
        finally:
            sink.close()
        stored = {
            str(i): (str(t), int(o)) for i, t, o in store.query("SELECT event_id, _topic, _offset FROM events").rows
        }
    return loads, stored


def test_small_files_are_published_together_with_one_row_each(tmp_path: Path) -> None:
    a, b, c = events(30), events(20, start=30), events(10, start=50)
    paths = [_container(tmp_path / f"{n}.avro", evs) for n, evs in (("a", a), ("b", b), ("c", c))]
    published = []
    original = Sink.publish

    def counted(self: Sink, source: str, raw_of: object = None) -> object:
        published.append(source)
        return original(self, source)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Sink, "publish", counted)
        loads, stored = _load_all(tmp_path, paths)
    assert len(published) == 1
    assert [(row["file"], row["events"], row["stored"], row["duplicates"]) for row in (x.row() for x in loads)] == [
        (str(paths[0]), len(a), len(a), 0),
        (str(paths[1]), len(b), len(b), 0),
        (str(paths[2]), len(c), len(c), 0),
    ]
    expected = {
        str(e.event_id): (f"file:{n}.avro", i) for n, evs in (("a", a), ("b", b), ("c", c)) for i, e in enumerate(evs)
    }
    assert stored == expected


def test_a_batch_on_the_slow_path_counts_each_file(tmp_path: Path) -> None:
    a, b = events(30), events(20, start=30)
    b[7] = b[7].replace(status=42)
    pa, pb = _container(tmp_path / "a.avro", a), _container(tmp_path / "b.avro", b)
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        bulk.load_file(sink, pa, tmp_path)
        sink.close()
    loads, stored = _load_all(tmp_path, [pa, pb, pa])  # the repeated name goes to a batch of its own
    rows = [(x.row()["stored"], x.row()["duplicates"], [(d.kind, d.offset) for d in x.result.dead]) for x in loads]
    assert rows == [(0, len(a), []), (len(b) - 1, 0, [("invalid", 7)]), (0, len(a), [])]
    assert len(stored) == len(a) + len(b) - 1


def test_a_bad_file_in_a_batch_stops_the_load_after_the_files_before_it(tmp_path: Path) -> None:
    a, b = events(10), events(10, start=10)
    bad = tmp_path / "x.avro"
    bad.write_bytes(b"not avro")
    paths = [_container(tmp_path / "a.avro", a), bad, _container(tmp_path / "b.avro", b)]
    with opened_store(Settings(data_dir=tmp_path / "d"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        loaded = []
        with pytest.raises(bulk.InputFileError, match=r"x\.avro"):
            for one in bulk.load_files(sink, paths, tmp_path):
                loaded.append(one)
        sink.close()
        assert [x.row()["stored"] for x in loaded] == [len(a)]
        assert store.query("SELECT count() FROM events").scalar() == len(a)


def test_a_corrupt_block_in_a_batch_is_dead_lettered_file_by_file(tmp_path: Path) -> None:
    a, c = events(10), events(40, start=10)
    pa, pc = _container(tmp_path / "a.avro", a), _container(tmp_path / "c.avro", c)
    data = bytearray(pc.read_bytes())
    _header_end, _sync, blocks = split_blocks(memoryview(bytes(data)))
    start, end, count = blocks[1]
    data[start + 6 : end - 16] = b"\xff" * (end - 16 - start - 6)
    pc.write_bytes(bytes(data))
    loads, stored = _load_all(tmp_path, [pa, pc])
    assert [(x.result.stored, [(d.kind, d.offset) for d in x.result.dead]) for x in loads] == [
        (len(a), []),
        (len(c) - count, [("undecodable", blocks[0][2])]),
    ]
    assert len(stored) == len(a) + len(c) - count


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_a_part_is_the_header_and_its_blocks_copied_by_the_kernel_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    path = _container(tmp_path / "a.avro", events(30))
    data = path.read_bytes()
    header_end, _sync, blocks = split_blocks(memoryview(data))
    piece = blocks[2:5]
    if not kernel_copy:

        def refuse(*_args: object) -> int:
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(bulk.os, "copy_file_range", refuse)
    bulk._write_part(tmp_path / "part.avro", path, memoryview(data), header_end, piece)
    expected = data[:header_end] + data[piece[0][0] : piece[-1][1]]
    assert (tmp_path / "part.avro").read_bytes() == expected
