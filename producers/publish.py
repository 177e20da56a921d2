"""Verified delivery of encoded dossier events to Kafka.

Everything that enters the topic goes through :func:`publish_outbound`: the
file publisher (``dossier produce publish``), the importer, the live
publisher and the simulator. It sends already-encoded events, so it never
re-validates them (the simulator publishes deliberately broken histories);
validation belongs to whoever builds the events.

The guarantees, and why:

* the topic is created explicitly with the configured partition count before
  the first send, because Tansu auto-creates unknown topics with 4 partitions
  and cannot add partitions later (platform.md A-8);
* key = ``dossier_id``, so one dossier's events share a partition and keep
  their order; headers ``event_type`` and ``schema-fingerprint`` (the 16 hex
  digits of the payload's writer schema) let a consumer route without decoding;
* ``acks=all``, idempotence and lz4 come from
  :func:`dossier_runtime.kafka.make_producer`;
* every send's future is resolved and recorded: ``flush()`` returning proves
  nothing (platform.md A-11). The :class:`DeliveryReport` says, event by
  event, what the broker acknowledged (topic, partition, offset) and what it
  did not;
* after the first failure nothing more is sent (a dead broker would only make
  every later send wait out its timeout); the rest is reported as not sent.

An event reported undelivered may still have reached the broker (an ack lost
on the way back). Re-sending it is safe because its bytes, and so its
``event_id`` and ``(dossier_id, seq)``, are preserved exactly: the consumer
stores an event once per identity.

Parameters of :func:`publish_outbound`::

    publish_outbound(bootstrap, topic, partitions, events, *,
                     security=None, progress=None, producer_config=None) -> DeliveryReport

``progress`` is called with the number of events newly acknowledged (an
increment, as ``click.progressbar.update`` takes it). :func:`publish_with_settings`
does the same from a :class:`~dossier_runtime.settings.Settings`, starting or
reusing the embedded broker when no bootstrap address is configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from dossier_runtime.broker import embedded_broker, find_broker
from dossier_runtime.errors import BrokerError
from dossier_runtime.kafka import DELIVERY_TIMEOUT_MS, ensure_topic, make_producer
from dossier_runtime.settings import KafkaSecurity, Settings
from schemas.codec import HEADER_SIZE, decode, encode
from schemas.events import DossierEvent
from schemas.jsonform import to_json_line

#: Unresolved futures kept before waiting on the oldest (bounded memory, natural back-pressure).
WINDOW: Final = 10_000
_MAX_BLOCK_MS: Final = 10_000


@dataclasses.dataclass(frozen=True)
class OutboundEvent:
    """One encoded event, ready to send. ``payload`` is the single-object Avro encoding."""

    dossier_id: str
    event_id: str
    seq: int
    event_type: str
    payload: bytes
    source: str | None = None  # where it came from, e.g. "events.jsonl:12", for reports

    @property
    def fingerprint_hex(self) -> str:
        """The writer-schema fingerprint the payload's header carries."""
        return self.payload[2:HEADER_SIZE].hex()

    def headers(self) -> list[tuple[str, bytes]]:
        return [("event_type", self.event_type.encode()), ("schema-fingerprint", self.fingerprint_hex.encode())]


@dataclasses.dataclass(frozen=True)
class Delivered:
    """An event the broker acknowledged, and where it is."""

    event_id: str
    dossier_id: str
    seq: int
    topic: str
    partition: int
    offset: int
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class Undelivered:
    """An event without an acknowledgement. ``sent`` False: never handed to the producer."""

    event: OutboundEvent
    error: str
    sent: bool

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def dossier_id(self) -> str:
        return self.event.dossier_id

    @property
    def seq(self) -> int:
        return self.event.seq


