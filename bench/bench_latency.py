"""Delay from publish to queryable at low traffic, through ``dossier consume run``'s path.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_latency --events 40

Starts a fresh embedded broker and store, runs the live loader with its
default options (the Kafka reader in a child process, the store in this one),
then publishes one event at a time, ``--gap`` seconds apart, and polls the
store until each is in ``events``: the delay from the producer's acknowledged
send to the first query that finds it. The target (the consumers issue) is
under 2 seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.benchdata import records
from consumers.live import RunOptions
from consumers.migrations import migrate
from consumers.readerproc import load_live
from consumers.sink import Sink
from dossier_runtime.broker import start_broker, stop_broker
from dossier_runtime.kafka import ensure_topic, make_producer
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.codec import encode_record

TOPIC = "latency-events"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.7, help="seconds between two events")
    args = parser.parse_args()
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(log_path=Path(tmp) / "broker.log")
        settings = Settings(data_dir=Path(tmp) / "data", topic=TOPIC, partitions=6, kafka_bootstrap=broker.bootstrap)
        try:
            ensure_topic(broker.bootstrap, TOPIC, 6)
            with opened_store(settings, role="writer", serve=False) as store:
                migrate(store)
                sink = Sink(store)
                assigned = threading.Event()
                stop = threading.Event()
                loader = threading.Thread(
                    target=load_live,
                    args=(settings, sink, broker.bootstrap, RunOptions(group="latency"), stop),
                    kwargs={"quiet": True, "on_assign": lambda _p, _when: assigned.set()},
                )
                loader.start()
                assigned.wait(60)
                producer = make_producer(broker.bootstrap, linger_ms=0)
                for record in records(args.events):
                    value = encode_record(record)
                    producer.send(TOPIC, key=record["dossier_id"].encode(), value=value).get(timeout=10)
                    sent = time.perf_counter()
                    query = "SELECT count() FROM events WHERE event_id = {id:String}"
                    while not store.query(query, {"id": record["event_id"]}).scalar():
                        time.sleep(0.01)
                    delays.append(time.perf_counter() - sent)
                    time.sleep(args.gap)
                producer.close()
                stop.set()
                loader.join()
                sink.close()
        finally:
            stop_broker(broker)
    cuts = statistics.quantiles(delays, n=20)
    print(
        f"{len(delays)} events, one every {args.gap} s: publish to queryable median {statistics.median(delays):.3f} s, "
        f"p95 {cuts[-1]:.3f} s, max {max(delays):.3f} s (target < 2 s)"
    )


if __name__ == "__main__":
    main()
