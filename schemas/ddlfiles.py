"""The store's migration files as this version ships them (``schemas/clickhouse/NNNN_name.sql``).

``consumers.migrations`` applies them; the inspectors' commands name the ones a store has not had.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

_FILE_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def shipped() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration file, by version (numbering is checked by the caller)."""
    found = []
    for entry in (resources.files("schemas") / "clickhouse").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def filename(version: int, name: str) -> str:
    """A migration's file name without its directory: ``0021_status_keeping_ends.sql``."""
    return f"{version:04d}_{name}.sql"
