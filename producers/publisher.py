"""The live publisher: domain commands in, acknowledged events out.

A one-stop information system says what happened to a dossier ("received",
"hand over to the leader", "request a supplement", "apologise", "issue the
result" …) as a :class:`DossierCommand`. :meth:`LivePublisher.execute` loads
the dossier's head (last state and last event) from a :class:`StateSource`,
works out the status after the command from the lifecycle table, fills the
envelope from the dossier's previous event, assigns the next ``seq`` and links
the hash chain, checks the move with :func:`schemas.lifecycle.apply`, encodes,
sends, waits for the broker's acknowledgement and only then records the new
head and returns the event.

One dossier, one chain: commands on the same dossier are serialised by a
per-dossier lock held from loading the head to recording the new one, so two
concurrent commands can never both take seq n. Commands on different
dossiers run in parallel. The lock lives in this process, so a deployment
runs **one publisher per dossier key range** (e.g. per receiving unit, or a
hash range of ``dossier_id``); two processes publishing for the same dossier
would fork its chain.

A send that fails leaves the event *in doubt*: it may or may not have
reached the broker. The dossier then refuses new commands
(:class:`InDoubtError`) until :meth:`LivePublisher.retry` re-sends the very
same event (same bytes, same ``event_id``; the consumer stores it once),
because issuing a fresh event for the same seq would fork the chain.

State sources are pluggable; :class:`MemoryStateSource` keeps heads in memory
and is seeded by replaying histories (:meth:`MemoryStateSource.from_events`).
A persistent source (the ClickHouse store, read at start-up) implements the
same two methods.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from dossier_runtime.kafka import DELIVERY_TIMEOUT_MS, ensure_topic, make_producer
from dossier_runtime.settings import KafkaSecurity
from producers.commands import COMMAND_EVENTS, DossierCommand
from producers.publish import Delivered, OutboundEvent, outbound_event
from schemas.errors import LifecycleError
from schemas.events import (
    ARRAY_FIELDS,
    CONTEXT_FIELDS,
    ENUM_FIELDS,
    PAYLOAD_FIELDS,
    ZERO_HASH,
    DossierEvent,
    EventType,
)
from schemas.hashchain import seal
from schemas.lifecycle import DossierState, apply, replay
from schemas.transitions import TRANSITIONS, Status, allowed_after, status_label

_E = EventType


_COMMAND_FIELDS: Final = frozenset(CONTEXT_FIELDS) | frozenset(PAYLOAD_FIELDS)


class CommandRejectedError(Exception):
    """The command is not a legal next step for the dossier (nothing was sent)."""


class InDoubtError(Exception):
    """The dossier's last send was not confirmed; :meth:`LivePublisher.retry` it first."""


class DeliveryError(Exception):
    """The broker did not acknowledge the event; it is now in doubt (see :meth:`LivePublisher.retry`)."""

    def __init__(self, message: str, event: DossierEvent | None = None) -> None:
        super().__init__(message)
        self.event = event


@dataclasses.dataclass(frozen=True)
class DossierHead:
    """What the publisher needs of a dossier: its state and last event, and any event in doubt after them.

    ``state`` and ``last`` are None only while the dossier's first event is in doubt.
    """

    dossier_id: str
    state: DossierState | None
    last: DossierEvent | None
    in_doubt: DossierEvent | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    event: DossierEvent
    delivery: Delivered


class StateSource(Protocol):
    def load(self, dossier_id: str) -> DossierHead | None: ...

    def save(self, head: DossierHead) -> None: ...


class EventSender(Protocol):
    def send(self, event: OutboundEvent) -> Delivered: ...


class MemoryStateSource:
    """Dossier heads in memory; thread-safe."""

    def __init__(self) -> None:
        self._heads: dict[str, DossierHead] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_events(cls, events: Iterable[DossierEvent]) -> MemoryStateSource:
        """Seed from histories (any order of dossiers, each in seq order); a broken history raises LifecycleError."""
        by_dossier: dict[str, list[DossierEvent]] = {}
        for event in events:
            by_dossier.setdefault(event.dossier_id, []).append(event)
        source = cls()
        for history in by_dossier.values():
            source.save(DossierHead(history[0].dossier_id, replay(history), history[-1]))
        return source

    def load(self, dossier_id: str) -> DossierHead | None:
        with self._lock:
            return self._heads.get(dossier_id)

    def save(self, head: DossierHead) -> None:
        with self._lock:
            self._heads[head.dossier_id] = head


