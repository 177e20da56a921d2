"""Publishing against the real broker (Tansu): what goes in comes back byte for byte, in dossier order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from click.testing import CliRunner, Result

import producers.cli_publish
import producers.filepublish
import producers.publish
from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker
from dossier_runtime.kafka import ensure_topic
from dossier_runtime.settings import Settings
from producers.cli_publish import publish_cmd
from producers.publish import outbound_event, publish_outbound
from schemas.codec import encode
from schemas.jsonform import from_json_line
from schemas.registry import current_schema
from tests.test_publish_support import consume, dossier_id, full_history, interleaved, write_jsonl

pytestmark = pytest.mark.broker


def run(settings: Settings, *args: str) -> Result:
    result = CliRunner().invoke(publish_cmd, list(args), obj=settings)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def crash(handle: BrokerHandle) -> None:
    """The broker process dies (SIGKILL) under a live producer."""
    assert handle.process is not None
    handle.process.kill()
    handle.process.wait(5)


def test_published_events_come_back_byte_identical_in_dossier_order(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    events = interleaved(6)  # 48 events, dossiers interleaved
    jsonl = write_jsonl(tmp_path / "day1.jsonl", events[:20])
    avro = tmp_path / "day2.avro"
    with avro.open("wb") as out:
        fastavro.writer(out, current_schema().parsed, [e.to_record() for e in events[20:]], codec="deflate")
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic=topic, partitions=3)
    result = run(settings, str(jsonl), str(avro), "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["dossiers"], summary["events"], summary["delivered"], summary["undelivered"]) == (6, 48, 48, 0)
    assert ensure_topic(broker.bootstrap, topic, 3) == 3  # created with the configured count, not Tansu's 4

    records = consume(broker.bootstrap, topic, 3, expected=48)
    assert len(records) == 48
    assert sorted(r.value for r in records) == sorted(encode(e) for e in events)
    fingerprint = current_schema().fingerprint_hex.encode()
    for n in range(1, 7):
        mine = [r for r in records if r.key == dossier_id(n).encode()]
        assert len({r.partition for r in mine}) == 1, "one dossier, one partition"
        assert [r.value for r in mine] == [encode(e) for e in full_history(n)], "offset order is seq order"
        assert [dict(r.headers)["event_type"] for r in mine] == [e.event_type.value.encode() for e in full_history(n)]
        assert all(dict(r.headers)["schema-fingerprint"] == fingerprint for r in mine)
        assert all(len(fingerprint) == 16 for r in mine)


def test_skip_invalid_publishes_valid_dossiers_and_writes_the_rejected_ones(
    broker: BrokerHandle, topic: str, tmp_path: Path
) -> None:
    good = full_history(1)
    bad = full_history(2)
    bad[4] = bad[4].replace(actor_id="ld-99")  # tampered after sealing
    path = write_jsonl(tmp_path / "mixed.jsonl", good + bad)
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic=topic, partitions=2)
    result = run(settings, str(path), "--skip-invalid", "--format", "json")
    assert result.exit_code == 0, result.output
    rejected = tmp_path / "mixed.rejected.jsonl"
    assert result.stderr.splitlines() == [
        result.stderr.splitlines()[0],
        f"1 dossier(s) rejected; their 8 line(s) are in {rejected}: fix them and publish that file",
    ]
    assert result.stderr.startswith(f"{path}:13: {dossier_id(2)} seq 5: ResultApproved event content does not")
    assert rejected.read_text(encoding="utf-8").splitlines() == path.read_text(encoding="utf-8").splitlines()[8:]
    summary = json.loads(result.stdout)
    assert (summary["valid_dossiers"], summary["rejected_dossiers"], summary["delivered"]) == (1, 1, 8)
    assert summary["rejected_file"] == str(rejected)
    records = consume(broker.bootstrap, topic, 2, expected=8)
    assert [r.value for r in records if r.key] == [encode(e) for e in good]


def test_broker_dies_mid_run_then_the_undelivered_file_completes_it(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = interleaved(10)  # 80 events
    outbound = [outbound_event(e, f"in.jsonl:{i}") for i, e in enumerate(events, start=1)]
    monkeypatch.setattr(producers.publish, "WINDOW", 4)  # settle as we go, so the kill lands mid-run
    first = start_broker(log_path=tmp_path / "first.log")
    acknowledged = [0]

    def kill_after_25(n: int) -> None:
        acknowledged[0] += n
        if acknowledged[0] == 25:
            crash(first)

    try:
        report = publish_outbound(
            first.bootstrap,
            topic,
            3,
            outbound,
            progress=kill_after_25,
            producer_config={"delivery_timeout_ms": 2_500, "request_timeout_ms": 2_000, "max_block_ms": 2_000},
        )
    finally:
        stop_broker(first)
    assert not report.ok
    delivered_ids = [d.event_id for d in report.delivered]
    failed_ids = [u.event_id for u in report.failed]
    assert len(delivered_ids) >= 25
    assert sorted(delivered_ids + failed_ids) == sorted(e.event_id for e in events), "every event accounted once"
    assert delivered_ids == [e.event_id for e in events[: len(delivered_ids)]], "delivered in input order"
    assert all(not u.sent for u in report.failed[-10:]), "after the failure nothing more was sent"

    undelivered = tmp_path / "in.undelivered.jsonl"
    assert producers.publish.write_undelivered(report, undelivered) == len(failed_ids)
    lines = undelivered.read_text(encoding="utf-8").splitlines()
    assert [encode(from_json_line(line)) for line in lines] == [u.event.payload for u in report.failed]

    # Tansu forgets everything on restart (platform.md A-9): the new broker holds only what the re-run sends
    second = start_broker(log_path=tmp_path / "second.log")
    try:
        settings = Settings(kafka_bootstrap=second.bootstrap, topic=topic, partitions=3)
        plain = run(settings, str(undelivered))
        assert plain.exit_code == 3, "without --continuation a mid-history file is refused"
        result = run(settings, "--continuation", str(undelivered), "--format", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["delivered"] == len(failed_ids)
        records = consume(second.bootstrap, topic, 3, expected=len(failed_ids))
    finally:
        stop_broker(second)
    assert sorted(r.value for r in records) == sorted(u.event.payload for u in report.failed)


def test_cli_reports_a_failed_delivery_with_exit_1(tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker dies after 3 acknowledgements: exit 1, the exact split, an undelivered file, a per-event report."""
    events = full_history(1) + full_history(2)
    path = write_jsonl(tmp_path / "events.jsonl", events)
    handle = start_broker(log_path=tmp_path / "broker.log")

    seen = [0]

    def killing_step(n: int) -> None:  # the acknowledgements as the progress sees them: the 3rd kills the broker
        seen[0] += n
        if seen[0] == 3:
            crash(handle)

    monkeypatch.setattr(producers.publish, "WINDOW", 1)
    quick = {"delivery_timeout_ms": 2_500, "request_timeout_ms": 2_000, "max_block_ms": 2_000}
    real = producers.publish.publish_with_settings

    def quick_publish(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **{**kwargs, "producer_config": quick, "progress": killing_step})

    monkeypatch.setattr(producers.filepublish, "publish_with_settings", quick_publish)
    try:
        result = run(Settings(kafka_bootstrap=handle.bootstrap, topic=topic, partitions=2), str(path))
    finally:
        stop_broker(handle)
    assert result.exit_code == 1, result.output
    undelivered = tmp_path / "events.undelivered.jsonl"
    report = tmp_path / "events.undelivered.report.jsonl"
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    delivered = [line for line in lines if line["status"] == "delivered"]
    assert len(lines) == 16
    assert len(delivered) >= 3
    assert all(line["status"] in ("failed", "not-sent") for line in lines[len(delivered) :])
    assert all(isinstance(line["offset"], int) for line in delivered)
    source_lines = path.read_text(encoding="utf-8").splitlines()
    assert undelivered.read_text(encoding="utf-8").splitlines() == source_lines[len(delivered) :]
    first_missing = len(delivered) + 1
    assert result.stderr.splitlines()[0].startswith(f"{path}:{first_missing}: not delivered: ")
    assert (
        f"delivery failed: {len(delivered)} of 16 event(s) delivered, {16 - len(delivered)} not. "
        f"Undelivered events: {undelivered}; per-event report: {report}." in result.stderr
    )
    assert f"  dossier produce publish --continuation {undelivered}" in result.stderr
    assert (
        json.loads(
            run(
                Settings(kafka_bootstrap="127.0.0.1:1"),
                "--check",
                "--continuation",
                "--format",
                "json",
                str(undelivered),
            ).stdout
        )["problems"]
        == 0
    )
