"""The single-object codec: header, round trips, errors that name what was wrong."""

from __future__ import annotations

import io

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings

from schemas.codec import MAGIC, decode, decode_record, encode, encode_record, header, writer_schema
from schemas.errors import DecodeError, EventValidationError, UnknownFingerprintError
from schemas.events import EventType
from schemas.golden import sample_event
from schemas.registry import current_schema, released_schemas
from tests.strategies import any_events


def test_header_is_marker_then_little_endian_fingerprint() -> None:
    schema = current_schema()
    payload = encode(sample_event(EventType.DOSSIER_RECEIVED))
    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == schema.fingerprint.to_bytes(8, "little")
    assert header() == payload[:10]


def test_body_is_plain_avro_binary() -> None:
    event = sample_event(EventType.SUPPLEMENT_REQUESTED)
    buf = io.BytesIO()
    schemaless_writer(buf, current_schema().parsed, event.to_record())
    assert encode(event) == MAGIC + current_schema().fingerprint_bytes + buf.getvalue()


@settings(max_examples=300, deadline=None)
@given(any_events())
def test_round_trip_any_event(event) -> None:  # type: ignore[no-untyped-def]
    payload = encode(event, validate=False)
    assert decode(payload, validate=False) == event
    assert encode_record(decode_record(payload)) == payload


def test_every_sample_event_round_trips_validated() -> None:
    for event_type in EventType:
        if event_type is EventType.UNKNOWN:
            continue
        event = sample_event(event_type)
        assert decode(encode(event)) == event


def test_encode_validates_by_default() -> None:
    event = sample_event(EventType.APOLOGY_ISSUED).replace(new_due_at=None)
    with pytest.raises(EventValidationError, match="ApologyIssued requires new_due_at"):
        encode(event)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "shorter than the 10-byte single-object header"),
        (b"\xc3\x01abc", "shorter than the 10-byte"),
        (b"\x00\x01" + bytes(20), "starts with 0001, expected c301"),
        (b"Obj\x01" + bytes(20), "not an Avro single-object message"),
    ],
)
def test_not_a_message(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(payload)


def test_unknown_fingerprint_is_named() -> None:
    payload = encode(sample_event(EventType.FEE_PAID))
    forged = MAGIC + bytes.fromhex("0123456789abcdef") + payload[10:]
    with pytest.raises(UnknownFingerprintError, match="0123456789abcdef") as info:
        decode(forged)
    assert info.value.fingerprint == bytes.fromhex("0123456789abcdef")


def test_truncated_body() -> None:
    payload = encode(sample_event(EventType.FEE_PAID))
    with pytest.raises(DecodeError, match=r"corrupt body for schema v2 \([0-9a-f]{16}\): it ends before"):
        decode(payload[:-5])


def test_trailing_bytes() -> None:
    payload = encode(sample_event(EventType.FEE_PAID))
    with pytest.raises(DecodeError, match="3 trailing bytes"):
        decode(payload + b"\x00\x00\x00")


def test_corrupt_enum_index() -> None:
    payload = bytearray(encode(sample_event(EventType.FEE_PAID)))
    # event_type is the 4th field: after event_id (1+36 bytes), dossier_id (1+25), seq (1).
    offset = 10 + 37 + 26 + 1
    payload[offset] = 0x7E  # zig-zag 63: no such symbol
    with pytest.raises(DecodeError, match="corrupt body"):
        decode(bytes(payload))


def test_decoded_contract_violation_is_reported() -> None:
    bad = sample_event(EventType.CITIZEN_RATED).replace(rating=9)
    payload = encode(bad, validate=False)
    with pytest.raises(EventValidationError, match="rating 9 is outside 1-5"):
        decode(payload)
    assert decode(payload, validate=False).rating == 9


def test_writer_schema_lookup() -> None:
    payload = encode(sample_event(EventType.DOSSIER_SUBMITTED))
    assert writer_schema(payload) is released_schemas()[-1]
