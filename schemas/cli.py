"""``dossier schema …`` (the event contract) and ``dossier calendar …`` (working time).

Commands parse options, call one library function and render the result.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from schemas.cli_calendar import calendar_group
from schemas.events import EVENT_FIELDS, EventType
from schemas.registry import current_schema, released_schemas, schema_version
from schemas.rendering import render
from schemas.schemacheck import check_released

__all__ = ["calendar_group", "schema_group"]

EXIT_FINDINGS = 3

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="Output format: a table for people, json/jsonl/csv for machines.",
)


@click.group("schema")
def schema_group() -> None:
    """The Avro contract of dossier events: released versions, compatibility, fields.

    \b
    Examples:
      dossier schema list
      dossier schema check
      dossier schema fields --type SupplementRequested
    """


@schema_group.command("list")
@format_option
def list_cmd(fmt: str) -> None:
    """Every released schema with its version and fingerprint.

    The fingerprint is the CRC-64-AVRO of the schema's parsing canonical form,
    as the 8 bytes after C3 01 in every single-object message.

    \b
    Example:
      dossier schema list --format json
    """
    current = current_schema().version
    rows = [
        {
            "version": s.version,
            "fingerprint": s.fingerprint_hex,
            "file": f"schemas/avro/{s.filename}",
            "fields": len(s.source["fields"]),
            "current": s.version == current,
        }
        for s in released_schemas()
    ]
    click.echo(render(rows, fmt))


@schema_group.command("check")
@format_option
def check_cmd(fmt: str) -> None:
    """Verify the compatibility chain of the released schemas (FULL_TRANSITIVE).

    Checks the Avro resolution rules between every pair of versions, decodes
    every golden payload of every version with every reader, and re-encodes the
    current version's golden payloads byte for byte. Exit code 3 when broken.

    \b
    Example:
      dossier schema check
    """
    report = check_released()
    if fmt == "table":
        versions = ", ".join(f"v{v}" for v in report.versions)
        click.echo(f"released schemas: {versions}")
        click.echo(f"golden payloads checked: {report.payloads_checked}")
        for problem in report.problems:
            click.echo(f"BROKEN: {problem}")
        click.echo(
            "compatibility: FULL_TRANSITIVE holds" if report.ok else f"compatibility: {len(report.problems)} problem(s)"
        )
    else:
        rows: list[dict[str, Any]] = [
            {
                "versions": list(report.versions),
                "payloads_checked": report.payloads_checked,
                "ok": report.ok,
                "problems": list(report.problems),
            }
        ]
        click.echo(render(rows, fmt))
    if not report.ok:
        sys.exit(EXIT_FINDINGS)


@schema_group.command("show")
@click.argument("version", type=int, required=False)
def show_cmd(version: int | None) -> None:
    """Print a released schema (.avsc); the current one by default.

    \b
    Example:
      dossier schema show 1
    """
    try:
        schema = schema_version(version) if version is not None else current_schema()
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="VERSION") from None
    click.echo(json.dumps(schema.source, ensure_ascii=False, indent=2))


@schema_group.command("fields")
@click.option("--type", "event_type", help="Only this event type (e.g. SupplementRequested).")
@format_option
def fields_cmd(event_type: str | None, fmt: str) -> None:
    """Which type-specific fields each event type requires and may carry.

    \b
    Example:
      dossier schema fields --type ApologyIssued
    """
    types: list[EventType] = [t for t in EventType if t is not EventType.UNKNOWN]
    if event_type is not None:
        try:
            types = [EventType(event_type)]
        except ValueError:
            names = ", ".join(t.value for t in types)
            raise click.BadParameter(
                f"{event_type!r} is not an event type; one of: {names}", param_hint="--type"
            ) from None
    rows = [
        {
            "event_type": t.value,
            "requires": " ".join(sorted(EVENT_FIELDS[t].required)),
            "may_carry": " ".join(sorted(EVENT_FIELDS[t].optional)),
        }
        for t in types
    ]
    click.echo(render(rows, fmt))
