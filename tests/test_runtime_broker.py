"""The embedded broker and Kafka client factories, against a real Tansu process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dossier_runtime.broker import BrokerHandle, embedded_broker, find_broker, port_open
from dossier_runtime.errors import BrokerError
from dossier_runtime.kafka import ensure_topic, make_consumer, make_producer


def test_embedded_broker_is_reused_then_stopped(tmp_path: Path) -> None:
    with embedded_broker(tmp_path) as first:
        assert first.owned
        port = int(first.bootstrap.rsplit(":", 1)[1])
        assert port_open(port)
        with embedded_broker(tmp_path) as second:
            assert not second.owned
            assert second.bootstrap == first.bootstrap
            assert second.started_at == first.started_at
        assert port_open(port), "a reusing process must not stop the owner's broker"
    assert find_broker(tmp_path) is None
    assert not (tmp_path / "broker.json").exists()
    deadline = time.monotonic() + 5
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not port_open(port)


def test_stale_state_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "broker.json").write_text('{"pid": 999999, "port": 1, "started_at": "x"}')
    assert find_broker(tmp_path) is None
    with embedded_broker(tmp_path) as handle:
        assert handle.owned


def test_topic_created_with_its_final_partition_count(broker: BrokerHandle, topic: str) -> None:
    assert ensure_topic(broker.bootstrap, topic, 6) == 6
    assert ensure_topic(broker.bootstrap, topic, 6) == 6
    with pytest.raises(BrokerError, match=f"topic '{topic}' has 6 partitions, configured 4"):
        ensure_topic(broker.bootstrap, topic, 4)


def test_produce_and_consume_round_trip(broker: BrokerHandle, topic: str) -> None:
    ensure_topic(broker.bootstrap, topic, 3)
    producer = make_producer(broker.bootstrap)
    futures = [producer.send(topic, key=f"d{i % 5}".encode(), value=f"v{i}".encode()) for i in range(50)]
    producer.flush()
    assert all(f.get(timeout=10).offset >= 0 for f in futures)
    producer.close()
    consumer = make_consumer(broker.bootstrap, group_id=None)
    from kafka import TopicPartition

    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    seen: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(seen) < 50 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            seen.extend(r.value for r in records)
    consumer.close()
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(50))


def test_unreachable_broker_is_a_clear_error_within_seconds() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"cannot reach Kafka at 127\.0\.0\.1:1 within 5 s"):
        make_producer("127.0.0.1:1")
    assert time.monotonic() - started < 10