@dataclasses.dataclass(frozen=True)
class DeliveryReport:
    """What happened to every event handed to :func:`publish_outbound`, in input order."""

    topic: str
    delivered: tuple[Delivered, ...]
    failed: tuple[Undelivered, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def first_error(self) -> str | None:
        return self.failed[0].error if self.failed else None


def outbound_event(event: DossierEvent, source: str | None = None) -> OutboundEvent:
    """Encode ``event`` (no validation: the caller decided it goes out as it is)."""
    return OutboundEvent(
        dossier_id=event.dossier_id,
        event_id=event.event_id,
        seq=event.seq,
        event_type=event.event_type.value,
        payload=encode(event, validate=False),
        source=source,
    )


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Sender:
    """One run of sends: futures resolved oldest first, the first failure stops new sends."""

    def __init__(self, producer: Any, topic: str, progress: Callable[[int], None] | None, timeout_s: float) -> None:
        self.producer = producer
        self.topic = topic
        self.progress = progress
        self.timeout_s = timeout_s
        self.pending: deque[tuple[int, OutboundEvent, Any]] = deque()
        self.delivered: list[Delivered] = []
        self.failed: list[tuple[int, Undelivered]] = []
        self.count = 0
        self.broken = threading.Event()
        self.reason: str | None = None

    def _on_error(self, exc: BaseException) -> None:
        self.broken.set()

    def send(self, event: OutboundEvent) -> None:
        from kafka.errors import KafkaError

        index = self.count
        self.count += 1
        if self.broken.is_set():
            reason = self.reason or "an earlier send failed"
            self.failed.append((index, Undelivered(event, f"not sent: {reason}", False)))
            return
        try:
            future = self.producer.send(
                self.topic, key=event.dossier_id.encode(), value=event.payload, headers=event.headers()
            )
        except KafkaError as exc:
            self.reason = _error_text(exc)
            self.broken.set()
            self.failed.append((index, Undelivered(event, f"not sent: {self.reason}", False)))
            return
        future.add_errback(self._on_error)
        self.pending.append((index, event, future))
        while len(self.pending) > WINDOW:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        from kafka.errors import KafkaError

        index, event, future = self.pending.popleft()
        try:
            meta = future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            error = _error_text(exc)
            self.reason = self.reason or f"an earlier send failed ({error})"
            self.broken.set()
            self.failed.append((index, Undelivered(event, error, True)))
            return
        where = (meta.topic, meta.partition, meta.offset)
        self.delivered.append(Delivered(event.event_id, event.dossier_id, event.seq, *where, event.source))
        if self.progress is not None:
            self.progress(1)

    def finish(self) -> None:
        with contextlib.suppress(Exception):  # failures surface through the futures below
            self.producer.flush(timeout=self.timeout_s)
        while self.pending:
            self._settle_oldest()


def publish_outbound(
    bootstrap: str,
    topic: str,
    partitions: int,
    events: Iterable[OutboundEvent],
    *,
    security: KafkaSecurity | None = None,
    progress: Callable[[int], None] | None = None,
    producer_config: Mapping[str, Any] | None = None,
) -> DeliveryReport:
    """Send ``events`` in order, keyed by dossier, and report each one's fate.

    Raises :class:`BrokerError` only when nothing could be sent at all (broker
    unreachable, topic cannot be created or has another partition count);
    once sending started, every problem is in the report instead.
    """
    ensure_topic(bootstrap, topic, partitions, security)
    config = {"max_block_ms": _MAX_BLOCK_MS, **(producer_config or {})}
    producer = make_producer(bootstrap, security, **config)
    timeout_s = int(config.get("delivery_timeout_ms", DELIVERY_TIMEOUT_MS)) / 1000 + 5
    sender = _Sender(producer, topic, progress, timeout_s)
    try:
        for event in events:
            sender.send(event)
        sender.finish()
    finally:
        with contextlib.suppress(Exception):  # closing a producer of a dead broker may complain
            producer.close(timeout=2 if sender.broken.is_set() else timeout_s)
    failed = tuple(item for _, item in sorted(sender.failed, key=lambda pair: pair[0]))
    return DeliveryReport(topic, tuple(sender.delivered), failed)


class NoEmbeddedStackError(BrokerError):
    """Publishing to the embedded broker while nothing keeps it running would lose what is sent."""


def require_embedded_stack(settings: Settings) -> None:
    """Refuse to publish to the embedded broker unless a running stack holds it (published must mean stored).

    The embedded broker keeps messages in memory only (platform.md A-0): started just for one publish, it would
    stop with the command and take every message with it, with "delivered" already printed. A broker left
    running for the data directory belongs to a loader (`dossier consume run`, `dossier demo --keep-running`),
    which stores what arrives.
    """
    if settings.kafka_bootstrap or find_broker(settings.data_dir) is not None:
        return
    raise NoEmbeddedStackError(
        f"no embedded stack runs for {settings.data_dir}: the embedded broker keeps messages in memory only, so "
        "what is published now would be lost when it stops. Start one in another terminal with `dossier consume "
        "run` (it keeps the broker up and stores what arrives) and publish again; or load the file straight into "
        "the store with `dossier consume load FILE`; or set DOSSIER_KAFKA_BOOTSTRAP to a Kafka cluster"
    )


@contextlib.contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[str]:
    """The configured bootstrap address, or the running embedded stack's broker (:func:`require_embedded_stack`)."""
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    require_embedded_stack(settings)
    with embedded_broker(settings.data_dir) as handle:
        yield handle.bootstrap


def publish_with_settings(
    settings: Settings,
    events: Iterable[OutboundEvent],
    *,
    progress: Callable[[int], None] | None = None,
    producer_config: Mapping[str, Any] | None = None,
    stored_progress: Callable[[int, int], None] | None = None,
    keep_payloads: bool = True,
) -> DeliveryReport:
    """:func:`publish_outbound` to the topic, partitions and broker of ``settings``.

    On the embedded stack an acknowledgement is confirmed against the store before it counts as delivered
    (:mod:`producers.confirmation`): the embedded broker keeps messages in memory only. ``keep_payloads``
    False: an event acknowledged but not stored is reported without its bytes (nothing writes it back).
    """
    sent: dict[str, OutboundEvent] | None = None if settings.kafka_bootstrap else {}
    if sent is not None:
        events = _kept(events, sent, keep_payloads)
    with kafka_bootstrap(settings) as bootstrap:
        report = publish_outbound(
            bootstrap,
            settings.topic,
            settings.partitions,
            events,
            security=settings.kafka_security,
            progress=progress,
            producer_config=producer_config,
        )
    if sent is None:
        return report
    from producers.confirmation import confirm_stored  # it imports this module

    return confirm_stored(settings, report, sent, progress=stored_progress)


def _kept(events: Iterable[OutboundEvent], into: dict[str, OutboundEvent], payloads: bool) -> Iterator[OutboundEvent]:
    for event in events:
        into[event.event_id] = event if payloads else dataclasses.replace(event, payload=b"")
        yield event


def write_undelivered(report: DeliveryReport, path: Path) -> int:
    """Write the unacknowledged events as contract JSON Lines (what ``publish`` reads); return the count.

    The JSON form round-trips to the same Avro bytes, so a re-sent event keeps its identity.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for item in report.failed:
            out.write(to_json_line(decode(item.event.payload, validate=False)) + "\n")
    tmp.replace(path)
    return len(report.failed)


__all__ = [
    "BrokerError",
    "Delivered",
    "DeliveryReport",
    "OutboundEvent",
    "Undelivered",
    "kafka_bootstrap",
    "outbound_event",
    "publish_outbound",
    "publish_with_settings",
    "write_undelivered",
]
