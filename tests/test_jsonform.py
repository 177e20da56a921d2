"""The JSON form: exact round trips to the same Avro bytes, strict reading."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from schemas.codec import encode
from schemas.errors import JsonFormError
from schemas.events import EventType
from schemas.golden import sample_event
from schemas.jsonform import from_json, from_json_line, to_json, to_json_line
from tests.strategies import any_events


@settings(max_examples=300, deadline=None)
@given(any_events())
def test_round_trip_to_same_avro_bytes(event) -> None:  # type: ignore[no-untyped-def]
    obj = to_json(event)
    again = from_json(json.loads(json.dumps(obj)))
    assert again == event
    assert to_json(again) == obj
    assert encode(again, validate=False) == encode(event, validate=False)


def test_shape_of_the_json_form() -> None:
    obj = to_json(sample_event(EventType.SUPPLEMENT_REQUESTED))
    assert obj["occurred_at"] == "2024-02-07T16:11:00.123456+07:00"
    assert obj["event_type"] == "SupplementRequested"
    assert obj["requested_documents"] == ["TP-02", "TP-05"]
    assert obj["prev_hash"] == bytes(range(32)).hex()
    assert obj["to_unit"] is None
    assert list(obj)[:4] == ["event_id", "dossier_id", "seq", "event_type"]


def test_line_form_is_one_line_and_keeps_vietnamese_readable() -> None:
    line = to_json_line(sample_event(EventType.RECEPTION_REFUSED))
    assert "\n" not in line
    assert "hồ sơ chưa đầy đủ" in line
    assert from_json_line(line) == sample_event(EventType.RECEPTION_REFUSED)


def test_optional_fields_may_be_left_out() -> None:
    obj = {k: v for k, v in to_json(sample_event(EventType.RESULT_COLLECTED)).items() if v is not None}
    del obj["documents"], obj["requested_documents"], obj["n_attachments"]
    assert from_json(obj) == sample_event(EventType.RESULT_COLLECTED).replace(n_attachments=0)


def _obj(**changes: object) -> dict[str, object]:
    obj = to_json(sample_event(EventType.FEE_PAID))
    obj.update(changes)
    return obj


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"occurred_at": "2024-02-07T09:00:00"}, "occurred_at .* has no offset"),
        ({"occurred_at": "yesterday"}, "occurred_at 'yesterday' is not an ISO 8601 timestamp"),
        ({"occurred_at": 1707296400}, "occurred_at must be an ISO 8601 string"),
        ({"seq": "7"}, "seq must be an integer"),
        ({"seq": True}, "seq must be an integer"),
        ({"channel": "FAX"}, "channel 'FAX' is not one of"),
        ({"hash": "AB" * 32}, "hash must be 64 lowercase hex digits"),
        ({"hash": "ab"}, "hash must be 64 lowercase hex digits"),
        ({"documents": "TP-01"}, "documents must be an array of strings"),
        ({"clock_stopped": "yes"}, "clock_stopped must be true or false"),
        ({"dossier_id": None}, "dossier_id must not be null"),
        ({"colour": "red"}, r"unknown field\(s\): colour"),
    ],
)
def test_strict_reading(changes: dict[str, object], message: str) -> None:
    with pytest.raises(JsonFormError, match=message):
        from_json(_obj(**changes))


def test_missing_envelope_fields_are_listed() -> None:
    obj = _obj()
    del obj["actor_id"], obj["status"]
    with pytest.raises(JsonFormError, match=r"missing field\(s\): actor_id, status"):
        from_json(obj)


@pytest.mark.parametrize("line", ["{", "[]", "42", '"x"'])
def test_not_an_object(line: str) -> None:
    with pytest.raises(JsonFormError):
        from_json_line(line)
