"""Released schemas and their CRC-64-AVRO fingerprints."""

from __future__ import annotations

import json

import avro.schema
from fastavro.schema import fingerprint as fastavro_fingerprint
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import FIELD_NAMES
from schemas.registry import crc64_avro, current_schema, released_schemas


def test_empty_input_fingerprint_is_the_avro_constant() -> None:
    assert crc64_avro(b"") == 0xC15D213AA4D7A795


@given(st.binary(max_size=200))
def test_crc64_matches_apache_avro(data: bytes) -> None:
    from avro.schema import _crc_64_fingerprint

    assert crc64_avro(data).to_bytes(8, "little") == _crc_64_fingerprint(data)


def test_fingerprint_matches_fastavro() -> None:
    schema = current_schema()
    assert schema.fingerprint_hex == fastavro_fingerprint(schema.canonical_form, "CRC-64-AVRO")
    assert len(schema.fingerprint_hex) == 16


def test_versions_are_numbered_from_one() -> None:
    assert [s.version for s in released_schemas()] == list(range(1, len(released_schemas()) + 1))


def test_current_schema_has_exactly_the_event_fields() -> None:
    names = [f["name"] for f in current_schema().source["fields"]]
    assert sorted(names) == sorted(FIELD_NAMES)


def test_every_enum_has_a_reader_default() -> None:
    """Forward compatibility: an old reader meets a symbol added later."""
    enums = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                enums.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(current_schema().source)
    assert enums
    for enum in enums:
        assert enum.get("default") in enum["symbols"], enum["name"]


def test_schema_parses_with_apache_avro() -> None:
    parsed = avro.schema.parse(json.dumps(current_schema().source))
    assert parsed.fullname == "vn.dossieraudit.DossierEvent"
