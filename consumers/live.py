"""``dossier consume run``: the consumer group loop.

Two threads. The main thread polls Kafka and gathers a batch, writing each
poll's records into the batch's Avro containers as they arrive
(:class:`consumers.batch.Gathered`); a store thread hands the previous batch
to ``store`` meanwhile and waits for it. In
``dossier consume run`` this loop runs in a process of its own and ``store``
sends the batch to the process that owns the store
(:mod:`consumers.readerproc`), so polling and storing overlap on two cores;
chDB holds the GIL for the whole of a query, so in one process they would
not. (Tests that run several loaders on one store use :func:`local_store`.)
A batch is handed over when the store thread is free
and the batch is worth a round of queries (a tenth of ``max_events``) or
``max_wait_s`` old (default 0.5 s, so an event is queryable well within 2 s
of its publication at low traffic); while the store thread is busy the batch
grows up to ``max_events``, then polling waits. A poll returns a tenth of
``max_events`` at most (kafka-python parses what a poll returns), so a backlog's
first batch reaches the store early. The default of 100,000 events keeps
background merges in check: each batch is a part in ``events`` and in each
derived table, and 50,000-event parts cost about half as much again in merges
(BENCHMARKS.md). Offsets of a
batch are committed only after it is stored; a crash between the two replays
the batch, which the sink turns into a no-op.

Rebalances: the rebalance listener is asynchronous (kafka-python runs it on
its IO loop; a blocking listener would stop heartbeats). On revocation it
hands the pending batch to the store thread, waits, yielding to the loop,
until every batch is stored, and commits, before the group moves the
partitions: the next owner starts where this one stopped, and two owners
never store the same partition at once.

Broker resets (Tansu forgets topics, records and group offsets on restart,
platform.md A-9) are noticed five ways: the embedded broker process this
loader started exited (it is restarted on the same port), the topic vanished
from the metadata, the topic's id changed (someone else recreated it and may
already have refilled it past our position), the group's committed offsets
vanished, or a partition's high watermark fell below our position.
Then the topic is recreated with its partition count and every assigned
partition is read again from the beginning; batches from before the reset
are stored but their offsets never committed, and the sink stores only what
is missing, so nothing is lost or doubled.

Progress on stderr every few seconds: events/s and lag per partition, the
lag taken from the fetch high watermark (``consumer.highwater``), not
``end_offsets`` which is wrong on Tansu (platform.md A-7).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from consumers.batch import Gathered, store_gathered
from consumers.sink import BatchResult, Sink
from consumers.topicrepair import repair_partition_count
from dossier_runtime.broker import BrokerHandle, start_broker
from dossier_runtime.errors import BrokerError
from dossier_runtime.kafka import ensure_topic, make_consumer
from dossier_runtime.settings import Settings

DEFAULT_GROUP = "dossier-loader"
DEFAULT_MAX_EVENTS = 100_000
REJOIN_POLL_MS = 3_000


@dataclasses.dataclass
class RunOptions:
    group: str = DEFAULT_GROUP
    max_events: int = DEFAULT_MAX_EVENTS
    max_wait_s: float = 0.5
    progress_every_s: float = 5.0
    stop_after_idle_s: float | None = None  # for tests and one-shot catch-up: stop when idle this long


@dataclasses.dataclass
class RunSummary:
    batches: int = 0
    totals: BatchResult = dataclasses.field(default_factory=BatchResult)
    broker_resets: int = 0


@dataclasses.dataclass
class _Batch:
    gathered: Gathered
    epoch: int
    result: BatchResult | None = None

    @property
    def count(self) -> int:
        return self.gathered.count


def _loop_sleep(seconds: float) -> Any:
    """An awaitable pause on kafka-python's IO loop (heartbeats go on meanwhile)."""
    from kafka.net.selector import KernelEvent

    return KernelEvent("_sleep", seconds)


#: Stores one batch and says what happened; offsets are committed only after it returns.
StoreBatch = Callable[[Gathered], BatchResult]


def local_store(sink: Sink, topic: str) -> StoreBatch:
    """Store batches in this process (tests, and several loaders sharing one store)."""
    return lambda batch: store_gathered(sink, topic, batch)


def restart_if_exited(
    broker: BrokerHandle | None, settings: Settings, log: Callable[[str], None]
) -> BrokerHandle | None:
    """A new embedded broker on the same port if the one this process started has exited, else None."""
    if broker is None or not broker.owned or broker.process is None or broker.process.poll() is None:
        return None
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    log("the embedded broker exited; starting a new one on the same port (it starts empty)")
    return start_broker(port=port, log_path=settings.data_dir / "broker.log")


