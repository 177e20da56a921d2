"""Numbered DDL migrations of the store (``schemas/clickhouse/NNNN_name.sql``).

Applied in order, each once, recorded in ``schema_migrations`` with the
SHA-256 of the file as applied. Released files are never edited: a file whose
checksum differs from the recorded one stops ``migrate`` with a message
(add a new numbered migration instead). Statements in a file are separated by
a ``;`` at the end of a line; every statement is idempotent (``IF NOT
EXISTS``), so a crash in the middle of a file is repaired by running again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from importlib import resources
from typing import Final

from dossier_runtime.errors import StoreError
from dossier_runtime.store import Store

_FILE_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(StoreError):
    """A released migration file was edited, or the numbering is broken."""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    def statements(self) -> list[str]:
        """The statements of the file, comments kept, split at ``;`` ending a line."""
        parts = re.split(r";[ \t]*(?:\n|$)", self.sql)
        return [p.strip() for p in parts if _has_code(p)]


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def released_migrations() -> list[Migration]:
    """Every migration file shipped with the package, by version."""
    found = []
    for entry in (resources.files("schemas") / "clickhouse").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration files must be numbered 0001.. without gaps or repeats, found {versions}")
    return found


@dataclasses.dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: str  # applied | new | edited
    applied_at: object | None

    def row(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def migrate(store: Store, *, dry_run: bool = False) -> list[MigrationStatus]:
    """Apply every migration not yet applied; report each one's state.

    Raises :class:`MigrationError` (nothing applied) when an applied file was edited.
    """
    migrations = released_migrations()
    bootstrap = migrations[0]
    if not dry_run:
        for statement in bootstrap.statements():
            store.command(statement)
    applied = _applied(store)
    edited = [m for m in migrations if m.version in applied and applied[m.version][0] != m.checksum]
    if edited:
        names = ", ".join(m.filename for m in edited)
        raise MigrationError(
            f"released migration(s) {names} changed after they were applied (checksum differs); "
            "never edit a released migration: restore the file and add a new numbered migration"
        )
    report = []
    for migration in migrations:
        if migration.version in applied:
            report.append(MigrationStatus(migration.version, migration.name, "applied", applied[migration.version][1]))
            continue
        if not dry_run:
            for statement in migration.statements():
                store.command(statement)
            store.command(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ({v:UInt32}, {n:String}, {c:String})",
                {"v": migration.version, "n": migration.name, "c": migration.checksum},
            )
        report.append(MigrationStatus(migration.version, migration.name, "new" if dry_run else "applied now", None))
    return report


def _applied(store: Store) -> dict[int, tuple[str, object]]:
    try:
        result = store.query("SELECT version, any(checksum), min(applied_at) FROM schema_migrations GROUP BY version")
    except StoreError:
        return {}
    return {int(v): (str(c), at) for v, c, at in result.rows}


def pending(store: Store) -> list[Migration]:
    """Migrations not applied yet (for a reader: is the store ready?)."""
    applied = _applied(store)
    return [m for m in released_migrations() if m.version not in applied]
