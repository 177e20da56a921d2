"""Migrations, bulk loads and the SQL contract check, against real chDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumers.bulk import InputFileError, load_file
from consumers.migrations import Migration, MigrationError, migrate
from consumers.sink import Sink
from consumers.validation import reason_sql, valid_sql
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.errors import EventValidationError
from schemas.events import EVENT_FIELDS, EventType, validate_event
from schemas.golden import sample_event
from tests.test_consumers_support import content_sql, dossier, events, insert_old_layout, write_container


def test_migrate_is_idempotent_and_refuses_an_edited_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        first = migrate(store)
        assert {m.state for m in first} == {"applied now"}
        assert {m.state for m in migrate(store)} == {"applied"}
        import consumers.migrations as mig

        released = mig.released_migrations()
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited\n") if m.version == 2 else m for m in released]
        monkeypatch.setattr(mig, "released_migrations", lambda: edited)
        with pytest.raises(MigrationError, match=r"0002_events.sql.*never edit"):
            migrate(store)


def test_migrate_command_output(tmp_path: Path) -> None:
    done = dossier("consume", "migrate", "--format", "json", env={"DOSSIER_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert [r["state"] for r in json.loads(done.stdout)][:2] == ["applied now", "applied now"]
    again = dossier("consume", "migrate", "--format", "json", env={"DOSSIER_DATA_DIR": str(tmp_path)})
    assert {r["state"] for r in json.loads(again.stdout)} == {"applied"}


def _variants() -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for event_type in EVENT_FIELDS:
        good = sample_event(event_type)
        record = good.to_record()
        out.append((f"{event_type.value} ok", record))
        out.append((f"{event_type.value} bad status", {**record, "status": 11}))
        for name in sorted(EVENT_FIELDS[event_type].required)[:1]:
            out.append(
                (f"{event_type.value} without {name}", {**record, name: [] if name.endswith("documents") else None})
            )
        out.append((f"{event_type.value} with rating", {**record, "rating": 3}))
    base = sample_event(EventType.DOSSIER_SUBMITTED).to_record()
    out += [
        ("bad dossier id", {**base, "dossier_id": "nope"}),
        ("bad uuid", {**base, "event_id": "not-a-uuid"}),
        ("unknown channel", {**base, "channel": "UNKNOWN"}),
        ("empty actor", {**base, "actor_id": ""}),
        ("invisible actor", {**base, "actor_id": "\u200b\ufeff"}),  # zero-width space + BOM
        ("nbsp procedure code", {**base, "procedure_code": "\u00a0\u3000"}),
        ("unknown type", {**base, "event_type": "Unknown"}),
    ]
    stopped = sample_event(EventType.PROCESSING_STOPPED).to_record()
    supplement = sample_event(EventType.SUPPLEMENT_REQUESTED).to_record()
    out += [
        ("unknown attachments", {**stopped, "n_attachments": 0, "unknown_facts": ["n_attachments"]}),
        ("unknown but has a value", {**stopped, "n_attachments": 2, "unknown_facts": ["n_attachments"]}),
        ("unknown reason", {**stopped, "reason": None, "unknown_facts": ["n_attachments", "reason"]}),
        ("unknown facts unsorted", {**stopped, "reason": None, "unknown_facts": ["reason", "n_attachments"]}),
        ("unknown fact twice", {**stopped, "n_attachments": 0, "unknown_facts": ["n_attachments", "n_attachments"]}),
        ("not an unknowable fact", {**stopped, "unknown_facts": ["status"]}),
        ("unknown fact not carried", {**stopped, "unknown_facts": ["requested_documents"]}),
        ("required and unknown", {**supplement, "requested_documents": [], "unknown_facts": ["requested_documents"]}),
        ("required and missing", {**supplement, "requested_documents": [], "unknown_facts": []}),
    ]
    return out


def test_sql_contract_check_agrees_with_validate_event(tmp_path: Path) -> None:
    from schemas.events import DossierEvent

    variants = _variants()
    expected = []
    for _name, record in variants:
        try:
            validate_event(DossierEvent.from_record(record))
            expected.append(True)
        except EventValidationError:
            expected.append(False)
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        evs = [DossierEvent.from_record(r) for _n, r in variants]
        path = write_container(tmp_path / "v.avro", evs)
        sink.truncate()
        from consumers.avrofile import split_blocks
        from consumers.bulk import _stage  # the staging step only, to look at the verdicts

        buf = memoryview(path.read_bytes())
        header_end, _sync, blocks = split_blocks(buf)
        _stage(sink, buf, header_end, blocks, "file:v.avro", tmp_path)
        rows = store.query(f"SELECT _offset, {valid_sql()}, {reason_sql()} FROM {sink.staging} ORDER BY _offset").rows
        sink.close()
    got = [(bool(ok), reason) for _o, ok, reason in rows]
    for (name, _r), want, (ok, reason) in zip(variants, expected, got, strict=True):
        assert ok == want, f"{name}: python says {want}, SQL says {ok} ({reason})"
        assert (reason == "") == want, f"{name}: {reason}"


def test_load_twice_stores_nothing_twice_and_keeps_chains(tmp_path: Path) -> None:
    evs = events(300)
    path = write_container(tmp_path / "a.avro", evs)
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    first = dossier("consume", "load", str(path), "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)[0]["stored"] == len(evs)
    second = dossier("consume", "load", str(path), "--format", "json", env=env)
    row = json.loads(second.stdout)[0]
    assert (row["stored"], row["duplicates"], row["dead_letters"]) == (0, len(evs), 0)
    with opened_store(Settings(data_dir=tmp_path / "data"), serve=False) as store:
        rows, ids, bad_hashes, broken = store.query(content_sql()).rows[0]
        assert (rows, ids, bad_hashes, broken) == (len(evs), len(evs), 0, 0)
        assert store.query("SELECT count() FROM dossier_state FINAL").scalar() == 300
        assert store.query("SELECT sum(events) FROM daily_counts_view").scalar() == len(evs)
        assert store.query("SELECT min(_offset), max(_offset) FROM events").rows[0] == (0, len(evs) - 1)


def test_invalid_events_in_a_file_become_dead_letters(tmp_path: Path) -> None:
    evs = events(20)
    broken = evs[:]
    broken[5] = broken[5].replace(status=42)
    path = write_container(tmp_path / "b.avro", broken)
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        loaded = load_file(sink, path, tmp_path)
        sink.close()
        assert loaded.result.stored == len(evs) - 1
        [dead] = loaded.result.dead
        assert (dead.kind, dead.offset, dead.topic) == ("invalid", 5, "file:b.avro")
        assert "status 42" in dead.error
        assert store.query("SELECT kind, offset FROM dead_letters FINAL").rows == [("invalid", 5)]


def test_not_a_container_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.avro"
    path.write_bytes(b"hello")
    done = dossier("consume", "load", str(path), env={"DOSSIER_DATA_DIR": str(tmp_path / "d")})
    assert done.returncode == 1
    assert "x.avro" in done.stderr and "Traceback" not in done.stderr
    with opened_store(Settings(data_dir=tmp_path / "e"), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        try:
            with pytest.raises(InputFileError):
                load_file(sink, path, tmp_path)
        finally:
            sink.close()  # its index readers run in threads: closed before the store, as the loaders do


def test_catalogue_loads_and_reloads(tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "units.jsonl").write_text(
        json.dumps(
            {
                "unit_code": "000.00.31.H29",
                "name": "Phường 1",
                "level": "commune",
                "parent_code": None,
                "valid_from": "2020-01-01",
                "valid_to": None,
            }
        )
        + "\n",
        encoding="utf-8",
    )
    (cat / "procedures.jsonl").write_text(
        json.dumps(
            {
                "procedure_code": "1.001612",
                "version": "2024",
                "name": "Đăng ký",
                "level": "commune",
                "time_limit_value": 3,
                "time_limit_unit": "WORKING_DAYS",
                "service_level": "FULL_ONLINE",
                "has_fee": True,
                "fee_vnd": 50000,
                "paper_result": True,
                "same_day": False,
                "inter_agency": False,
                "clock_stops_for_financial": False,
                "component_codes": ["A", "B"],
                "step_budgets": [{"step_code": "TIEP_NHAN", "role": "RECEPTION_OFFICER", "minutes": 60}],
                "valid_from": "2024-01-01",
                "valid_to": None,
            }
        )
        + "\n",
        encoding="utf-8",
    )
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "d")}
    for _ in range(2):
        done = dossier("consume", "load-catalogue", str(cat), "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
    with opened_store(Settings(data_dir=tmp_path / "d"), serve=False) as store:
        assert store.query("SELECT count() FROM units FINAL").scalar() == 1
        assert store.query("SELECT step_budgets FROM procedures FINAL").scalar() == [
            {"step_code": "TIEP_NHAN", "role": "RECEPTION_OFFICER", "minutes": 60}
        ]
    (cat / "officials.jsonl").write_text('{"actor_id": "cv-01"}\n', encoding="utf-8")
    bad = dossier("consume", "load-catalogue", str(cat), env=env)
    assert bad.returncode == 1 and "officials.jsonl:1" in bad.stderr and "unit_code" in bad.stderr


_DAILY_FROM_EVENTS = (
    "SELECT toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, unit_code, procedure_code, channel, event_type, status, "
    "count() FROM events GROUP BY ALL ORDER BY ALL"
)
_DAILY_VIEW = (
    "SELECT day, unit_code, procedure_code, channel, outcome, status, events FROM daily_counts_view ORDER BY ALL"
)


def test_daily_counts_stay_exact_from_0004_through_0009_and_0018(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store loaded under 0004's daily_counts: 0009 backfills one row per event, 0018 counts events itself.

    Through both the view keeps its columns and its counts; replays and new loads stay exact.
    """
    import consumers.migrations as mig

    released = mig.released_migrations()
    first, second = events(120), events(80, start=120)
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        before_0009 = [m for m in released if m.version < 9 or 10 < m.version < 14]  # 0014 alters daily_events
        monkeypatch.setattr(mig, "released_migrations", lambda: before_0009)
        migrate(store)
        from consumers.sink import FEED_COLUMNS

        before_0015 = [c for c in FEED_COLUMNS if c != "unknown_facts"]  # 0015 adds it to events_feed
        insert_old_layout(store, write_container(tmp_path / "a.avro", first), before_0015)  # before 0014's layout
        old = store.query(_DAILY_VIEW).rows
        assert old == store.query(_DAILY_FROM_EVENTS).rows
        monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 18])
        assert {m.version: m.state for m in migrate(store)}[10] == "applied now"
        assert store.query(_DAILY_VIEW).rows == old  # the backfill
        assert {"daily_events", "daily_events_mv"} <= _tables(store) and not {"daily_counts", "daily_counts_mv"} & (
            _tables(store)
        )
        # A replay feeds the views again (a crash between the feed and the write): nothing is counted twice.
        feed = ", ".join(FEED_COLUMNS)
        store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM events")
        assert store.query(_DAILY_VIEW).rows == old

        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        assert {m.version: m.state for m in migrate(store)}[18] == "applied now"
        assert not {"daily_events", "daily_events_mv"} & _tables(store)
        assert store.query(_DAILY_VIEW).rows == old  # counted from events now
        types = dict(
            store.query(
                "SELECT name, type FROM system.columns WHERE table = 'daily_counts_view' "
                "AND database = currentDatabase()"
            ).rows
        )
        assert types == {
            **dict.fromkeys(("unit_code", "procedure_code", "channel", "outcome"), "String"),
            "day": "Date",
            "status": "Int32",
            "events": "UInt64",
        }
        store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM events")  # a replay: only events count
        assert store.query(_DAILY_VIEW).rows == old
        sink = Sink(store, engine="MergeTree")
        assert load_file(sink, write_container(tmp_path / "b.avro", second), tmp_path).result.stored == len(second)
        sink.close()
        assert store.query(_DAILY_VIEW).rows == store.query(_DAILY_FROM_EVENTS).rows
        assert store.query("SELECT sum(events) FROM daily_counts_view").scalar() == len(first) + len(second)
        for statement in next(m for m in released if m.version == 18).statements():  # re-running 0018 is safe
            store.command(statement)
        assert store.query("SELECT sum(events) FROM daily_counts_view").scalar() == len(first) + len(second)


def _tables(store: Store) -> set[str]:
    return {r[0] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows}
