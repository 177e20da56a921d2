"""The umbrella command and the schema commands, through click's runner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dossier_audit.cli import main
from schemas.registry import current_schema


def test_help_lists_the_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for group in ("schema", "calendar", "produce", "consume", "inspect", "demo"):
        assert f"  {group} " in result.output


def test_schema_list_json() -> None:
    result = CliRunner().invoke(main, ["schema", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[-1] == {
        "version": current_schema().version,
        "fingerprint": current_schema().fingerprint_hex,
        "file": f"schemas/avro/dossier_event.v{current_schema().version}.avsc",
        "fields": 47,
        "current": True,
    }
    assert rows[0]["fields"] == 46 and rows[0]["version"] == 1


def test_schema_fields_rejects_an_unknown_type() -> None:
    result = CliRunner().invoke(main, ["schema", "fields", "--type", "Teleported"])
    assert result.exit_code == 2
    assert "'Teleported' is not an event type" in result.output


def test_schema_show_unknown_version() -> None:
    result = CliRunner().invoke(main, ["schema", "show", "99"])
    assert result.exit_code == 2
    assert "no released schema version 99" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["schema", "list", "--colour"])
    assert result.exit_code == 2
    assert "No such option '--colour'" in result.output
