"""Verify in bounded memory (real chDB): slices of dossiers and of id hashes find exactly what one pass finds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import fastavro
import pytest

from inspection import verify as verification
from inspection.verify import confirmed_reuse, dossier_slices, verify
from schemas.events import DossierEvent, EventType
from schemas.hashchain import seal_chain
from schemas.registry import current_schema
from tests.eventfactory import history
from tests.test_verify import _clean, _query

E = EventType
DOSSIERS = [f"000.00.31.H29-240115-{n:04d}" for n in range(1, 17)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path / "chdb"))
    yield client
    client.close()


def _container(path: Path, events: list[DossierEvent]) -> Path:
    with path.open("wb") as f:
        fastavro.writer(f, current_schema().parsed, [e.to_record() for e in events])
    return path


def _problems() -> tuple[list[DossierEvent], list[DossierEvent], str]:
    """Every kind of problem, and (second list) a dossier whose seq 3 reuses the id of the first dossier's seq 2."""
    events = [e for d in DOSSIERS[:9] for e in _clean(d)]
    gap = _clean(DOSSIERS[9])
    del gap[3]
    tampered = _clean(DOSSIERS[10])
    tampered[2] = tampered[2].replace(actor_id="someone-else")
    conflict = _clean(DOSSIERS[11])
    conflict.append(conflict[4].replace(event_id="7f1c1d2e-5a4b-4c3d-9e8f-7a6b5c4d3e2f", result_ref="forged"))
    repeat = _clean(DOSSIERS[12])
    repeat.append(repeat[1])
    unlinked = _clean(DOSSIERS[14])
    unlinked[4] = unlinked[4].replace(prev_hash=bytes(32))
    start = history((E.DOSSIER_SUBMITTED, 1), (E.DOSSIER_RECEIVED, 2), dossier_id=DOSSIERS[15])
    illegal = list(seal_chain([*start, _clean(DOSSIERS[15])[5].replace(seq=3)]))
    taken = events[1].event_id
    reusing = _clean(DOSSIERS[13])
    reusing[2] = reusing[2].replace(event_id=taken)
    stored = [*events, *gap, *tampered, *conflict, *repeat, *unlinked, *illegal]
    return stored, list(seal_chain(reusing)), taken


def _load(client: Any, tmp_path: Path, engine: str) -> str:
    """Two inserts (two parts a partition, granules of 2 rows), partitioned on seq: a dossier's events lie in
    several partitions."""
    first, later, taken = _problems()
    a, b = _container(tmp_path / "a.avro", first), _container(tmp_path / "b.avro", later)
    table = (
        "ENGINE = Memory"
        if engine == "Memory"
        else "ENGINE = MergeTree PARTITION BY seq % 3 ORDER BY (dossier_id, seq) SETTINGS index_granularity = 2"
    )
    client.command(f"CREATE TABLE events {table} AS SELECT * FROM file('{a}', 'Avro')")
    client.command(f"INSERT INTO events SELECT * FROM file('{b}', 'Avro')")
    return taken


@pytest.mark.parametrize("engine", ["MergeTree", "Memory"])
def test_slices_find_what_one_pass_finds(
    store: Any, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices of 7 events (cut on the primary index, or on a sample for another engine) and 4 slices of the id
    hashes: the same findings, the same counts, and the reused id across dossiers and partitions is found."""
    taken = _load(store, tmp_path, engine)
    whole = verify(_query(store))
    assert {f.kind for f in whole.findings} == set(verification.KINDS)
    reused = [f for f in whole.findings if f.kind == "event-id-reused"]
    assert [(f.dossier_id, f.seq) for f in reused] == [(DOSSIERS[0], 2), (DOSSIERS[13], 3)]
    assert reused[0].detail == (
        f"event_id {taken} is the id of 2 different stored events ({DOSSIERS[0]} seq 2, {DOSSIERS[13]} seq 3)"
    )
    monkeypatch.setattr(verification, "SLICE_ROWS", 7)
    monkeypatch.setattr(verification, "ID_SLICE_ROWS", whole.events // 4)
    slices = dossier_slices(_query(store), "events", whole.events, 7)
    assert len(slices) >= 6 and slices[0][0] is None and slices[-1][1] is None
    cuts = [hi for _lo, hi in slices[:-1]]
    assert cuts == sorted(set(cuts)) and all(lo == hi for (_a, hi), (lo, _b) in itertools.pairwise(slices))
    sliced = verify(_query(store))
    assert (sliced.findings, sliced.events, sliced.dossiers) == (whole.findings, whole.events, whole.dossiers)
    assert (sliced.events, sliced.dossiers) == (94, 16)
    one = verify(_query(store), dossier=DOSSIERS[13])
    assert [(f.kind, f.dossier_id, f.seq) for f in one.findings] == [
        ("event-id-reused", d, s) for d, s in [(DOSSIERS[0], 2), (DOSSIERS[13], 3)]
    ]


def test_a_shared_hash_of_different_ids_is_no_reuse(store: Any, tmp_path: Path) -> None:
    """The confirmation compares the ids themselves: candidates whose ids are all different (what a 64-bit
    collision of two ids looks like to it) and one event stored twice under its own (dossier, seq) are no reuse."""
    taken = _load(store, tmp_path, "MergeTree")
    query = _query(store)
    hash_of = "SELECT DISTINCT cityHash64(event_id) FROM events WHERE "  # as verify hashes the stored column
    unique = query(hash_of + "dossier_id = {d:String}", {"d": DOSSIERS[5]})
    repeated = query(hash_of + "toString(event_id) = {i:String}", {"i": _clean(DOSSIERS[12])[1].event_id})
    hashes = [int(r[0]) for r in [*unique, *repeated]]
    assert len(hashes) == 7
    assert confirmed_reuse(query, hashes) == []
    assert confirmed_reuse(query, []) == []
    taken_hash = int(query(hash_of + "toString(event_id) = {i:String}", {"i": taken})[0][0])
    found = confirmed_reuse(query, [*hashes, taken_hash])
    assert sorted((str(k), str(d), int(s)) for k, d, s, _t in found) == [
        ("event-id-reused", DOSSIERS[0], 2),
        ("event-id-reused", DOSSIERS[13], 3),
    ]
