"""``dossier consume run``: the consumer group loop.

The group member is a librdkafka consumer (confluent-kafka): it fetches and
parses record batches in C on its own threads, at about a fifth of
kafka-python's CPU per record (BENCHMARKS.md), which leaves the cores to the
store. Two Python threads. The main thread polls and gathers a batch,
writing each poll's messages into the batch's Avro containers as they
arrive (:class:`consumers.batch.Gathered`); a store thread hands the
previous batch to ``store`` meanwhile and waits for it. In
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
``max_events`` at most, so a backlog's first batch reaches the store early.
The default of 100,000 events keeps
background merges in check: each batch is a part in ``events`` and in each
derived table, and 50,000-event parts cost about half as much again in merges
(BENCHMARKS.md). Offsets of a
batch are committed only after it is stored; a crash between the two replays
the batch, which the sink turns into a no-op.

Rebalances: librdkafka calls the rebalance callbacks inside ``consume`` on
the main thread, and keeps heartbeats going on its own threads meanwhile.
On revocation the loader hands the pending batch to the store thread, waits
until every batch is stored, and commits, before the group moves the
partitions: the next owner starts where this one stopped, and two owners
never store the same partition at once. Partitions lost (the group moved on
without us) are stored the same way but never committed, and no offset
gathered under one assignment is committed under the next.

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
lag taken from the high watermark of the last fetch response
(``get_watermark_offsets(cached=True)``), not from ListOffsets, which is
wrong on Tansu (platform.md A-7).
"""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from consumers.batch import Gathered, store_gathered
from consumers.sink import BatchResult, Sink
from consumers.topicrepair import repair_partition_count
from dossier_runtime.broker import BrokerHandle, record_broker, start_broker, stop_broker
from dossier_runtime.errors import BrokerError, BrokerRefusedError
from dossier_runtime.kafka import client_failure, ensure_topic, librdkafka_security, make_group_consumer
from dossier_runtime.settings import Settings

DEFAULT_GROUP = "dossier-loader"
DEFAULT_MAX_EVENTS = 100_000
REJOIN_POLL_MS = 3_000
#: Dead letters printed on stderr by one run, at most (the rest are listed by `dossier consume dead-letters`).
DEAD_EXAMPLES = 5


@dataclasses.dataclass
class RunOptions:
    group: str = DEFAULT_GROUP
    max_events: int = DEFAULT_MAX_EVENTS
    max_wait_s: float = 0.5
    progress_every_s: float = 5.0
    stop_after_idle_s: float | None = None  # for tests and one-shot catch-up: stop when idle this long
    replay_from_start: bool = False  # read every partition again from its earliest offset once assigned


@dataclasses.dataclass
class RunSummary:
    batches: int = 0
    totals: BatchResult = dataclasses.field(default_factory=BatchResult)
    broker_resets: int = 0
    replayed: bool = False  # a replay from the start (RunOptions.replay_from_start) reached the end of the topic


@dataclasses.dataclass
class _Batch:
    gathered: Gathered
    epoch: int
    result: BatchResult | None = None

    @property
    def count(self) -> int:
        return self.gathered.count


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
    restarted = start_broker(port=port, log_path=settings.data_dir / "broker.log")
    record_broker(settings.data_dir, restarted)  # producers of other processes find it, not the dead one
    return restarted


