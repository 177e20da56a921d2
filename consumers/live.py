"""``dossier consume run``: the consumer group loop.

Batches close at ``max_events`` or ``max_wait_s`` after their first message
(default 0.5 s, so an event is queryable well within 2 s of its publication
at low traffic). A batch is stored (:func:`consumers.batch.store_messages`)
and only then are its offsets committed; a crash between the two replays the
batch, which the sink turns into a no-op. On revocation of partitions the
pending batch is stored and committed first, so the next owner starts where
this one stopped.

Broker resets (Tansu forgets topics, records and group offsets on restart,
platform.md A-9) are noticed three ways: the embedded broker process this
loader started exited (it is restarted on the same port), the topic vanished
from the metadata, or a partition's high watermark fell below our position.
Then the topic is recreated with its partition count and every assigned
partition is read again from the beginning; the sink stores only what is
missing, so nothing is lost or doubled.

Progress on stderr every few seconds: events/s and lag per partition, the
lag taken from the fetch high watermark (``consumer.highwater``), not
``end_offsets`` which is wrong on Tansu (platform.md A-7).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from consumers.batch import Message, store_messages
from consumers.sink import BatchResult, Sink
from dossier_runtime.broker import BrokerHandle, start_broker
from dossier_runtime.errors import BrokerError
from dossier_runtime.kafka import ensure_topic, make_consumer
from dossier_runtime.settings import Settings

DEFAULT_GROUP = "dossier-loader"


@dataclasses.dataclass
class RunOptions:
    group: str = DEFAULT_GROUP
    max_events: int = 20_000
    max_wait_s: float = 0.5
    progress_every_s: float = 5.0
    stop_after_idle_s: float | None = None  # for tests and one-shot catch-up: stop when idle this long


@dataclasses.dataclass
class RunSummary:
    batches: int = 0
    totals: BatchResult = dataclasses.field(default_factory=BatchResult)
    broker_resets: int = 0


class LiveLoader:
    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        bootstrap: str,
        options: RunOptions,
        *,
        broker: BrokerHandle | None = None,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.bootstrap = bootstrap
        self.options = options
        self.broker = broker
        self.log = log
        self.topic = settings.topic
        self.summary = RunSummary()
        self.pending: list[Message] = []
        self.pending_since = 0.0
        self.consumer: Any = None
        self._counted = 0
        self._last_progress = time.monotonic()
        self._seen_topic = True
        self._committed: dict[int, int] = {}

    # -- batches ---------------------------------------------------------------------------

    def flush(self) -> None:
        if not self.pending:
            return
        from kafka import OffsetAndMetadata, TopicPartition

        batch, self.pending = self.pending, []
        result = store_messages(self.sink, self.topic, batch)
        self.summary.batches += 1
        self.summary.totals.merge(result)
        for dead in result.dead:
            self.log(f"dead letter {dead.where()}: {dead.kind}: {dead.error}")
        last: dict[int, int] = {}
        for msg in batch:
            last[msg.partition] = max(last.get(msg.partition, -1), msg.offset)
        offsets = {TopicPartition(self.topic, p): OffsetAndMetadata(o + 1, "", -1) for p, o in last.items()}
        try:
            self.consumer.commit(offsets)
            self._committed.update({p: o + 1 for p, o in last.items()})
        except Exception as exc:  # kafka errors: the batch is stored; a replay is harmless
            self.log(
                f"offset commit failed ({type(exc).__name__}: {exc}); stored batches will be replayed, not doubled"
            )
        self._counted += len(batch)

    # -- rebalance -------------------------------------------------------------------------

    def on_revoked(self, revoked: Any) -> None:
        self.flush()

    def on_assigned(self, assigned: Any) -> None:
        parts = sorted(tp.partition for tp in assigned)
        self.log(f"assigned partitions {parts} of {self.topic}")

    # -- resets ----------------------------------------------------------------------------

    def check_broker(self) -> None:
        reset = False
        if self.broker is not None and self.broker.owned and self.broker.process is not None:
            if self.broker.process.poll() is not None:
                port = int(self.bootstrap.rsplit(":", 1)[1])
                self.log("the embedded broker exited; starting a new one on the same port (it starts empty)")
                self.broker = start_broker(port=port, log_path=self.settings.data_dir / "broker.log")
                reset = True
        try:
            known = self.consumer.partitions_for_topic(self.topic)
        except Exception:  # metadata while the broker is down
            known = None
        if known and len(known) != self.settings.partitions:
            reset = self._recreate_if_empty(known) or reset
            known = None if reset else known
        if not known:
            try:
                ensure_topic(self.bootstrap, self.topic, self.settings.partitions, self.settings.kafka_security)
                if self._seen_topic:
                    self.log(f"topic {self.topic} was missing (broker reset?); recreated it")
                reset = True
            except BrokerError as exc:
                self.log(f"broker unavailable: {exc}")
                return
        for tp in self.consumer.assignment():
            if self._committed.get(tp.partition):
                try:
                    committed = self.consumer.committed(tp)
                except Exception:
                    committed = -1
                if committed is None:  # the group's offsets are gone: the broker forgot everything
                    reset = True
                    self._committed.pop(tp.partition, None)
            high = self.consumer.highwater(tp)
            try:
                position = self.consumer.position(tp, timeout_ms=1000)
            except Exception:
                continue
            if high is not None and position is not None and position > high:
                reset = True
        if reset:
            self.summary.broker_resets += 1
            self.pending = []
            assignment = list(self.consumer.assignment())
            if assignment:
                self.consumer.seek_to_beginning(*assignment)
            self.log("reading every assigned partition again from the start; stored events are not stored twice")

    def _recreate_if_empty(self, known: set[int]) -> bool:
        """A reset Tansu auto-creates a polled topic with its default partition count; put the right one back.

        Only an empty topic is dropped and recreated; a topic with records and
        another partition count is reported and left alone.
        """
        from kafka import TopicPartition

        from dossier_runtime.kafka import make_admin

        tps = [TopicPartition(self.topic, p) for p in sorted(known)]
        try:
            ends = self.consumer.end_offsets(tps)
        except Exception:
            return False
        if any(ends.get(tp) for tp in tps):
            self.log(
                f"topic {self.topic} has {len(known)} partitions, configured {self.settings.partitions}, "
                "and holds records: set DOSSIER_PARTITIONS to match"
            )
            return False
        admin = make_admin(self.bootstrap, self.settings.kafka_security)
        try:
            admin.delete_topics([self.topic])
        except Exception as exc:  # already gone, or the broker refused
            self.log(f"could not drop the auto-created topic {self.topic}: {exc}")
        finally:
            admin.close()
        self.log(
            f"topic {self.topic} came back with {len(known)} partitions after a broker reset; recreating it "
            f"with {self.settings.partitions}"
        )
        time.sleep(0.5)
        return True

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._last_progress
        if not force and elapsed < self.options.progress_every_s:
            return
        rate = self._counted / elapsed if elapsed > 0 else 0.0
        lags = []
        for tp in sorted(self.consumer.assignment(), key=lambda t: t.partition):
            high = self.consumer.highwater(tp)
            try:
                pos = self.consumer.position(tp, timeout_ms=200)
            except Exception:
                pos = None
            lag = "?" if high is None or pos is None else str(max(high - pos, 0))
            lags.append(f"p{tp.partition}={lag}")
        t = self.summary.totals
        self.log(
            f"{rate:,.0f} events/s; stored {t.stored:,}, duplicates {t.duplicates:,}, dead letters "
            f"{len(t.dead):,}; lag {' '.join(lags) or '-'}"
        )
        self._counted = 0
        self._last_progress = now

    # -- loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> RunSummary:
        from kafka import ConsumerRebalanceListener

        ensure_topic(self.bootstrap, self.topic, self.settings.partitions, self.settings.kafka_security)
        loader = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                loader.on_revoked(revoked)

            def on_partitions_assigned(self, assigned: Any) -> None:
                loader.on_assigned(assigned)

        self.consumer = make_consumer(
            self.bootstrap,
            self.settings.kafka_security,
            group_id=self.options.group,
            max_poll_records=self.options.max_events,
        )
        self.consumer.subscribe([self.topic], listener=_Listener())
        last_check = idle_since = time.monotonic()
        try:
            while not stop.is_set():
                records = self.consumer.poll(timeout_ms=100, max_records=self.options.max_events)
                now = time.monotonic()
                for tp, msgs in records.items():
                    if not self.pending:
                        self.pending_since = now
                    self.pending.extend(Message(tp.partition, m.offset, m.value) for m in msgs)
                if records or not self.consumer.assignment():
                    idle_since = now
                full = len(self.pending) >= self.options.max_events
                if self.pending and (full or now - self.pending_since >= self.options.max_wait_s):
                    self.flush()
                if now - last_check >= 2.0:
                    self.check_broker()
                    last_check = now
                self.progress()
                idle = self.options.stop_after_idle_s
                if idle is not None and not self.pending and now - idle_since >= idle:
                    break
            self.flush()
        finally:
            self.progress(force=True)
            try:
                self.consumer.close(autocommit=False)
            except Exception as exc:  # closing after a broker loss
                self.log(f"consumer close: {exc}")
        return self.summary
