"""Raw reads of one topic in a consumer group with librdkafka: the loader's settings against a variant.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_kafka_read --events 1000000

Publishes ``--events`` messages to a fresh embedded broker (as ``bench_consumer``
does), then reads them all in a fresh group, alternately with the loader's
consumer settings (:func:`dossier_runtime.kafka.make_group_consumer`) and with
librdkafka's default ``fetch.queue.backoff.ms`` (1 s), ``--runs`` times each:
records/s from the first message, and the reading process's CPU per record.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_consumer import TOPIC, produce, read_rate
from dossier_runtime.broker import start_broker, stop_broker
from dossier_runtime.kafka import make_group_consumer

VARIANTS: dict[str, dict[str, Any]] = {
    "loader settings": {},
    "default fetch.queue.backoff.ms (1000)": {"fetch.queue.backoff.ms": 1000},
}


def read_all(bootstrap: str, n: int, group: str, overrides: dict[str, Any]) -> tuple[float, float]:
    """(records/s, CPU-µs per record) of reading ``n`` records in a new group."""
    consumer = make_group_consumer(bootstrap, group, **overrides)
    consumer.subscribe([TOPIC])
    return read_rate(consumer, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(log_path=Path(tmp) / "broker.log")
        try:
            produce(broker.bootstrap, args.events)
            for run in range(args.runs):
                for i, (name, overrides) in enumerate(VARIANTS.items()):
                    rate, cpu = read_all(broker.bootstrap, args.events, f"read-{run}-{i}", overrides)
                    print(f"run {run + 1}, {name}: {rate:,.0f} records/s, {cpu:.2f} CPU-µs per record")
        finally:
            stop_broker(broker)


if __name__ == "__main__":
    main()