def stop_restarted(original: BrokerHandle | None, current: BrokerHandle | None) -> None:
    """Stop the broker :func:`restart_if_exited` started in place of ``original`` (the caller stops that one)."""
    if current is not None and current is not original:
        stop_broker(current)


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
        seal: Callable[[Gathered], None] | None = None,
    ) -> None:
        """``seal(batch)``, if given, runs on the main thread when a batch is full while the store is busy
        (nothing more is added to it): the reader process decodes it then, not after the store frees up."""
        self.settings = settings
        self.store = store
        self.bootstrap = bootstrap
        self.options = options
        self.broker = broker
        self._initial_broker = broker
        self.log = log
        self.on_assign = on_assign
        self.seal = seal
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
        self._dead_seen = 0
        self._last_progress = time.monotonic()
        self._seen_topic = True
        self._committed: dict[int, int] = {}
        self._known_topic_id: str | None = None
        self._topic_id_settles = 0.0
        self._admin: Any = None  # for the topic id (librdkafka's metadata does not carry it)
        self._rewind: set[int] = set()  # partitions to read again from the start after a reset
        self._replay = options.replay_from_start  # a replay from the start is still to begin
        self._replaying = False  # begun, the end of the topic not reached yet
        self._said: dict[str, float] = {}  # client errors said, by kind: when
        self._refused: BrokerRefusedError | None = None  # the broker refused our login or TLS: the run ends
        self._logger = _quiet_logger(self._client_error)

    # -- batches ---------------------------------------------------------------------------

    @property
    def _count(self) -> int:
        return self._gathered.count

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
                self._dead_seen += 1
                if self._dead_seen <= DEAD_EXAMPLES:  # a few examples; `dossier consume dead-letters` lists them
                    self.log(f"dead letter {dead.where()}: {dead.kind}: {dead.error}")
                elif self._dead_seen == DEAD_EXAMPLES + 1:
                    self.log(f"more dead letters: not printed; `dossier consume dead-letters --source {self.topic}`")
            if batch.epoch == self._epoch:
                for partition, offset in batch.gathered.next_offsets().items():
                    offsets[partition] = max(offsets.get(partition, 0), offset)
        return offsets

    def _offsets(self, offsets: dict[int, int]) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())]

    def _on_commit(self, error: Any, partitions: Any) -> None:
        """librdkafka's answer to a commit (called inside ``consume``)."""
        failed = [tp for tp in partitions or [] if tp.error is not None]
        if error is not None or failed:
            reason = error if error is not None else failed[0].error
            self.log(f"offset commit failed ({reason}); stored batches will be replayed, not doubled")
            return
        self._committed.update({tp.partition: tp.offset for tp in partitions or [] if tp.topic == self.topic})

    def _commit_async(self, offsets: dict[int, int]) -> None:
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(offsets=self._offsets(offsets), asynchronous=True)
        except KafkaException as exc:  # no assignment any more, broker gone: a replay is harmless
            self.log(f"offset commit failed ({exc}); stored batches will be replayed, not doubled")

    def _commit_now(self, offsets: dict[int, int]) -> None:
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(offsets=self._offsets(offsets), asynchronous=False)
            self._committed.update(offsets)
        except KafkaException as exc:  # the batch is stored; a replay is harmless
            self.log(f"offset commit failed ({exc}); stored batches will be replayed, not doubled")

    def flush(self) -> None:
        """Store everything gathered so far and commit it (the main thread; shutdown)."""
        self._submit()
        self._wait_idle()
        offsets = self._collect()
        if offsets:
            self._commit_now(offsets)

    # -- rebalance -------------------------------------------------------------------------

    def revoke(self, _consumer: Any, _partitions: Any, *, commit: bool = True) -> None:
        """Inside ``consume``: store what is pending, then commit, before the partitions move.

        librdkafka keeps the member's heartbeats going on its own threads, so
        waiting here for the store is safe (up to ``max.poll.interval.ms``).
        """
        if self._failure is not None:  # the store thread is gone; nothing gathered can be stored
            return
        self._submit()
        self._wait_idle()
        offsets = self._collect()
        if offsets and commit:
            self._commit_now(offsets)

    def lost(self, consumer: Any, partitions: Any) -> None:
        """The group moved on without us (a session that timed out, a broker reset): never commit."""
        self.revoke(consumer, partitions, commit=False)

    def on_assigned(self, _consumer: Any, assigned: Any) -> None:
        # Everything before was stored (and committed, unless lost) by revoke: offsets gathered under an
        # earlier assignment are never committed under this one.
        self._epoch += 1
        self._rewind.clear()
        parts = sorted(tp.partition for tp in assigned)
        self.log(f"assigned partitions {parts} of {self.topic}")
        if self.on_assign is not None:
            self.on_assign(parts)

    # -- resets ----------------------------------------------------------------------------

    def check_broker(self) -> None:
        from confluent_kafka import KafkaException

        reset = False
        restarted = restart_if_exited(self.broker, self.settings, self.log)
        if restarted is not None:
            self.broker, reset = restarted, True
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=2.0).topics.get(self.topic)
            known = len(metadata.partitions) if metadata is not None and metadata.error is None else 0
        except KafkaException:  # metadata while the broker is down
            known = 0
        if known and known != self.settings.partitions:
            reset = repair_partition_count(self.settings, self.bootstrap, known, self.log) or reset
            known = 0 if reset else known
        if not known:
            try:
                ensure_topic(self.bootstrap, self.topic, self.settings.partitions, self.settings.kafka_security)
                if self._seen_topic:
                    self.log(f"topic {self.topic} was missing (broker reset?); recreated it")
                reset = True
            except BrokerRefusedError:
                raise
            except BrokerError as exc:
                self.log(f"broker unavailable: {exc}")
                return
        topic_id = self._topic_id()
        if topic_id is not None:
            settled = time.monotonic() >= self._topic_id_settles  # after our own reset the id may still be the old one
            if settled and self._known_topic_id is not None and topic_id != self._known_topic_id and not reset:
                self.log(f"topic {self.topic} was recreated (its topic id changed: broker reset?)")
                reset = True
            self._known_topic_id = topic_id
        assignment = self.consumer.assignment()
        reset = self._offsets_vanished(assignment) or self._behind_position(assignment) or reset
        replay = self._replay and bool(assignment)
        if reset:
            self.summary.broker_resets += 1
        if replay:
            self._replay, self._replaying = False, True
            self.log("replaying the topic from its earliest offsets (see above); stored events are not stored twice")
        elif not reset:
            self._note_replay_end(assignment)
        if reset or replay:
            self._epoch += 1
            self._gathered.close()
            self._gathered = Gathered(self.topic)
            self._wait_idle()
            self._collect()
            self._committed.clear()
            self._topic_id_settles = time.monotonic() + 10.0
            self._rewind = {tp.partition for tp in assignment}
            if reset:
                self.log("reading every assigned partition again from the start; stored events are not stored twice")
        self._rewind_now()

    def _note_replay_end(self, assignment: list[Any]) -> None:
        if self._replaying and self._caught_up(assignment):
            self._replaying, self.summary.replayed = False, True
            self.log("the replay from the earliest offsets reached the end of the topic")

    def _caught_up(self, assignment: list[Any]) -> bool:
        """Every assigned partition read to its high watermark, and everything read stored."""
        if self._rewind or self._count or not self._idle():
            return False
        positions = self._positions(assignment)
        if len(positions) != len(assignment):
            return False
        for tp, position in positions.items():
            high = self._high(tp)
            if high is None or (position if position is not None else 0) < high:
                return False
        return True

    def _offsets_vanished(self, assignment: list[Any]) -> bool:
        """The group's committed offsets are gone where we had committed: the broker forgot everything."""
        from confluent_kafka import OFFSET_INVALID, KafkaException, TopicPartition

        ours = [TopicPartition(self.topic, tp.partition) for tp in assignment if self._committed.get(tp.partition)]
        if not ours:
            return False
        try:
            committed = self.consumer.committed(ours, timeout=1.0)
        except KafkaException:
            return False
        gone = [tp.partition for tp in committed if tp.error is None and tp.offset == OFFSET_INVALID]
        for partition in gone:
            self._committed.pop(partition, None)
        return bool(gone)

    def _behind_position(self, assignment: list[Any]) -> bool:
        """A partition's high watermark fell below our position: its records were forgotten."""
        for tp, position in self._positions(assignment).items():
            high = self._high(tp)
            if high is not None and position is not None and position > high:
                return True
        return False

    def _rewind_now(self) -> None:
        """Seek the partitions a reset left to read again to their beginning (retried at the next check)."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        for partition in sorted(self._rewind):
            try:
                self.consumer.seek(TopicPartition(self.topic, partition, OFFSET_BEGINNING))
                self._rewind.discard(partition)
            except KafkaException:  # not fetching it yet; the next check tries again
                continue

    def _positions(self, assignment: list[Any]) -> dict[Any, int | None]:
        from confluent_kafka import KafkaException

        try:
            found = self.consumer.position(assignment) if assignment else []
        except KafkaException:
            return {}
        return {tp: (tp.offset if tp.offset >= 0 else None) for tp in found}

    def _high(self, tp: Any) -> int | None:
        """The partition's high watermark from the last fetch response (never ListOffsets: wrong on Tansu)."""
        from confluent_kafka import KafkaException

        try:
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            return None
        return int(high) if high is not None and high >= 0 else None

    def _topic_id(self) -> str | None:
        """The topic's id (a recreated topic has a new one), None if unknown."""
        from confluent_kafka import TopicCollection

        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            config: dict[str, Any] = {
                "bootstrap.servers": self.bootstrap,
                "logger": self._logger,
                "error_cb": self._client_error,
                **librdkafka_security(self.settings.kafka_security),
            }
            self._admin = AdminClient(config)
        try:
            future = self._admin.describe_topics(TopicCollection([self.topic]), request_timeout=2.0)[self.topic]
            return str(future.result(timeout=3.0).topic_id)
        except Exception:  # the broker is down or cannot describe topics: the other signals remain
            return None

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._last_progress
        if not force and elapsed < self.options.progress_every_s:
            return
        rate = self._counted / elapsed if elapsed > 0 else 0.0
        lags = []
        positions = self._positions(self.consumer.assignment())
        for tp, pos in sorted(positions.items(), key=lambda item: item[0].partition):
            high = self._high(tp)
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

    def _client_error(self, error: Any) -> None:
        """librdkafka's errors (an unreachable broker, …), each kind said once a minute at most.

        A refused login or an unverifiable certificate is not said: it ends the run with its sentence."""
        refused = client_failure(error, self.bootstrap, self.settings.kafka_security)
        if refused is not None:
            self._refused = self._refused or refused
            return
        now = time.monotonic()
        code = getattr(error, "code", None)
        # A kind: the error code, or a log line without its numbers ("… after 3ms in state CONNECT").
        key = str(code()) if callable(code) else re.sub(r"\d+", "#", str(error))
        if now - self._said.get(key, -1e9) >= 60.0:
            self._said[key] = now
            self.log(f"kafka: {error}")

    def run(self, stop: threading.Event) -> RunSummary:
        ensure_topic(self.bootstrap, self.topic, self.settings.partitions, self.settings.kafka_security)
        worker = threading.Thread(target=self._store_loop, name="store-batches", daemon=True)
        worker.start()
        try:
            self.consumer = make_group_consumer(
                self.bootstrap,
                self.options.group,
                self.settings.kafka_security,
                on_commit=self._on_commit,
                error_cb=self._client_error,
                logger=self._logger,
            )
            self.consumer.subscribe([self.topic], on_assign=self.on_assigned, on_revoke=self.revoke, on_lost=self.lost)
            try:
                self._loop(stop)
                self.flush()
            finally:
                self.progress(force=True)
                try:
                    self.consumer.close()  # leaves the group; revoke finds nothing left to store
                except Exception as exc:  # closing after a broker loss
                    self.log(f"consumer close: {exc}")
        finally:
            stop_restarted(self._initial_broker, self.broker)
            self._work.put(None)
            worker.join(timeout=60)
            self._admin = None  # its threads and connections go with it
            self._gathered.close()  # what was gathered after a failure: its offsets are not committed
        return self.summary

    def _add(self, messages: list[Any]) -> None:
        """A poll's messages, by partition, into the batch being gathered."""
        by_partition: dict[int, tuple[list[int], list[bytes | None]]] = {}
        for message in messages:
            if message.error() is not None:
                self._message_error(message)
                continue
            partition = message.partition()
            entry = by_partition.get(partition)
            if entry is None:
                entry = by_partition[partition] = ([], [])
            entry[0].append(message.offset())
            entry[1].append(message.value())
        for partition, (offsets, values) in by_partition.items():
            if not self._count:
                self._since = time.monotonic()
            self._gathered.add(partition, offsets, values)

    def _message_error(self, message: Any) -> None:
        error = message.error()
        where = f"{message.topic()}/{message.partition()}" if message.topic() else "the consumer"
        self._client_error(f"{where}: {error}")

    def _loop(self, stop: threading.Event) -> None:
        options = self.options
        last_check = idle_since = time.monotonic()
        tenth = max(options.max_events // 10, 1)
        while not stop.is_set():
            room = options.max_events - self._count
            if room > 0:
                # A poll returns a tenth of a batch at most, so the first batch of a backlog reaches a free
                # store after a tenth, not after a whole batch.
                messages = self.consumer.consume(num_messages=max(min(room, tenth), 1), timeout=0.1)
                if self._refused is not None:
                    raise self._refused
                self._add(messages)
            else:
                if self.seal is not None and not self._idle():
                    self.seal(self._gathered)  # full while the store is busy: its last step before storing, now
                self._wait_idle()  # the store thread is behind: stop gathering until it is free
                messages = []
            self._raise_failure()
            offsets = self._collect()
            if offsets:
                self._commit_async(offsets)
            now = time.monotonic()
            # A free store thread takes any batch worth a round of queries; a busy one lets it grow.
            worth = self._count >= tenth or now - self._since >= options.max_wait_s
            if self._count and worth and self._idle():
                self._submit()
            assignment = self.consumer.assignment()
            if messages or not assignment:
                idle_since = now
            if now - last_check >= 2.0:
                self.check_broker()
                last_check = now
            self.progress()
            idle = options.stop_after_idle_s
            waiting = self._replay or self._rewind  # a replay still to begin is not idleness
            if idle is not None and not waiting and not self._count and self._idle() and now - idle_since >= idle:
                self._note_replay_end(assignment)
                break


def _quiet_logger(say: Callable[[Any], None]) -> Any:
    """librdkafka's log lines, warnings and worse only, through ``say`` (which says each kind once a minute)."""
    import logging

    class _Say(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            say(record.getMessage())

    logger = logging.getLogger("dossier.kafka")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(_Say())
    return logger
