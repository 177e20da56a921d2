"""The per-type field contract and envelope validation."""

from __future__ import annotations

import dataclasses

import pytest

from schemas.errors import EventValidationError
from schemas.events import (
    EVENT_FIELDS,
    FIELD_NAMES,
    PAYLOAD_FIELDS,
    ActorRole,
    Channel,
    EventType,
    validate_event,
)
from schemas.golden import sample_event

TYPES = [t for t in EventType if t is not EventType.UNKNOWN]


def test_every_type_has_a_field_rule() -> None:
    assert set(EVENT_FIELDS) == set(TYPES)
    for rule in EVENT_FIELDS.values():
        assert rule.allowed <= set(PAYLOAD_FIELDS)
        assert not rule.required & rule.optional


@pytest.mark.parametrize("event_type", TYPES)
def test_sample_of_every_type_is_valid(event_type: EventType) -> None:
    validate_event(sample_event(event_type))


@pytest.mark.parametrize(("event_type", "field"), [(t, f) for t in TYPES for f in sorted(EVENT_FIELDS[t].required)])
def test_each_required_field_is_enforced(event_type: EventType, field: str) -> None:
    empty = () if field in ("requested_documents", "documents") else None
    event = sample_event(event_type).replace(**{field: empty}, unknown_facts=())
    with pytest.raises(EventValidationError, match=f"{event_type.value} requires {field}"):
        validate_event(event)


#: A present value for every payload field, taken from the samples of the types that carry it.
DONOR = {
    name: getattr(sample_event(t), name)
    for t in TYPES
    for name in PAYLOAD_FIELDS
    if getattr(sample_event(t), name) not in (None, ())
}


@pytest.mark.parametrize(
    ("event_type", "field"), [(t, f) for t in TYPES for f in PAYLOAD_FIELDS if f not in EVENT_FIELDS[t].allowed]
)
def test_fields_a_type_does_not_carry_are_refused(event_type: EventType, field: str) -> None:
    event = sample_event(event_type).replace(**{field: DONOR[field]})
    with pytest.raises(EventValidationError, match=f"{event_type.value} does not carry {field}"):
        validate_event(event)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_id": "not-a-uuid"}, "is not a UUID"),
        ({"dossier_id": "H29-1"}, "is not <unit code>-<yyMMdd>-<nnnn>"),
        ({"seq": 0}, "seq 0 must be a positive integer"),
        ({"status": 11}, "status 11 is not a national status code"),
        ({"unit_code": "HCMC"}, "is not an electronic unit ID"),
        ({"actor_id": ""}, "actor_id is empty"),
        ({"actor_role": ActorRole.UNKNOWN}, "actor_role is UNKNOWN"),
        ({"channel": Channel.UNKNOWN}, "channel is UNKNOWN"),
        ({"hash": b"short"}, "hash must be 32 bytes"),
        ({"n_attachments": -1}, "n_attachments -1 must be a non-negative integer"),
        ({"status": True}, "status True is not a national status code"),
        ({"seq": "3"}, "seq .3. must be a positive integer"),
    ],
)
def test_envelope_problems(changes: dict[str, object], message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        validate_event(sample_event(EventType.FEE_PAID).replace(**changes))


def test_naive_timestamp_is_refused() -> None:
    event = sample_event(EventType.FEE_PAID)
    naive = event.occurred_at.replace(tzinfo=None)
    with pytest.raises(EventValidationError, match="occurred_at must be a timezone-aware datetime"):
        validate_event(event.replace(occurred_at=naive))


def test_ref_seq_must_point_back() -> None:
    event = sample_event(EventType.SYNCED_TO_NATIONAL)
    with pytest.raises(EventValidationError, match="ref_seq 7 does not name an earlier event"):
        validate_event(event.replace(ref_seq=7))


def test_all_problems_reported_at_once_with_dossier_and_seq() -> None:
    event = sample_event(EventType.APOLOGY_ISSUED).replace(new_due_at=None, rating=3, status=0)
    with pytest.raises(EventValidationError) as info:
        validate_event(event)
    text = str(info.value)
    assert text.startswith("000.00.31.H29-240207-0001 seq 7: ")
    assert "requires new_due_at" in text and "does not carry rating" in text and "status 0" in text


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(EventValidationError, match="'Unknown' is not one this version can accept"):
        validate_event(sample_event(EventType.FEE_PAID).replace(event_type=EventType.UNKNOWN))


def test_record_round_trip() -> None:
    event = sample_event(EventType.SUPPLEMENT_REQUESTED)
    record = event.to_record()
    assert list(record) == list(FIELD_NAMES)
    assert record["event_type"] == "SupplementRequested" and type(record["event_type"]) is str
    assert record["requested_documents"] == ["TP-02", "TP-05"]
    assert type(event).from_record(record) == event
    assert dataclasses.is_dataclass(event)
