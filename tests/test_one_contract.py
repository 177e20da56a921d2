"""One contract at every door: what `dossier consume load` refuses, with crafted files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from consumers.bulk import load_file
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.events import DossierEvent
from schemas.hashchain import seal_chain
from tests.test_consumers_support import dossier, events, write_container


def test_other_content_under_a_stored_identity_is_a_conflict_not_a_repeat(tmp_path: Path) -> None:
    evs = events(2)
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    first = dossier("consume", "load", str(write_container(tmp_path / "a.avro", evs)), env=env)
    assert first.returncode == 0, first.stderr
    one = [e for e in evs if e.dossier_id == evs[0].dossier_id]
    # seq 3 a microsecond later, the chain resealed from there: seqs 3-8 keep their ids and get other hashes
    changed = [e.replace(occurred_at=e.occurred_at + timedelta(microseconds=1)) if e.seq == 3 else e for e in one]
    resealed = list(seal_chain(changed))
    out = dossier("consume", "load", str(write_container(tmp_path / "b.avro", resealed)), "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    row = json.loads(out.stdout)[0]
    assert (row["stored"], row["duplicates"], row["dead_letters"]) == (0, 2, 6)  # seqs 1-2 the same; 3-8 not
    assert "is already stored under the same event_id with other content (stored hash" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("6 event(s) not stored, dead-lettered (conflict 6)")


def test_text_that_is_not_utf8_is_refused_naming_the_field(tmp_path: Path) -> None:
    evs = events(1)
    marked = [e.replace(actor_id="tn-XYZ") if e.seq == 2 else e for e in evs]
    path = write_container(tmp_path / "u.avro", list(seal_chain(marked)))
    data = path.read_bytes()
    assert data.count(b"tn-XYZ") == 1
    path.write_bytes(data.replace(b"tn-XYZ", b"tn-\xed\xa0\x80"))  # a lone surrogate, as some exports carry
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    out = dossier("consume", "load", str(path), "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    assert "invalid: actor_id not valid UTF-8" in out.stderr
    assert json.loads(out.stdout)[0]["dead_letters"] == 1
    replay = dossier("inspect", "replay", evs[0].dossier_id, env=env)  # what was stored reads back cleanly
    assert "Traceback" not in replay.stderr


def test_a_writer_schema_that_is_not_released_is_refused(tmp_path: Path) -> None:
    import fastavro

    from schemas.registry import current_schema

    source = dict(current_schema().source)
    fields = list(source["fields"])
    fields[0], fields[1] = fields[1], fields[0]  # the same fields, another order: another schema
    path = tmp_path / "reordered.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema({**source, "fields": fields}), [e.to_record() for e in events(1)])
    out = dossier("consume", "load", str(path), env={"DOSSIER_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 1
    assert "its writer schema is not a released one (fingerprint" in out.stderr and "Traceback" not in out.stderr


def test_a_load_cut_short_stays_visible_until_the_file_is_loaded_again(tmp_path: Path) -> None:
    from consumers.jsonlfile import mark_files

    path = write_container(tmp_path / "cut.avro", events(3))
    data = tmp_path / "data"
    env = {"DOSSIER_DATA_DIR": str(data)}
    other = dossier("consume", "load", str(write_container(tmp_path / "other.avro", events(2, start=50))), env=env)
    assert other.returncode == 0, other.stderr
    with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        mark_files(sink, [path], "started")  # what a kill between the mark and the last attach leaves
        sink.close()
    status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
    assert json.loads(status.stdout)[0]["unfinished_loads"] == ["file:cut.avro"]
    assert "1 file load(s) cut short, part of them may be stored: cut.avro" in status.stderr
    verified = dossier("inspect", "verify", env={**env, "COLUMNS": "400"})  # the path whole, on one line
    assert verified.returncode == 3 and ": OK" not in verified.stdout
    assert f"complete them with `dossier consume load {path.resolve()}`" in verified.stdout
    again = dossier("consume", "load", str(path), env=env)
    assert again.returncode == 0, again.stderr
    done = dossier("inspect", "verify", env=env)
    assert done.returncode == 0 and "Integrity: OK" in done.stdout
    assert (
        json.loads(dossier("consume", "status", "--no-lag", "--format", "json", env=env).stdout)[0]["unfinished_loads"]
        == []
    )


def _lying_block(tmp_path: Path, codec: str) -> Path:
    """One block of 12 records whose count says 1 (the same varint length: 12 is zigzag 0x18, 1 is 0x02)."""
    from consumers.avrofile import split_blocks

    path = write_container(tmp_path / f"lying-{codec}.avro", events(1)[:8] + events(1, start=1)[:4], codec=codec)
    data = bytearray(path.read_bytes())
    header_end, _sync, blocks = split_blocks(memoryview(bytes(data)))
    assert len(blocks) == 1 and blocks[0][2] == 12 and data[header_end] == 0x18
    data[header_end] = 0x02
    path.write_bytes(bytes(data))
    return path


def test_a_block_holding_more_records_than_it_says_is_refused_whole(tmp_path: Path) -> None:
    for codec in ("null", "deflate"):
        path = _lying_block(tmp_path, codec)
        env = {"DOSSIER_DATA_DIR": str(tmp_path / f"data-{codec}")}
        out = dossier("consume", "load", str(path), env=env)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "says it holds 1 record(s) but holds 12: a reader would load 1 and drop 11" in out.stderr
        assert "Traceback" not in out.stderr
        checked = dossier("produce", "publish", "--check", str(path), env=env)  # the publisher's door too
        assert checked.returncode == 3, checked.stdout + checked.stderr
        assert "says it holds 1 record(s) but holds more bytes than those" in checked.stderr


def test_a_block_that_does_not_decompress_is_refused_naming_its_byte(tmp_path: Path) -> None:
    from consumers.avrofile import split_blocks

    path = write_container(tmp_path / "bad-deflate.avro", events(1), codec="deflate")
    data = bytearray(path.read_bytes())
    header_end, _sync, blocks = split_blocks(memoryview(bytes(data)))
    start, end, _count = blocks[0]
    data[start + 8 : end - 16] = b"\xff" * (end - 16 - start - 8)  # the compressed bytes, not the sync marker
    path.write_bytes(bytes(data))
    out = dossier("consume", "load", str(path), env={"DOSSIER_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"the block at byte {header_end} does not decompress" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_an_event_id_used_twice_in_a_load_is_a_conflict(tmp_path: Path) -> None:
    evs = events(2)
    first, second = evs[0].dossier_id, evs[8].dossier_id
    taken = next(e.event_id for e in evs if e.dossier_id == first and e.seq == 3)
    other = [e.replace(event_id=taken) if e.seq == 3 else e for e in evs if e.dossier_id == second]
    mixed = [e for e in evs if e.dossier_id == first] + list(seal_chain(other))
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    out = dossier("consume", "load", str(write_container(tmp_path / "twice.avro", mixed)), "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    row = json.loads(out.stdout)[0]
    assert (row["stored"], row["dead_letters"]) == (15, 1)
    assert f"event_id {taken} is already the id of dossier {first} seq 3 in this load" in out.stderr


def _reused_across_loads(evs: list[DossierEvent]) -> tuple[str, str, str, list[DossierEvent], list[DossierEvent]]:
    """The first dossier's events, and the second's with its seq 2 under the first's seq-2 id (chain resealed)."""
    first, second = evs[0].dossier_id, evs[8].dossier_id
    taken = next(e.event_id for e in evs if e.dossier_id == first and e.seq == 2)
    other = list(seal_chain([e.replace(event_id=taken) if e.seq == 2 else e for e in evs if e.dossier_id == second]))
    return first, second, taken, [e for e in evs if e.dossier_id == first], other


