"""Read the dossier-events topic with confluent-kafka (librdkafka) and decode every event: an example for other teams.

    pip install confluent-kafka fastavro      # the wheels' librdkafka has lz4 built in
    python consume_confluent.py localhost:19092 dossier-events --schemas path/to/schemas/avro

Each message value is Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO fingerprint (8 bytes,
little-endian), then the Avro body. The fingerprint is looked up among the released schemas (*.avsc), computed
from fastavro's parsing canonical form, and the body is decoded with that writer schema into the newest one.
Prints one line per event (partition, offset, dossier, seq, type) and the count on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaException
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"


def load_schemas(directory: Path) -> tuple[dict[bytes, object], object]:
    """Writer schemas by the 8 header bytes, and the newest schema (the reader)."""
    by_fingerprint, newest = {}, None
    for path in sorted(directory.glob("dossier_event.v*.avsc"), key=lambda p: int(p.stem.rsplit(".v", 1)[1])):
        source = json.loads(path.read_text(encoding="utf-8"))
        # fastavro's hex is the header's 8 bytes in order; avro-python's Schema.fingerprint() differs (README).
        header = bytes.fromhex(fingerprint(to_parsing_canonical_form(source), "CRC-64-AVRO"))
        by_fingerprint[header] = newest = fastavro.parse_schema(source)
    if newest is None:
        raise SystemExit(f"no dossier_event.v*.avsc in {directory}")
    return by_fingerprint, newest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--schemas", type=Path, default=Path(__file__).resolve().parent.parent / "schemas" / "avro")
    parser.add_argument("--group", default=f"example-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--idle", type=float, default=5.0, help="stop after this many seconds without a message")
    args = parser.parse_args()
    writers, reader = load_schemas(args.schemas)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",  # a new group reads from the beginning
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,  # on the embedded broker a join takes ~3 s with these, ~23 s with the defaults
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([args.topic])
    count, last = 0, time.monotonic()
    try:
        while time.monotonic() - last < args.idle:
            message = consumer.poll(0.5)
            if not consumer.assignment():  # still joining the group: the idle time starts once assigned
                last = time.monotonic()
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            value = message.value()
            if value[:2] != MAGIC:
                raise SystemExit(f"offset {message.offset()}: not Avro single-object encoding")
            writer = writers.get(value[2:10])
            if writer is None:
                raise SystemExit(f"offset {message.offset()}: unknown schema fingerprint {value[2:10].hex()}")
            event = fastavro.schemaless_reader(io.BytesIO(value[10:]), writer, reader)
            headers = dict(message.headers() or [])
            assert headers["schema-fingerprint"] == value[2:10].hex().encode()
            print(message.partition(), message.offset(), event["dossier_id"], event["seq"], event["event_type"])
            count += 1
            last = time.monotonic()
        if count:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    print(f"{count} events decoded", file=sys.stderr)


if __name__ == "__main__":
    main()
