"""`dossier consume load` of contract JSON Lines, on real chDB: the same rows, checks and dead letters as Avro."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumers.jsonlfile import load_paths
from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_audit.cli import main
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.events import EVENT_FIELDS, FIELD_NAMES, DossierEvent
from schemas.golden import sample_event
from schemas.jsonform import to_json_line
from tests.test_consumers_support import events, write_container

_COLUMNS = ", ".join(f"`{name}`" for name in FIELD_NAMES)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _load(data_dir: Path, paths: list[Path]) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    """Load ``paths`` into a store of their own; the summary rows and every stored event (contract columns)."""
    with opened_store(Settings(data_dir=data_dir), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        try:
            rows = [loaded.row() for loaded in load_paths(sink, paths, data_dir)]
        finally:
            sink.close()
        stored = store.query(f"SELECT {_COLUMNS} FROM events ORDER BY dossier_id, seq").rows
    return rows, stored


def test_json_lines_store_the_same_rows_as_avro_and_reload_stores_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_type = [
        sample_event(t).replace(dossier_id=f"000.00.31.H29-240301-{i:04d}") for i, t in enumerate(EVENT_FIELDS)
    ]
    evs = events(12) + every_type  # every field, arrays and enums included
    avro = write_container(tmp_path / "e.avro", evs)
    lines = [to_json_line(e) for e in evs]
    jsonl = _write_lines(tmp_path / "e.jsonl", [*lines[:10], "", *lines[10:]])  # a blank line 11
    _, from_avro = _load(tmp_path / "a", [avro])
    monkeypatch.chdir(tmp_path)  # a relative data directory, as the default one is
    [first, again], from_jsonl = _load(Path("j"), [jsonl, jsonl])
    assert from_jsonl == from_avro and len(from_avro) == len(evs)
    assert (first["events"], first["stored"], first["dead_letters"]) == (len(evs), len(evs), 0)
    assert (again["stored"], again["duplicates"], again["dead_letters"]) == (0, len(evs), 0)
    with opened_store(Settings(data_dir=Path("j")), serve=False) as store:
        provenance = store.query("SELECT DISTINCT _topic FROM events").rows
        offsets = [r[0] for r in store.query("SELECT _offset FROM events ORDER BY _offset").rows]
    assert provenance == [("file:e.jsonl",)]
    assert offsets == [*range(1, 11), *range(12, len(evs) + 2)]  # line numbers, the blank line skipped


def test_bad_lines_are_dead_letters_naming_their_line(tmp_path: Path) -> None:
    evs = events(1)
    lines = [to_json_line(e) for e in evs]
    broken = json.loads(lines[4])
    broken["status"] = 42
    lines[2] = "{not json"
    lines[4] = json.dumps(broken, ensure_ascii=False)
    lines[5] = json.dumps({**json.loads(lines[5]), "colour": "blue"})
    lines[6] = json.dumps({**json.loads(lines[6]), "status": 2**40})  # a valid JSON number Avro's int cannot hold
    path = _write_lines(tmp_path / "h.jsonl", lines)
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "consume", "load", str(path)])
    assert result.exit_code == 3, result.output  # the rest is stored; the dead letters are said, and listed on demand
    assert result.stderr.strip().splitlines()[-1].startswith("4 event(s) not stored, dead-lettered (undecodable 3")
    assert "dead letter h.jsonl line 3: undecodable: not valid JSON" in result.stderr
    assert "dead letter h.jsonl line 5: invalid:" in result.stderr and "status 42" in result.stderr
    assert "dead letter h.jsonl line 6: undecodable: unknown field(s): colour" in result.stderr
    assert f"dead letter h.jsonl line 7: undecodable: status {2**40} does not fit the contract's int" in result.stderr
    with opened_store(Settings(data_dir=tmp_path / "d"), serve=False) as store:
        dead = store.query("SELECT topic, offset, kind, raw FROM dead_letters FINAL ORDER BY offset").rows
        assert store.query("SELECT count() FROM events").scalar() == len(evs) - 4
    assert [(t, o, k) for t, o, k, _r in dead] == [
        ("file:h.jsonl", 3, "undecodable"),
        ("file:h.jsonl", 5, "invalid"),
        ("file:h.jsonl", 6, "undecodable"),
        ("file:h.jsonl", 7, "undecodable"),
    ]
    assert [r for *_x, r in dead] == [lines[2], lines[4], lines[5], lines[6]]  # each line as written


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ('{"a": 1}\n[]\n', "no line is a dossier event"),
    ],
)
def test_a_file_without_events_is_refused(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "none.jsonl"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "consume", "load", str(path)])
    assert result.exit_code == 1
    assert expected in result.stderr and str(path) in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if "no line" in expected:
        assert "line 1: unknown field(s): a" in result.stderr


def test_a_file_is_read_by_its_content(tmp_path: Path) -> None:
    evs: list[DossierEvent] = events(1)
    disguised = write_container(tmp_path / "events.jsonl", evs)  # Avro under a JSON Lines name
    rows, stored = _load(tmp_path / "d", [disguised])
    assert rows[0]["stored"] == len(stored) == len(evs)