class LiveLoader:
    """The consumer group loop; ``store`` stores a batch (in this process, or in the store's owner)."""

    def __init__(
        self,
        settings: Settings,
        store: StoreBatch,
        bootstrap: str,
        options: RunOptions,
        *,
        broker: BrokerHandle | None = None,
        log: Callable[[str], None] = lambda _m: None,
        on_assign: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bootstrap = bootstrap
        self.options = options
        self.broker = broker
        self.log = log
        self.on_assign = on_assign
        self.topic = settings.topic
        self.summary = RunSummary()
        self.consumer: Any = None
        # The batch being gathered: touched by the main thread, and by the rebalance
        # listener only while the main thread waits inside poll() or close().
        self._gathered = Gathered(self.topic)
        self._since = 0.0
        # Hand-over to the store thread.
        self._work: queue.Queue[_Batch | None] = queue.Queue()
        self._cond = threading.Condition()
        self._inflight = 0
        self._done: list[_Batch] = []
        self._failure: BaseException | None = None
        self._epoch = 0  # bumped by a broker reset: offsets of older batches are never committed
        self._counted = 0
        self._last_progress = time.monotonic()
        self._seen_topic = True
        self._committed: dict[int, int] = {}
        self._known_topic_id: Any = None
        self._topic_id_settles = 0.0

    # -- batches ---------------------------------------------------------------------------

    @property
    def _count(self) -> int:
        return self._gathered.count

    def _add(self, records: dict[Any, list[Any]]) -> None:
        for tp, msgs in records.items():
            if not self._count:
                self._since = time.monotonic()
            self._gathered.add(tp.partition, msgs)

    def _submit(self) -> None:
        if not self._count:
            return
        batch = _Batch(self._gathered, self._epoch)
        self._gathered = Gathered(self.topic)
        with self._cond:
            self._inflight += 1
        self._work.put(batch)

    def _store_loop(self) -> None:
        while (batch := self._work.get()) is not None:
            try:
                batch.result = self.store(batch.gathered)
            except BaseException as exc:  # handed to the main thread, which raises it
                with self._cond:
                    self._failure = exc
                    self._inflight -= 1
                    self._cond.notify_all()
                return
            finally:
                batch.gathered.close()
            with self._cond:
                self._done.append(batch)
                self._inflight -= 1
                self._cond.notify_all()

    def _idle(self) -> bool:
        with self._cond:
            return self._inflight == 0 or self._failure is not None

    def _wait_idle(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == 0 or self._failure is not None)
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _collect(self) -> dict[int, int]:
        """Account the stored batches; the next offsets to commit per partition."""
        with self._cond:
            done, self._done = self._done, []
        offsets: dict[int, int] = {}
        for batch in done:
            assert batch.result is not None
            self.summary.batches += 1
            self.summary.totals.merge(batch.result)
            self._counted += batch.count
            for dead in batch.result.dead:
                self.log(f"dead letter {dead.where()}: {dead.kind}: {dead.error}")
            if batch.epoch == self._epoch:
                for partition, offset in batch.gathered.next_offsets().items():
                    offsets[partition] = max(offsets.get(partition, 0), offset)
        return offsets

    def _offsets(self, offsets: dict[int, int]) -> dict[Any, Any]:
        from kafka import OffsetAndMetadata, TopicPartition

        return {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}

    def _commit_async(self, offsets: dict[int, int]) -> None:
        def done(_offsets: Any, response: Any) -> None:
            if isinstance(response, Exception):
                self.log(
                    f"offset commit failed ({type(response).__name__}: {response}); stored batches will be "
                    "replayed, not doubled"
                )
            else:
                self._committed.update(offsets)

        self.consumer.commit_async(self._offsets(offsets), callback=done)

    def _commit_now(self, offsets: dict[int, int]) -> None:
        try:
            self.consumer.commit(self._offsets(offsets))
            self._committed.update(offsets)
        except Exception as exc:  # kafka errors: the batch is stored; a replay is harmless
            self.log(
                f"offset commit failed ({type(exc).__name__}: {exc}); stored batches will be replayed, not doubled"
            )

    def flush(self) -> None:
        """Store everything gathered so far and commit it (the main thread; shutdown)."""
        self._submit()
        self._wait_idle()
        offsets = self._collect()
        if offsets:
            self._commit_now(offsets)

    # -- rebalance -------------------------------------------------------------------------

    async def revoke(self, revoked: Any, *, commit: bool = True) -> None:
        """On the IO loop: store what is pending, then commit, before the partitions move."""
        from kafka.errors import KafkaError

        self._submit()
        while not self._idle():
            await _loop_sleep(0.02)
        offsets = self._collect()
        if not (offsets and commit):
            return
        try:
            await self.consumer.commit_async(self._offsets(offsets))
            self._committed.update(offsets)
        except KafkaError as exc:
            self.log(f"offset commit on rebalance failed ({exc}); the next owner replays it, nothing is doubled")

    def on_assigned(self, assigned: Any) -> None:
        parts = sorted(tp.partition for tp in assigned)
        self.log(f"assigned partitions {parts} of {self.topic}")
        if self.on_assign is not None:
            self.on_assign(parts)

    # -- resets ----------------------------------------------------------------------------

    def check_broker(self) -> None:
        reset = False
        restarted = restart_if_exited(self.broker, self.settings, self.log)
        if restarted is not None:
            self.broker, reset = restarted, True
        try:
            known = self.consumer.partitions_for_topic(self.topic)
        except Exception:  # metadata while the broker is down
            known = None
        if known and len(known) != self.settings.partitions:
            reset = repair_partition_count(self.consumer, self.settings, self.bootstrap, len(known), self.log) or reset
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
        topic_id = self._topic_id()
        if topic_id is not None:
            settled = time.monotonic() >= self._topic_id_settles  # after our own reset the cached id may lag
            if settled and self._known_topic_id is not None and topic_id != self._known_topic_id and not reset:
                self.log(f"topic {self.topic} was recreated (its topic id changed: broker reset?)")
                reset = True
            self._known_topic_id = topic_id
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
            self._epoch += 1
            self._gathered.close()
            self._gathered = Gathered(self.topic)
            self._wait_idle()
            self._collect()
            self._committed.clear()
            self._topic_id_settles = time.monotonic() + 10.0
            assignment = list(self.consumer.assignment())
            if assignment:
                self.consumer.seek_to_beginning(*assignment)
            self.log("reading every assigned partition again from the start; stored events are not stored twice")

    def _topic_id(self) -> Any:
        """The topic's id in the consumer's metadata (a recreated topic has a new one), None if unknown."""
        cluster = getattr(getattr(self.consumer, "_client", None), "cluster", None)  # kafka-python: no public accessor
        try:
            return cluster.topic_id(self.topic) if cluster is not None else None
        except Exception:  # an older client without topic ids: the other three signals remain
            return None

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
        from kafka import AsyncConsumerRebalanceListener

        ensure_topic(self.bootstrap, self.topic, self.settings.partitions, self.settings.kafka_security)
        loader = self

        class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await loader.revoke(revoked)

            async def on_partitions_lost(self, lost: Any) -> None:
                await loader.revoke(lost, commit=False)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                loader.on_assigned(assigned)

        worker = threading.Thread(target=self._store_loop, name="store-batches", daemon=True)
        worker.start()
        try:
            self.consumer = make_consumer(
                self.bootstrap,
                self.settings.kafka_security,
                group_id=self.options.group,
                max_poll_records=self.options.max_events,
                metadata_max_age_ms=5_000,  # a recreated topic (new topic id) is seen within seconds
            )
            self.consumer.subscribe([self.topic], listener=_Listener())
            try:
                self._loop(stop)
                self.flush()
            finally:
                self.progress(force=True)
                try:
                    self.consumer.close(autocommit=False)
                except Exception as exc:  # closing after a broker loss
                    self.log(f"consumer close: {exc}")
        finally:
            self._work.put(None)
            worker.join(timeout=60)
            self._gathered.close()  # what was gathered after a failure: its offsets are not committed
        return self.summary

    def _stable(self) -> bool:
        from kafka.structs import MemberState

        return bool(self.consumer.group_metadata().state == MemberState.STABLE)

    def _loop(self, stop: threading.Event) -> None:
        options = self.options
        last_check = idle_since = time.monotonic()
        tenth = max(options.max_events // 10, 1)
        while not stop.is_set():
            room = options.max_events - self._count
            # While the group (re)forms, stay inside poll(): kafka-python drops a JoinGroup answer
            # that arrives while no poll() awaits it and joins again (another ~3 s on Tansu), so
            # a loop that steps out of poll() at the wrong moments can rejoin forever.
            stable = self._stable()
            if room > 0 or not stable:
                timeout_ms = 100 if stable else REJOIN_POLL_MS
                # A poll parses what it returns (~6 µs a record): a tenth of a batch at most, so the first
                # batch of a backlog reaches a free store after a tenth, not after a whole batch.
                records = self.consumer.poll(timeout_ms=timeout_ms, max_records=max(min(room, tenth), 1))
                self._add(records)
            else:
                self._wait_idle()  # the store thread is behind: stop gathering until it is free
                records = {}
            self._raise_failure()
            offsets = self._collect()
            if offsets:
                self._commit_async(offsets)
            now = time.monotonic()
            # A free store thread takes any batch worth a round of queries; a busy one lets it grow.
            worth = self._count >= tenth or now - self._since >= options.max_wait_s
            if self._count and worth and self._idle():
                self._submit()
            if records or not self.consumer.assignment():
                idle_since = now
            if not self._stable():
                continue
            if now - last_check >= 2.0:
                self.check_broker()
                last_check = now
            self.progress()
            idle = options.stop_after_idle_s
            if idle is not None and not self._count and self._idle() and now - idle_since >= idle:
                break