def test_an_event_id_reused_by_a_later_load_is_refused(tmp_path: Path) -> None:
    """The loader's index of stored ids (consumers.eventids) sees across loads: the reuse is a conflict dead
    letter naming the stored event, and the stored event is untouched; replaying the first load is no reuse."""
    first, _second, taken, ones, other = _reused_across_loads(events(2))
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    a, b = write_container(tmp_path / "a.avro", ones), write_container(tmp_path / "b.avro", other)
    assert dossier("consume", "load", str(a), env=env).returncode == 0
    out = dossier("consume", "load", str(b), "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    row = json.loads(out.stdout)[0]
    assert (row["stored"], row["dead_letters"]) == (7, 1)
    assert f"event_id {taken} is already the id of dossier {first} seq 2 in the store" in out.stderr
    again = dossier("consume", "load", str(a), "--format", "json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)[0]["duplicates"] == 8, again.stderr
    with opened_store(Settings(data_dir=tmp_path / "data"), serve=False) as store:
        owners = store.query("SELECT dossier_id, seq FROM events WHERE event_id = {i:String}", {"i": taken}).rows
    assert owners == [(first, 2)]


def test_an_event_id_reused_by_two_loaders_at_once_is_found_by_verify(tmp_path: Path) -> None:
    """Two loaders of one store do not see each other's new ids (each index covers the store as it found it and
    what it stored itself): the reuse gets stored, and verify names both events."""
    first, second, taken, ones, other = _reused_across_loads(events(2))
    settings = Settings(data_dir=tmp_path / "data")
    with opened_store(settings, role="writer", serve=False) as store:
        migrate(store)
        one, two = Sink(store, engine="MergeTree"), Sink(store, engine="MergeTree")
        assert len(one.event_ids) == len(two.event_ids) == 0  # both indexes read the (empty) store now
        for sink, evs, name in ((one, ones, "a.avro"), (two, other, "b.avro")):
            loaded = load_file(sink, write_container(tmp_path / name, evs), tmp_path)
            assert (loaded.result.stored, len(loaded.result.dead)) == (8, 0)
            sink.close()
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    out = dossier("inspect", "verify", "--format", "json", env=env)
    assert out.returncode == 3
    found = json.loads(out.stdout)["findings"]
    assert {(f["kind"], f["dossier_id"], f["seq"]) for f in found} == {
        ("event-id-reused", first, 2),
        ("event-id-reused", second, 2),
    }
    assert (
        f"event_id {taken} is the id of 2 different stored events ({first} seq 2, {second} seq 2)"
        in (found[0]["detail"])
    )
    one_dossier = dossier("inspect", "verify", "--dossier", second, "--format", "json", env=env)
    assert one_dossier.returncode == 3 and json.loads(one_dossier.stdout)["computed_on"]["event-id-reused"] == 2


def test_parts_set_aside_as_broken_keep_verify_from_saying_ok(tmp_path: Path) -> None:
    """What the engine sets aside at start (detached/broken-on-start_…) is not in what verify reads: not OK then."""
    from dossier_runtime.settings import Settings
    from dossier_runtime.store import opened_store

    data = tmp_path / "data"
    env = {"DOSSIER_DATA_DIR": str(data)}
    assert dossier("consume", "load", str(write_container(tmp_path / "a.avro", events(2))), env=env).returncode == 0
    later = write_container(tmp_path / "b.avro", events(2, start=60))
    assert dossier("consume", "load", str(later), env=env).returncode == 0
    with opened_store(Settings(data_dir=data), role="writer", serve=False) as store:
        part = store.query(
            "SELECT name FROM system.parts WHERE table = 'events' AND active ORDER BY modification_time LIMIT 1"
        ).scalar()
        store.command(f"ALTER TABLE events DETACH PART '{part}'")
        detached = Path(str(store.query("SELECT path FROM system.detached_parts WHERE table = 'events'").scalar()))
    detached.rename(detached.with_name(f"broken-on-start_{detached.name}"))  # as the engine names a damaged part
    out = dossier("inspect", "verify", env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    said = " ".join(out.stdout.split())  # the sentence is wrapped to the terminal's width
    assert "ClickHouse found broken parts when it opened the store and set them aside (events 1" in said
    assert ": OK" not in out.stdout
