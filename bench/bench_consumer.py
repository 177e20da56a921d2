"""Live loader rate against raw kafka-python consumption, in the same run, on the same topic.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_consumer --events 200000

1. Starts a Tansu broker, creates a 6-partition topic, publishes ``--events``
   single-object messages (lz4, keyed by dossier).
2. Raw: a kafka-python consumer assigned to every partition reads them all
   (records only, no decoding): records/s, the baseline of the target. For
   context, the same read with librdkafka, the loader's own Kafka client.
3. Loader: ``dossier consume run``'s path (:func:`consumers.readerproc.load_live`:
   the Kafka reader in a child process, the store in this one) in a fresh group
   and a fresh embedded store: events stored/s, timed from the group assignment
   to the last event stored (the ~3 s group join is excluded, as for raw).

Prints both rates and loader/raw; the target is >= 0.85.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.benchdata import records
from consumers.live import DEFAULT_MAX_EVENTS, RunOptions
from consumers.migrations import migrate
from consumers.readerproc import load_live
from consumers.sink import BatchResult, Sink
from dossier_runtime.broker import start_broker, stop_broker
from dossier_runtime.kafka import ensure_topic, make_consumer, make_group_consumer, make_producer
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.codec import encode_record

TOPIC = "bench-events"


def produce(bootstrap: str, n: int) -> None:
    ensure_topic(bootstrap, TOPIC, 6)
    producer = make_producer(bootstrap)
    futures = [producer.send(TOPIC, key=r["dossier_id"].encode(), value=encode_record(r)) for r in records(n)]
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    producer.close()


def raw_rate(bootstrap: str, n: int) -> tuple[float, float]:
    """Read ``n`` records with kafka-python assigned to every partition: (records/s, seconds).

    The clock starts once the consumer knows where every partition begins (connected, metadata and offsets
    fetched) and before the first fetch: the first ``poll`` can return most of a small topic at once (its fetches
    bring up to 1 MiB a partition), so a clock started when records first arrive measures almost nothing.
    """
    from kafka import TopicPartition

    consumer = make_consumer(bootstrap, group_id=None)
    partitions = [TopicPartition(TOPIC, p) for p in range(6)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    for partition in partitions:
        consumer.position(partition)  # blocks until the offset is known: connection and metadata are behind us
    seen, started = 0, time.perf_counter()
    while seen < n:
        batch = consumer.poll(timeout_ms=500, max_records=20_000)
        seen += sum(len(v) for v in batch.values())
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed, elapsed


def read_rate(consumer: Any, n: int) -> tuple[float, float]:
    """Read ``n`` records with a librdkafka consumer already assigned or subscribed: (records/s, CPU-µs per
    record), from the first record."""
    seen, started, cpu = 0, 0.0, 0.0
    while seen < n:
        messages = consumer.consume(num_messages=10_000, timeout=0.5)
        if messages and not started:
            started, cpu = time.perf_counter(), time.process_time()
        for message in messages:
            message.value()
        seen += len(messages)
    elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
    consumer.close()
    return n / elapsed, 1e6 * spent / n


def raw_rate_librdkafka(bootstrap: str, n: int) -> float:
    """The same raw read with the loader's own client (librdkafka, as configured for the loader), for context."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = make_group_consumer(bootstrap, "bench-raw")
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(6)])
    return read_rate(consumer, n)[0]


