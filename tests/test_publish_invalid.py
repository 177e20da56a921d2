"""`dossier produce publish` refuses bad input as a whole: exact `file:line: reason`, exit 3, nothing sent.

These runs point at a closed port: had anything been sent, the command would
have failed with exit 1 after the bootstrap timeout instead of exit 3 at once.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import fastavro
import pytest
from click.testing import CliRunner, Result

from dossier_runtime.settings import Settings
from producers.cli_publish import publish_cmd
from schemas.events import EventType as E
from schemas.jsonform import to_json, to_json_line
from schemas.registry import current_schema
from tests.eventfactory import T0, history
from tests.test_publish_support import dossier_id, full_history, write_jsonl

CLOSED = Settings(kafka_bootstrap="127.0.0.1:1")
D1 = dossier_id(1)


def run(*args: str, settings: Settings = CLOSED) -> Result:
    result = CliRunner().invoke(publish_cmd, list(args), obj=settings)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expect_refused(result: Result, *problems: str) -> None:
    assert result.exit_code == 3, result.output
    listed = [line for line in result.stderr.splitlines() if not line.startswith("nothing published")]
    assert listed == list(problems)
    assert result.stderr.splitlines()[-1].startswith("nothing published: ")


def test_illegal_transition(tmp_path: Path) -> None:
    events = full_history()
    # ResultReturned straight after reception: 2 -> 10 is not a move of the lifecycle
    bad = history(events[0], events[1], events[6], dossier_id=D1)
    path = write_jsonl(tmp_path / "events.jsonl", bad)
    expect_refused(
        run(str(path)),
        f"{path}:3: {D1} seq 3: illegal transition from 2 (Được tiếp nhận) by ResultReturned to 10",
    )


def test_seq_gap_and_repeat(tmp_path: Path) -> None:
    events = full_history()
    gap = write_jsonl(tmp_path / "gap.jsonl", events[:3] + events[4:])
    expect_refused(
        run(str(gap)),
        f"{gap}:4: {D1} seq 5: seq gap: expected seq 4, got 5 (ResultApproved)",
        f"{gap}:4: {D1} seq 5: prev_hash {events[4].prev_hash.hex()[:16]}… of ResultApproved is not the hash of "
        f"seq 3 ({events[2].hash.hex()[:16]}…)",
    )
    repeat = write_jsonl(tmp_path / "repeat.jsonl", [*events[:3], events[2], *events[3:]])
    result = run(str(repeat))
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"{repeat}:4: {D1} seq 3: event_id {events[2].event_id} repeats the event at {repeat}:3",
        "nothing published: 1 problem(s) in 1 of 1 dossier(s); fix them, or publish the valid dossiers with "
        "--skip-invalid",
    ]


def test_seq_repeat_with_new_identity(tmp_path: Path) -> None:
    events = full_history()
    twin = events[2].replace(event_id="11111111-2222-4333-8444-555555555555")
    path = write_jsonl(tmp_path / "repeat.jsonl", [*events[:3], twin])
    result = run(str(path))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{path}:4: {D1} seq 3: seq repeat: seq 3 (DossierTransferred) comes after seq 3"
    )


def test_broken_hash(tmp_path: Path) -> None:
    events = full_history()
    events[3] = events[3].replace(actor_id="someone-else")
    path = write_jsonl(tmp_path / "events.jsonl", events)
    result = run(str(path))
    assert result.exit_code == 3
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:4: {D1} seq 4: StepHandedOver event content does not match its hash (stored ")
    assert first.endswith("…): changed after sealing")


def test_missing_required_field_and_malformed_json(tmp_path: Path) -> None:
    events = full_history()
    lines = [to_json_line(e) for e in events]
    obj = to_json(events[1])
    del obj["applicant_ref"]
    lines[1] = json.dumps(obj, ensure_ascii=False)
    obj = to_json(events[5])
    obj["result_ref"] = None
    lines[5] = json.dumps(obj, ensure_ascii=False)
    lines.insert(3, '{"event_id": "x", ')
    path = write_lines(tmp_path / "events.jsonl", lines)
    expect_refused(
        run(str(path)),
        f"{path}:2: missing field(s): applicant_ref",
        f"{path}:4: not valid JSON: Expecting property name enclosed in double quotes at column 19",
        f"{path}:7: {D1} seq 6: invalid ResultIssued event: ResultIssued requires result_ref",
    )


def test_every_problem_of_several_files_is_listed(tmp_path: Path) -> None:
    a = full_history(1)
    b = full_history(2)
    b[7] = b[7].replace(rating=9)
    first = write_jsonl(tmp_path / "a.jsonl", a[:4])
    second = write_jsonl(tmp_path / "b.jsonl", a[4:] + b)
    result = run(str(first), str(second), "--format", "json")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(
        f"{second}:12: {dossier_id(2)} seq 8: invalid CitizenRated event: rating 9 is outside 1-5"
    )
    summary = json.loads(result.stdout)
    assert summary["dossiers"] == 2
    assert summary["rejected_dossiers"] == 1
    assert summary["delivered"] == 0


def test_not_an_avro_file(tmp_path: Path) -> None:
    path = tmp_path / "events.avro"
    path.write_bytes(b"PK\x03\x04 this is a zip, not Avro")
    expect_refused(run(str(path)), f"{path}: not an Avro container file (it does not start with Obj\\x01)")


def test_binary_file_named_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\x00\xff\xfe garbage\n")
    expect_refused(run(str(path)), f"{path}:1: not UTF-8 text (byte 2); is this an Avro or binary file?")


def test_avro_with_a_foreign_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.avro"
    schema = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}
    with path.open("wb") as out:
        fastavro.writer(out, schema, [{"x": 1}])
    result = run(str(path))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(f"{path}: its writer schema (fingerprint ")
    assert "is not a released dossier-event schema (v1 " in result.stderr


def test_avro_records_are_positioned_by_index(tmp_path: Path) -> None:
    events = full_history()
    events[2] = events[2].replace(unit_code="somewhere")
    path = tmp_path / "events.avro"
    with path.open("wb") as out:
        fastavro.writer(out, current_schema().parsed, [e.to_record() for e in events])
    result = run(str(path))
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(f"{path}:#3: {D1} seq 3: invalid DossierTransferred event: ")


def test_continuation_is_refused_unless_asked(tmp_path: Path) -> None:
    events = full_history()
    path = write_jsonl(tmp_path / "rest.jsonl", events[3:])
    result = run(str(path), "--check")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{path}:1: {D1} seq 4: seq gap: expected seq 1, got 4 (StepHandedOver); the dossier starts at seq 4: "
        "if its earlier events are already on the topic (e.g. an undelivered file), publish with --continuation"
    )
    result = run(str(path), "--check", "--continuation", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["continuations"] == 1


def test_continuation_still_checks_its_own_chain(tmp_path: Path) -> None:
    events = full_history()
    events[5] = events[5].replace(result_ref="tampered")
    path = write_jsonl(tmp_path / "rest.jsonl", events[3:])
    result = run(str(path), "--check", "--continuation")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(f"{path}:3: {D1} seq 6: ResultIssued event content does not")


def test_check_only_accepts_valid_input(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", full_history(1) + full_history(2))
    result = run(str(path), "--check")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "valid dossiers     2" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "No such option '--frobnicate'"),
        ([], "Missing argument 'FILES...'"),
        (["does-not-exist.jsonl"], "'does-not-exist.jsonl' does not exist"),
        (["--format", "yaml", "x"], "'yaml' is not one of 'table', 'json'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_help_has_an_example() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "dossier produce publish sealed.jsonl" in result.output
    assert "Exit codes: 0 published" in result.output


def test_unreachable_broker_is_exit_1_within_seconds(tmp_path: Path) -> None:
    import time

    path = write_jsonl(tmp_path / "events.jsonl", full_history())
    started = time.monotonic()
    result = run(str(path))
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: cannot reach Kafka at 127.0.0.1:1 within 5 s (KafkaTimeoutError); check DOSSIER_KAFKA_BOOTSTRAP, "
        "or unset it to use the embedded broker; nothing was published"
    )


def test_a_name_of_invisible_characters_is_empty(tmp_path: Path) -> None:
    events = full_history()
    # zero-width space + BOM: what a copy from a chat or a spreadsheet export can leave in a field
    bad = history(*(e.replace(actor_id="\u200b\ufeff") if e.seq == 3 else e for e in events), dossier_id=D1)
    path = write_jsonl(tmp_path / "events.jsonl", bad)
    expect_refused(
        run(str(path), "--check"),
        f"{path}:3: {D1} seq 3: invalid DossierTransferred event: actor_id is empty: only spaces or invisible "
        "characters (U+200B U+FEFF)",
    )


def test_a_stop_whose_reason_is_only_nbsp_is_for_the_audit_to_flag(tmp_path: Path) -> None:
    """Like "", a reason of only NBSPs satisfies the contract: the audit (R17) reports it; refusing would hide it."""
    stop = history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2, {"due_at": T0 + timedelta(days=3)}),
        (E.PROCESSING_STOPPED, 8, {"reason": "\u00a0\u00a0"}),
        dossier_id=D1,
    )
    result = run(str(write_jsonl(tmp_path / "events.jsonl", stop)), "--check")
    assert (result.exit_code, result.stderr) == (0, "")
