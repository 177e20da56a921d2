"""The released Avro schemas of the dossier event, and their fingerprints.

Released schemas live in ``schemas/avro/dossier_event.v<N>.avsc`` and are
never edited after release: a change is a new version. The highest version is
the current reader (and writer) schema; every older one must still decode
(``dossier schema check``).

A schema is identified on the wire by the CRC-64-AVRO fingerprint of its
Parsing Canonical Form (Avro specification, "Schema Fingerprints"). It is
shown as the 16 hex digits of the 8 bytes the single-object header carries
(little-endian), the form fastavro and the Apache avro package print.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from schemas.errors import UnknownFingerprintError

_EMPTY: Final = 0xC15D213AA4D7A795
_FILE_RE: Final = re.compile(r"^dossier_event\.v(\d+)\.avsc$")


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE: Final = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin CRC-64 fingerprint the Avro specification defines."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


@dataclasses.dataclass(frozen=True)
class ReleasedSchema:
    """One released version of the dossier-event schema."""

    version: int
    filename: str
    source: Mapping[str, Any]
    parsed: Any
    canonical_form: str
    fingerprint: int

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint_bytes.hex()

    @property
    def fingerprint_bytes(self) -> bytes:
        """The fingerprint as the single-object header carries it (little-endian)."""
        return self.fingerprint.to_bytes(8, "little")


def _load(filename: str, version: int) -> ReleasedSchema:
    text = (resources.files("schemas") / "avro" / filename).read_text(encoding="utf-8")
    source = json.loads(text)
    canonical = to_parsing_canonical_form(source)
    return ReleasedSchema(
        version=version,
        filename=filename,
        source=source,
        parsed=parse_schema(source),
        canonical_form=canonical,
        fingerprint=crc64_avro(canonical.encode("utf-8")),
    )


@functools.cache
def released_schemas() -> tuple[ReleasedSchema, ...]:
    """Every released schema, oldest first."""
    found = []
    for entry in (resources.files("schemas") / "avro").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(_load(entry.name, int(match.group(1))))
    found.sort(key=lambda s: s.version)
    versions = [s.version for s in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"released schema versions must be 1..N without gaps, found {versions}")
    return tuple(found)


def current_schema() -> ReleasedSchema:
    """The newest released schema: what this code writes and reads into."""
    return released_schemas()[-1]


@functools.cache
def _by_fingerprint() -> Mapping[bytes, ReleasedSchema]:
    return {s.fingerprint_bytes: s for s in released_schemas()}


def schema_for_fingerprint(fingerprint: bytes) -> ReleasedSchema:
    """The released schema with this (little-endian, 8-byte) fingerprint."""
    try:
        return _by_fingerprint()[fingerprint]
    except KeyError:
        raise UnknownFingerprintError(fingerprint) from None


def schema_version(version: int) -> ReleasedSchema:
    for schema in released_schemas():
        if schema.version == version:
            return schema
    known = ", ".join(str(s.version) for s in released_schemas())
    raise KeyError(f"no released schema version {version} (released: {known})")