def live_load(
    bootstrap: str,
    n: int,
    data_dir: Path,
    max_events: int,
    *,
    on_assign: Callable[[float], None],
    on_done: Callable[[], None],
    prepare: Callable[[], None] | None = None,
    reader_decodes: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """``dossier consume run``'s path until ``n`` events are stored: the Kafka reader in its own process,
    the store in this one (a fresh store in ``data_dir``). ``on_assign(when)`` runs at the group
    assignment, ``on_done()`` once the last event is stored, ``prepare()`` after the store is migrated;
    ``reader_decodes=False``: the store parses the Avro itself (as on a server)."""
    settings = Settings(data_dir=data_dir, topic=TOPIC, partitions=6, kafka_bootstrap=bootstrap)
    stored = [0]
    done = threading.Event()

    def on_stored(result: BatchResult) -> None:
        stored[0] += result.stored
        if on_batch is not None:
            on_batch(result.stored)
        if stored[0] >= n and not done.is_set():
            on_done()
            done.set()

    with opened_store(settings, role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        if prepare is not None:
            prepare()
        stop = threading.Event()
        options = RunOptions(group="bench", max_events=max_events, progress_every_s=999)
        thread = threading.Thread(
            target=load_live,
            args=(settings, sink, bootstrap, options, stop),
            kwargs={
                "quiet": True,
                "on_assign": lambda _p, when: on_assign(when),
                "on_stored": on_stored,
                "reader_decodes": reader_decodes,
            },
        )
        thread.start()
        done.wait()
        stop.set()
        thread.join()
        sink.close()


def loader_rate(bootstrap: str, n: int, data_dir: Path, max_events: int, *, reader_decodes: bool = True) -> float:
    """Events stored per second, from the group assignment to the last event stored."""
    return loader_timing(bootstrap, n, data_dir, max_events, reader_decodes=reader_decodes)[0]


def loader_timing(
    bootstrap: str, n: int, data_dir: Path, max_events: int, *, reader_decodes: bool = True
) -> tuple[float, float]:
    """:func:`loader_rate`, and the seconds it was timed over."""
    assigned: list[float] = []
    finished: list[float] = []
    live_load(
        bootstrap,
        n,
        data_dir,
        max_events,
        on_assign=assigned.append,
        on_done=lambda: finished.append(time.monotonic()),
        reader_decodes=reader_decodes,
    )
    elapsed = finished[0] - assigned[0]
    return n / elapsed, elapsed


def loader_phases(bootstrap: str, n: int, data_dir: Path, max_events: int) -> dict[str, float]:
    """The live loader's rate from the group assignment (``events_per_s``), the seconds to its first stored batch
    (``first_batch_s``: start-up, e.g. the loader's indexes of a large store), and its rate after that batch
    (``steady_per_s``: what a loader that keeps running sustains)."""
    assigned: list[float] = []
    batches: list[tuple[float, int]] = []
    live_load(
        bootstrap,
        n,
        data_dir,
        max_events,
        on_assign=assigned.append,
        on_done=lambda: None,
        on_batch=lambda stored: batches.append((time.monotonic(), stored)),
    )
    (first_at, first), (last_at, _last) = batches[0], batches[-1]
    after = sum(stored for _at, stored in batches[1:])
    return {
        "events_per_s": n / (last_at - assigned[0]),
        "first_batch_s": first_at - assigned[0],
        "first_batch_events": first,
        "steady_per_s": after / (last_at - first_at) if len(batches) > 1 else 0.0,
    }


#: A rate timed over less than this is mostly one fetch, one batch or the clock: not a measurement.
MIN_MEASURED_S = 1.0


def too_short(what: str, seconds: float) -> str | None:
    """Why a rate timed over ``seconds`` cannot be reported (None when it can)."""
    if seconds >= MIN_MEASURED_S:
        return None
    return f"{what} took {seconds:.3f} s, under the {MIN_MEASURED_S:.0f} s a rate needs; run with more --events"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS)
    parser.add_argument(
        "--owner-parses", action="store_true", help="the store parses the Avro itself (the reader does not decode)"
    )
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(log_path=Path(tmp) / "broker.log")
        try:
            produce(broker.bootstrap, args.events)
            raw, raw_s = raw_rate(broker.bootstrap, args.events)
            print(f"raw kafka-python consume: {raw:,.0f} records/s ({raw_s:.2f} s)")
            fast = raw_rate_librdkafka(broker.bootstrap, args.events)  # timed from its first record
            context = too_short("the librdkafka read", args.events / fast) or f"{fast:,.0f} records/s"
            print(f"raw librdkafka consume (the loader's Kafka client, for context): {context}")
            loaded, loaded_s = loader_timing(
                broker.bootstrap, args.events, Path(tmp) / "data", args.max_events, reader_decodes=not args.owner_parses
            )
            print(f"loader (consume + store): {loaded:,.0f} events/s ({loaded_s:.2f} s)")
            unmeasured = [why for why in (too_short("the raw read", raw_s), too_short("the load", loaded_s)) if why]
            if unmeasured:
                print(f"loader / raw kafka-python: not measured ({'; '.join(unmeasured)})")
                raise SystemExit(1)
            print(f"loader / raw kafka-python: {loaded / raw:.2f} (target >= 0.85)")
        finally:
            stop_broker(broker)


if __name__ == "__main__":
    main()
