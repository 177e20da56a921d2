"""The live publisher against the real broker: commands become acknowledged, chained events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dossier_runtime.broker import BrokerHandle, start_broker, stop_broker
from producers.commands import Command, DossierCommand, DossierContext
from producers.publisher import (
    CommandRejectedError,
    DeliveryError,
    InDoubtError,
    KafkaEventSender,
    LivePublisher,
    MemoryStateSource,
)
from schemas.codec import decode, encode
from schemas.events import ActorRole, ApplicantKind, Channel, DossierEvent
from schemas.lifecycle import check_history
from tests.eventfactory import T0, UNIT
from tests.test_publish_support import consume, dossier_id, full_history

pytestmark = pytest.mark.broker

CONTEXT = DossierContext(
    "1.001612", "ND61-2018", "7f3a0c5e9b1d2e4f6a8b0c1d2e3f4a5b", ApplicantKind.INDIVIDUAL, Channel.ONLINE
)
RECEIVE_FIELDS = {
    "time_limit_value": 3,
    "time_limit_unit": "WORKING_DAYS",
    "deadline_convention": "WORKING_HOURS",
    "service_level": "FULL_ONLINE",
    "due_at": T0 + timedelta(days=3),
}
TO_CV = {"to_unit": UNIT, "to_actor": "cv-01", "to_role": "CASE_OFFICER"}


def cmd(dossier: str, command: Command, role: ActorRole = ActorRole.CASE_OFFICER, **kwargs: object) -> DossierCommand:
    return DossierCommand(
        dossier_id=dossier,
        command=command,
        actor_id=f"{role.value.lower()}-01",
        actor_role=role,
        unit_code=UNIT,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def sender(broker: BrokerHandle, topic: str) -> Iterator[KafkaEventSender]:
    s = KafkaEventSender(broker.bootstrap, topic, 3)
    yield s
    s.close()


def received(publisher: LivePublisher, dossier: str) -> list[DossierEvent]:
    return [
        publisher.execute(cmd(dossier, Command.SUBMIT, ActorRole.APPLICANT, context=CONTEXT, occurred_at=T0)).event,
        publisher.execute(cmd(dossier, Command.RECEIVE, ActorRole.RECEPTION_OFFICER, fields=RECEIVE_FIELDS)).event,
        publisher.execute(cmd(dossier, Command.TRANSFER, ActorRole.RECEPTION_OFFICER, fields=TO_CV)).event,
    ]


def test_commands_become_a_legal_acknowledged_chain(sender: KafkaEventSender, broker: BrokerHandle, topic: str) -> None:
    publisher = LivePublisher(sender, MemoryStateSource())
    d = dossier_id(1)
    events = received(publisher, d)
    events.append(
        publisher.execute(cmd(d, Command.HAND_OVER, fields={**TO_CV, "to_actor": "ld-01", "to_role": "LEADER"})).event
    )
    events.append(publisher.execute(cmd(d, Command.APPROVE, ActorRole.LEADER)).event)
    done = publisher.execute(
        cmd(d, Command.ISSUE_RESULT, ActorRole.CLERK, fields={"result_ref": "12/GCN", "result_electronic": True})
    )
    events.append(done.event)
    assert done.delivery.offset >= 0 and done.delivery.topic == topic
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.status for e in events] == [1, 2, 4, 4, 4, 9]
    assert check_history(events) == []
    assert all(e.procedure_code == "1.001612" and e.channel is Channel.ONLINE for e in events)
    records = consume(broker.bootstrap, topic, 3, expected=6)
    assert [r.value for r in records] == [encode(e) for e in events]


def test_illegal_or_incomplete_commands_are_refused_and_send_nothing(sender: KafkaEventSender) -> None:
    state = MemoryStateSource()
    publisher = LivePublisher(sender, state)
    d = dossier_id(2)
    with pytest.raises(CommandRejectedError, match="its first command needs a DossierContext"):
        publisher.execute(cmd(d, Command.SUBMIT, ActorRole.APPLICANT))
    received(publisher, d)
    with pytest.raises(CommandRejectedError) as caught:
        publisher.execute(
            cmd(d, Command.RETURN_RESULT, ActorRole.RECEPTION_OFFICER, fields={"return_channel": "ONLINE"})
        )
    assert str(caught.value).startswith(f"{d}: return-result is not allowed in status 4 (Đang xử lý); allowed: ")
    assert "hand-over" in str(caught.value) and "request-supplement" in str(caught.value)
    with pytest.raises(CommandRejectedError, match="SupplementRequested requires requested_documents"):
        publisher.execute(cmd(d, Command.REQUEST_SUPPLEMENT, fields={"reason": "Thiếu giấy tờ"}))
    with pytest.raises(CommandRejectedError, match="unknown or envelope field"):
        publisher.execute(cmd(d, Command.HAND_OVER, fields={**TO_CV, "seq": 99}))
    publisher.execute(
        cmd(d, Command.REQUEST_FINANCIAL_OBLIGATION, fields={"amount_vnd": 500_000, "clock_stopped": True})
    )
    with pytest.raises(CommandRejectedError, match="can lead to 4, 9: say which with status="):
        publisher.execute(
            cmd(d, Command.FULFIL_FINANCIAL_OBLIGATION, ActorRole.APPLICANT, fields={"amount_vnd": 500_000})
        )
    fulfilled = publisher.execute(
        cmd(d, Command.FULFIL_FINANCIAL_OBLIGATION, ActorRole.APPLICANT, status=4, fields={"amount_vnd": 500_000})
    ).event
    assert fulfilled.seq == 5, "refused commands took no seq"
    head = state.load(d)
    assert head is not None and head.last == fulfilled


def test_concurrent_commands_on_one_dossier_never_fork_its_chain(
    sender: KafkaEventSender, broker: BrokerHandle, topic: str
) -> None:
    publisher = LivePublisher(sender, MemoryStateSource())
    d = dossier_id(3)
    received(publisher, d)
    threads, per_thread = 6, 8
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def officer(n: int) -> None:
        start.wait()
        for _ in range(per_thread):
            try:
                publisher.execute(
                    DossierCommand(
                        dossier_id=d,
                        command=Command.HAND_OVER,
                        actor_id=f"cv-{n}",
                        actor_role=ActorRole.CASE_OFFICER,
                        unit_code=UNIT,
                        fields=TO_CV,
                    )
                )
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    workers = [threading.Thread(target=officer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert errors == []
    total = 3 + threads * per_thread
    records = consume(broker.bootstrap, topic, 3, expected=total)
    events = [decode(r.value) for r in records]
    assert len(events) == total
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert check_history(events) == []
    assert sorted(e.actor_id for e in events[3:]) == sorted(
        f"cv-{n}" for n in range(threads) for _ in range(per_thread)
    )


def test_a_seeded_state_continues_the_history(sender: KafkaEventSender) -> None:
    history = full_history(4)[:5]  # up to ResultApproved, status 4
    publisher = LivePublisher(sender, MemoryStateSource.from_events(history))
    issued = publisher.execute(
        cmd(
            dossier_id(4),
            Command.ISSUE_RESULT,
            ActorRole.CLERK,
            fields={"result_ref": "7/QĐ", "result_electronic": False},
        )
    ).event
    assert issued.seq == 6
    assert issued.prev_hash == history[-1].hash
    assert issued.applicant_ref == history[-1].applicant_ref
    assert check_history([*history, issued]) == []


def test_an_unconfirmed_event_is_in_doubt_until_retried_byte_for_byte(tmp_path: Path, topic: str) -> None:
    quick = {"delivery_timeout_ms": 2_500, "request_timeout_ms": 2_000, "max_block_ms": 2_000}
    first = start_broker(log_path=tmp_path / "first.log")
    state = MemoryStateSource()
    d = dossier_id(5)
    sender = KafkaEventSender(first.bootstrap, topic, 2, producer_config=quick)
    try:
        publisher = LivePublisher(sender, state)
        received(publisher, d)
        assert first.process is not None
        first.process.kill()
        first.process.wait(5)
        with pytest.raises(DeliveryError, match=rf"{d} seq 4 \(StepHandedOver\) not confirmed: ") as caught:
            publisher.execute(cmd(d, Command.HAND_OVER, fields=TO_CV))
        doubtful = caught.value.event
        with pytest.raises(InDoubtError, match=rf"{d}: seq 4 \(StepHandedOver\) was not confirmed"):
            publisher.execute(cmd(d, Command.HAND_OVER, fields=TO_CV))
    finally:
        sender.close()
        stop_broker(first)
    second = start_broker(log_path=tmp_path / "second.log")
    try:
        again = KafkaEventSender(second.bootstrap, topic, 2)
        publisher = LivePublisher(again, state)  # a fresh producer: an idempotent one never recovers
        retried = publisher.retry(d)
        assert retried is not None and retried.event == doubtful
        assert publisher.retry(d) is None
        nxt = publisher.execute(cmd(d, Command.APPROVE, ActorRole.LEADER)).event
        assert (nxt.seq, nxt.prev_hash) == (5, doubtful.hash)
        records = consume(second.bootstrap, topic, 2, expected=2)
        again.close()
    finally:
        stop_broker(second)
    assert doubtful is not None
    assert [r.value for r in records] == [encode(doubtful), encode(nxt)]
