"""Golden payloads: pinned bytes per event type per released version, FULL_TRANSITIVE proof."""

from __future__ import annotations

import copy
import io
import json

import avro.io
import avro.schema
import pytest
from click.testing import CliRunner

from schemas.cli import schema_group
from schemas.codec import HEADER_SIZE, decode
from schemas.compat import full_transitive_problems
from schemas.events import EventType
from schemas.golden import golden_payloads, sample_event, write_golden
from schemas.jsonform import to_json
from schemas.registry import current_schema, released_schemas, schema_version
from schemas.schemacheck import check_released

GOLDEN = list(golden_payloads())


def test_a_golden_payload_for_every_event_type_of_the_current_version() -> None:
    current = {g.event_type for g in GOLDEN if g.version == current_schema().version}
    assert current == {t.value for t in EventType if t is not EventType.UNKNOWN}


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: f"v{g.version}-{g.event_type}")
def test_golden_decodes_with_current_reader_to_its_json_form(golden) -> None:  # type: ignore[no-untyped-def]
    decoded = to_json(decode(golden.payload))
    for name, value in golden.json_form.items():
        assert decoded[name] == value


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: f"v{g.version}-{g.event_type}")
def test_golden_decodes_with_apache_avro(golden) -> None:  # type: ignore[no-untyped-def]
    """An independent implementation reads the same bytes to the same values."""
    writer = avro.schema.parse(json.dumps(schema_version(golden.version).source))
    reader = avro.io.DatumReader(writer, avro.schema.parse(json.dumps(current_schema().source)))
    datum = reader.read(avro.io.BinaryDecoder(io.BytesIO(golden.payload[HEADER_SIZE:])))
    expected = golden.json_form
    assert datum["event_id"] == expected["event_id"]
    assert datum["dossier_id"] == expected["dossier_id"]
    assert datum["event_type"] == expected["event_type"]
    assert datum["seq"] == expected["seq"]
    assert datum["hash"].hex() == expected["hash"]
    assert datum["occurred_at"].isoformat(timespec="microseconds").replace("+00:00", "") in _utc(
        expected["occurred_at"]
    )
    assert datum["requested_documents"] == expected["requested_documents"]
    assert datum["reason"] == expected["reason"]


def _utc(text: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).astimezone(UTC).isoformat(timespec="microseconds")


@pytest.mark.parametrize("event_type", [t for t in EventType if t is not EventType.UNKNOWN])
def test_encoder_reproduces_current_golden_bytes(event_type: EventType) -> None:
    golden = next(g for g in GOLDEN if g.version == current_schema().version and g.event_type == event_type.value)
    from schemas.codec import encode

    assert encode(sample_event(event_type)) == golden.payload


def test_released_chain_checks_clean() -> None:
    report = check_released()
    assert report.ok, report.problems
    assert report.payloads_checked == len(GOLDEN)


def test_schema_check_command_exit_codes() -> None:
    result = CliRunner().invoke(schema_group, ["check"])
    assert result.exit_code == 0, result.output
    assert "compatibility: FULL_TRANSITIVE holds" in result.output


def test_a_compatible_v2_passes_and_a_breaking_one_is_caught() -> None:
    v1 = dict(released_schemas()[0].source)
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "notified_via", "type": ["null", "string"], "default": None})
    v2["fields"][3]["type"]["symbols"].append("ResultHeld")
    assert full_transitive_problems([(1, v1), (2, v2)]) == []

    broken = copy.deepcopy(v1)
    broken["fields"].append({"name": "mandatory_new", "type": "string"})
    problems = full_transitive_problems([(1, v1), (2, broken)])
    assert problems == ["v2 reading v1: mandatory_new: reader field has no default and the writer does not write it"]


def test_write_golden_never_overwrites(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = write_golden(tmp_path)
    assert len(first) == 2 * (len(EventType) - 1)
    target = tmp_path / "FeePaid.bin"
    target.write_bytes(b"released")
    assert write_golden(tmp_path) == []
    assert target.read_bytes() == b"released"