class KafkaEventSender:
    """Sends one event and waits for its acknowledgement (thread-safe: one shared producer)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        *,
        security: KafkaSecurity | None = None,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        ensure_topic(bootstrap, topic, partitions, security)
        config = {"linger_ms": 0, "max_block_ms": 10_000, **(producer_config or {})}
        self._timeout_s = int(config.get("delivery_timeout_ms", DELIVERY_TIMEOUT_MS)) / 1000 + 5
        self._producer = make_producer(bootstrap, security, **config)
        self.topic = topic

    def send(self, event: OutboundEvent) -> Delivered:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(
                self.topic, key=event.dossier_id.encode(), value=event.payload, headers=event.headers()
            )
            meta = future.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return Delivered(event.event_id, event.dossier_id, event.seq, meta.topic, meta.partition, meta.offset)

    def close(self) -> None:
        self._producer.close(timeout=5)


class _DossierLocks:
    """One lock per dossier, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, dossier_id: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(dossier_id, (threading.Lock(), 0))
            self._locks[dossier_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[dossier_id]
                if users == 1:
                    del self._locks[dossier_id]
                else:
                    self._locks[dossier_id] = (lock, users - 1)


def _normalised(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Enum fields may be given as their symbols, arrays as lists."""
    out = dict(fields)
    for name, value in fields.items():
        if name in ENUM_FIELDS and isinstance(value, str):
            out[name] = ENUM_FIELDS[name](value)
        elif name in ARRAY_FIELDS and isinstance(value, list):
            out[name] = tuple(value)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


class LivePublisher:
    """Commands to acknowledged events, one chain per dossier (see the module docstring)."""

    def __init__(
        self,
        sender: EventSender,
        state: StateSource,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._sender, self._state, self._clock, self._new_id = sender, state, clock, new_id
        self._locks = _DossierLocks()

    def execute(self, command: DossierCommand) -> Published:
        """Check, seal, send and confirm one command's event; raise if it cannot be."""
        with self._locks.hold(command.dossier_id):
            head = self._state.load(command.dossier_id)
            if head is not None and head.in_doubt is not None:
                raise InDoubtError(
                    f"{command.dossier_id}: seq {head.in_doubt.seq} ({head.in_doubt.event_type.value}) was not "
                    "confirmed by the broker; retry it before new commands"
                )
            state = head.state if head is not None else None
            last = head.last if head is not None else None
            event = self._build(state, last, command)
            try:
                after = apply(state, event)
            except LifecycleError as exc:
                raise CommandRejectedError(str(exc)) from exc
            return self._send(command.dossier_id, state, last, event, after)

    def retry(self, dossier_id: str) -> Published | None:
        """Re-send the dossier's event in doubt, byte for byte; None if there is none."""
        with self._locks.hold(dossier_id):
            head = self._state.load(dossier_id)
            if head is None or head.in_doubt is None:
                return None
            after = apply(head.state, head.in_doubt, verify_hashes=False)
            return self._send(dossier_id, head.state, head.last, head.in_doubt, after)

    def _send(
        self,
        dossier_id: str,
        state: DossierState | None,
        last: DossierEvent | None,
        event: DossierEvent,
        after: DossierState,
    ) -> Published:
        try:
            delivery = self._sender.send(outbound_event(event))
        except DeliveryError as exc:
            self._state.save(DossierHead(dossier_id, state, last, event))
            raise DeliveryError(
                f"{dossier_id} seq {event.seq} ({event.event_type.value}) not confirmed: {exc}; "
                "it is in doubt: call retry() before new commands",
                event,
            ) from exc
        self._state.save(DossierHead(dossier_id, after, event))
        return Published(event, delivery)

    def _build(self, state: DossierState | None, last: DossierEvent | None, command: DossierCommand) -> DossierEvent:
        event_type = COMMAND_EVENTS[command.command]
        before = state.status if state else None
        unknown = sorted(set(command.fields) - _COMMAND_FIELDS)
        if unknown:
            raise CommandRejectedError(f"{command.command.value}: unknown or envelope field(s) {', '.join(unknown)}")
        status = command.status if command.status is not None else self._status_after(before, command, event_type)
        if last is not None:
            envelope: dict[str, Any] = {
                "procedure_code": last.procedure_code,
                "rule_set": last.rule_set,
                "applicant_ref": last.applicant_ref,
                "applicant_kind": last.applicant_kind,
                "channel": last.channel,
                "procedure_version": last.procedure_version,
            }
        elif command.context is not None:
            envelope = dataclasses.asdict(command.context)
        else:
            raise CommandRejectedError(f"{command.dossier_id} is new: its first command needs a DossierContext")
        now = self._clock()
        try:
            event = DossierEvent(
                event_id=self._new_id(),
                dossier_id=command.dossier_id,
                seq=state.last_seq + 1 if state else 1,
                event_type=event_type,
                occurred_at=command.occurred_at or now,
                recorded_at=now,
                unit_code=command.unit_code,
                actor_id=command.actor_id,
                actor_role=command.actor_role,
                status=status,
                **envelope,
                **_normalised(command.fields),
            )
        except (TypeError, ValueError) as exc:
            raise CommandRejectedError(f"{command.command.value}: {exc}") from exc
        return seal(event, state.last_hash if state else ZERO_HASH)

    @staticmethod
    def _status_after(before: Status | None, command: DossierCommand, event_type: EventType) -> int:
        allowed = allowed_after(before, event_type)
        if len(allowed) == 1:
            return int(next(iter(allowed)))
        if not allowed:
            legal = sorted(c.value for c, t in COMMAND_EVENTS.items() if (before, t) in TRANSITIONS)
            raise CommandRejectedError(
                f"{command.dossier_id}: {command.command.value} is not allowed in status {status_label(before)}; "
                f"allowed: {', '.join(legal)}"
            )
        options = ", ".join(str(int(s)) for s in sorted(allowed))
        raise CommandRejectedError(
            f"{command.dossier_id}: {command.command.value} from status {status_label(before)} "
            f"can lead to {options}: say which with status="
        )
