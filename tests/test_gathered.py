"""A live batch's containers, written poll by poll as its records arrive (consumers.batch.Gathered)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from fastavro import reader

from consumers.batch import Gathered
from schemas.codec import HEADER_SIZE, decode_record, encode
from schemas.events import EventType
from tests.eventfactory import history


@dataclasses.dataclass(frozen=True)
class _Record:  # what the loader reads of a Kafka message
    offset: int
    value: bytes | None


def _add(batch: Gathered, partition: int, records: list[_Record]) -> None:
    batch.add(partition, [r.offset for r in records], [r.value for r in records])


def _messages(n: int) -> list[bytes]:
    steps = [(EventType.DOSSIER_SUBMITTED, 1), (EventType.DOSSIER_RECEIVED, 2), (EventType.DOSSIER_TRANSFERRED, 4)]
    events = [e for d in range(n // 3 + 1) for e in history(*steps, dossier_id=f"000.00.31.H29-240115-{d:04d}")]
    return [encode(e) for e in events[:n]]


def _rows(path: str) -> list[dict[str, object]]:
    with Path(path).open("rb") as f:
        return list(reader(f))


def test_containers_hold_each_poll_in_offset_order_and_split_at_gaps(tmp_path: Path) -> None:
    m = _messages(12)
    batch = Gathered("events")
    _add(batch, 0, [_Record(10 + i, m[i]) for i in range(3)])
    _add(batch, 1, [_Record(0, m[3]), _Record(1, m[4])])
    _add(batch, 0, [_Record(13, m[5]), _Record(14, b"not avro"), _Record(15, m[6])])  # continues p0; one poison
    _add(batch, 0, [_Record(20, m[7]), _Record(21, m[8])])  # a gap in p0 (compacted or skipped offsets)
    _add(batch, 1, [_Record(2, m[9]), _Record(3, None)])  # a tombstone
    assert batch.count == 12

    staged = batch.staged()
    assert len(staged) == 1  # one writer schema
    parts = staged[0].parts
    assert staged[0].columns[0] == "event_id"
    by_start = {(p, first): path for p, first, path in parts}
    # Row i of a container is the message at first offset + i; poison splits a run as a gap does.
    expected = {
        (0, 10): [*m[0:3], m[5]],
        (0, 15): [m[6]],
        (0, 20): [m[7], m[8]],
        (1, 0): [m[3], m[4], m[9]],
    }
    assert set(by_start) == set(expected)
    for start, values in expected.items():
        rows = _rows(by_start[start])
        assert [r["_header"] for r in rows] == [v[:HEADER_SIZE] for v in values]
        assert [str(r["event_id"]) for r in rows] == [str(decode_record(v)["event_id"]) for v in values]

    assert sorted((d.partition, d.offset, d.kind) for d in batch.dead) == [(0, 14, "bad-magic"), (1, 3, "bad-magic")]
    # Contiguous polls of a partition are one run again (raw bytes of dead letters are looked up there).
    assert [(r.partition, r.first_offset, len(r.values)) for r in batch.runs] == [
        (0, 10, 6),
        (1, 0, 4),
        (0, 20, 2),
    ]
    assert batch.next_offsets() == {0: 22, 1: 4}

    directory = Path(parts[0][2]).parent
    assert directory.is_dir()
    batch.close()
    assert not directory.exists()
    batch.close()  # twice is harmless


def test_an_empty_batch_has_no_files() -> None:
    batch = Gathered("events")
    _add(batch, 0, [])
    assert batch.count == 0
    assert batch.staged() == []
    assert batch.next_offsets() == {}
    batch.close()


def test_batch_files_leave_a_small_memory_filesystem_for_the_temp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from consumers import sink

    monkeypatch.setattr(sink, "_SHM_MIN_FREE", 1 << 62)  # more than any /dev/shm has free
    assert sink.scratch_root() is None
    batch = Gathered("events")
    _add(batch, 0, [_Record(0, _messages(1)[0])])
    assert str(batch.staged()[0].parts[0][2]).startswith(tempfile.gettempdir())
    batch.close()
    if Path("/dev/shm").is_dir():
        monkeypatch.setattr(sink, "_SHM_MIN_FREE", 0)
        assert sink.scratch_root() == "/dev/shm"
