"""Numbered DDL migrations of the store (``schemas/clickhouse/NNNN_name.sql``).

Applied in order, each once, recorded in ``schema_migrations`` with the
SHA-256 of the file as applied. Released files are never edited: a file whose
checksum differs from the recorded one stops ``migrate`` with a message
(add a new numbered migration instead). Statements in a file are separated by
a ``;`` at the end of a line; every statement is idempotent (``IF NOT
EXISTS``), so a crash in the middle of a file is repaired by running again.

On a ClickHouse cluster (``DOSSIER_CLICKHOUSE_CLUSTER``) the same files are
applied through :mod:`schemas.clusterddl`, which derives each statement's
cluster variant (``Replicated*`` ``_local`` tables behind ``Distributed``
ones, ``ON CLUSTER``). A migration is recorded under the checksum of its
single-node file either way: the file is the release, the variant is derived.
A database laid out for one mode is refused in the other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from urllib.parse import unquote, urlsplit

from dossier_runtime.errors import StoreError
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from schemas import ddlfiles
from schemas.clusterddl import (
    WRITE_SETTINGS,
    ClusterDDLError,
    cluster_name,
    cluster_statements,
    released_layout,
    split_statements,
)


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
        return ddlfiles.filename(self.version, self.name)

    def statements(self) -> list[str]:
        """The statements of the file, comments kept, split at ``;`` ending a line."""
        return split_statements(self.sql)

    def ddl(self, cluster: str | None = None, database: str = "default") -> list[str]:
        """The statements to run: the file's on one node, their derived variant on a cluster."""
        if cluster is None:
            return self.statements()
        try:
            return cluster_statements(self.statements(), cluster=cluster, database=database, layout=released_layout())
        except ClusterDDLError as exc:
            raise MigrationError(f"{self.filename}: {exc}") from exc


def released_migrations() -> list[Migration]:
    """Every migration file shipped with the package, by version."""
    found = [Migration(version, name, sql) for version, name, sql in ddlfiles.shipped()]
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


def migrate(store: Store, *, dry_run: bool = False, cluster: str | None = None) -> list[MigrationStatus]:
    """Apply every migration not yet applied; report each one's state.

    ``cluster``: the ``remote_servers`` cluster the store's node belongs to
    (:func:`cluster_of`), None for one node. Raises :class:`MigrationError`
    (nothing applied) when an applied file was edited, or when the database
    is laid out for the other mode.
    """
    migrations = released_migrations()
    replicated = _replicated_layout(store)
    if cluster and replicated is False:
        raise MigrationError(
            f"the database {store.database} was migrated for a single node, so it cannot become a cluster "
            f"in place: migrate a new database with DOSSIER_CLICKHOUSE_CLUSTER={cluster} and copy the events into it"
        )
    bootstrap = migrations[0]
    if not dry_run:
        _apply(store, bootstrap, cluster)
    applied = _applied(store)
    edited = [m for m in migrations if m.version in applied and applied[m.version][0] != m.checksum]
    if edited:
        names = ", ".join(m.filename for m in edited)
        raise MigrationError(
            f"released migration(s) {names} changed after they were applied (checksum differs); "
            "never edit a released migration: restore the file and add a new numbered migration"
        )
    if not cluster and replicated and any(m.version not in applied for m in migrations):
        raise MigrationError(
            f"the database {store.database} is laid out for a ClickHouse cluster (replicated tables): "
            "set DOSSIER_CLICKHOUSE_CLUSTER to its cluster name to apply the new migrations"
        )
    report = []
    for migration in migrations:
        if migration.version in applied:
            report.append(MigrationStatus(migration.version, migration.name, "applied", applied[migration.version][1]))
            continue
        if not dry_run:
            _apply(store, migration, cluster)
            store.command(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ({v:UInt32}, {n:String}, {c:String})",
                {"v": migration.version, "n": migration.name, "c": migration.checksum},
            )
        report.append(MigrationStatus(migration.version, migration.name, "new" if dry_run else "applied now", None))
    return report


def _apply(store: Store, migration: Migration, cluster: str | None) -> None:
    for statement in migration.ddl(cluster, store.database):
        is_insert = statement.lstrip().upper().startswith("INSERT")
        store.command(statement, settings=WRITE_SETTINGS if cluster and is_insert else None)


def cluster_of(settings: Settings) -> str | None:
    """The configured ClickHouse cluster (None: one node); a sentence for the user when it cannot be."""
    try:
        return cluster_name(settings)
    except ClusterDDLError as exc:
        raise MigrationError(str(exc)) from exc


def database_of(settings: Settings) -> str:
    """The database of ``DOSSIER_CLICKHOUSE_URL`` (as the server backend reads it)."""
    return unquote(urlsplit(settings.clickhouse_url or "").path.strip("/")) or "default"


def script(cluster: str | None, database: str = "default") -> str:
    """Every migration's DDL for one mode, as an operator reviews or applies it by hand."""
    mode = f"cluster {cluster}, database {database}" if cluster else "a single node"
    chunks = [f"-- dossier-audit migrations for {mode}"]
    for migration in released_migrations():
        chunks.append(f"\n-- {migration.filename} (recorded with checksum {migration.checksum})")
        chunks.extend(f"{statement};" for statement in migration.ddl(cluster, database))
    return "\n".join(chunks) + "\n"


def deployed_cluster(store: Store) -> str | None:
    """The cluster the store's ``events`` table is distributed over; None on one node (or before migrating).

    For writers that must know where rows physically go (the sink: staging
    ``AS events_local``, no ``ATTACH PARTITION`` into a Distributed table).
    """
    engine = store.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    ).scalar()
    match = re.match(r"^Distributed\('([^']+)'", str(engine or ""))
    return match.group(1) if match else None


def _replicated_layout(store: Store) -> bool | None:
    """Whether the database was migrated for a cluster (None: not migrated yet)."""
    engine = store.query(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'"
    ).scalar()
    return None if engine is None else str(engine).startswith("Replicated")


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
