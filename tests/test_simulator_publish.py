"""``simulate --publish`` against the real broker: every event arrives as written, keyed by its dossier."""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from click.testing import CliRunner, Result

import producers.publish
from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker
from dossier_runtime.settings import Settings
from producers.cli_simulate import simulate_cmd
from schemas.codec import encode_record
from schemas.registry import current_schema
from tests.test_publish_support import consume

pytestmark = pytest.mark.broker
KEY = "k" * 32


def simulate(settings: Settings, out: Path, *args: str) -> Result:
    argv = ["--dossiers", "120", "--days", "5", "--seed", "3", "--out", str(out), "--publish", *args]
    result = CliRunner().invoke(simulate_cmd, argv, obj=settings, env={"DOSSIER_PSEUDONYM_KEY": KEY})
    assert "Traceback" not in result.output, result.output
    return result


def file_events(out: Path) -> dict[str, list[dict[str, Any]]]:
    """dossier id -> its records, in file order, read with fastavro."""
    by_dossier: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for path in sorted(out.glob("events-*.avro")):
        with path.open("rb") as fo:
            for record in fastavro.reader(fo):
                record["event_id"] = str(record["event_id"])
                by_dossier[record["dossier_id"]].append(record)
    return by_dossier


def test_every_event_arrives_byte_identical_keyed_by_dossier(broker: BrokerHandle, topic: str, tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic=topic, partitions=3)
    result = simulate(settings, tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    expected = file_events(tmp_path)
    total = sum(len(v) for v in expected.values())
    assert json.loads(result.stdout)["events"] == total
    assert len(expected) == 120

    records = consume(broker.bootstrap, topic, 3, expected=total)
    assert len(records) == total, "every event once, nothing more"
    fingerprint = current_schema().fingerprint_hex.encode()
    received: dict[bytes, list[Any]] = collections.defaultdict(list)
    for r in records:
        received[r.key].append(r)
    assert set(received) == {d.encode() for d in expected}
    for dossier_id, events in expected.items():
        mine = received[dossier_id.encode()]
        assert len({r.partition for r in mine}) == 1, "one dossier, one partition"
        assert [r.value for r in mine] == [encode_record(e) for e in events], "as written, in seq order"
        assert [dict(r.headers)["event_type"] for r in mine] == [e["event_type"].encode() for e in events]
        assert all(dict(r.headers)["schema-fingerprint"] == fingerprint for r in mine)


def test_unreachable_broker_is_a_clear_error_with_exit_1(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", topic="t-unreachable")
    started = time.monotonic()
    result = simulate(settings, tmp_path, "--quiet")
    assert result.exit_code == 1, result.output
    assert "nothing was published" in result.output
    assert time.monotonic() - started < 60
    assert (tmp_path / "manifest.jsonl").exists(), "the files are written before publishing"


def test_a_delivery_failure_midway_says_how_many_arrived_with_exit_1(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker dies after 25 events were handed over: exit 1, the split, and how to complete the run."""
    handle = start_broker(log_path=tmp_path / "broker.log")
    real = producers.publish.publish_with_settings

    def dying(events: Iterator[Any]) -> Iterator[Any]:
        for n, event in enumerate(events):
            if n == 25:
                assert handle.process is not None
                handle.process.kill()
                handle.process.wait(5)
            yield event

    def publish(settings: Settings, events: Iterator[Any], **kwargs: Any) -> Any:
        quick = {"delivery_timeout_ms": 2_500, "request_timeout_ms": 2_000, "max_block_ms": 2_000}
        return real(settings, dying(events), **{**kwargs, "producer_config": quick})

    monkeypatch.setattr(producers.publish, "WINDOW", 1)
    monkeypatch.setattr(producers.publish, "publish_with_settings", publish)
    try:
        result = simulate(Settings(kafka_bootstrap=handle.bootstrap, topic=topic), tmp_path / "sim", "--quiet")
    finally:
        stop_broker(handle)
    assert result.exit_code == 1, result.output
    total = sum(len(v) for v in file_events(tmp_path / "sim").values())
    message = " ".join(result.stderr.split())
    assert "Error: delivery failed: " in message
    delivered = int(message.split("delivery failed: ")[1].split(" ")[0])
    assert 0 < delivered <= 25
    assert f"{delivered} of {total} events were delivered to {topic}, {total - delivered} were not" in message
    assert "Re-run the same command" in message
