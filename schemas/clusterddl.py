"""The ClickHouse cluster variant of the numbered migrations, derived from the single-node files.

The released ``schemas/clickhouse/NNNN_*.sql`` files describe one node. On a
cluster (``DOSSIER_CLICKHOUSE_CLUSTER``) each statement is rewritten here, so
a new migration needs no hand-written twin and the two layouts cannot drift:

* **Sharded by dossier**: a MergeTree-family or ``Null`` table with a
  ``dossier_id String`` column, and every target of a materialized view.
  ``T_local`` is created ``ON CLUSTER`` with the ``Replicated*`` engine
  (``/clickhouse/tables/{shard}/{database}/T_local``, ``{replica}``, the
  engine's own parameters kept), and ``T`` becomes
  ``Distributed(cluster, db, T_local, cityHash64(dossier_id))``. A dossier's
  whole history lives on one shard, so per-dossier work stays shard-local.
  A view target without ``dossier_id`` (``daily_counts``) gets no sharding
  key: only the shard-local views write it, ``T`` only reads.
* **Replicated to every node**: the other MergeTree-family tables
  (``schema_migrations``, ``dead_letters``, whose ``dossier_id`` may be NULL,
  and the catalogue). Same name, one Keeper path for the whole cluster
  (``/clickhouse/tables/all/{database}/T``): every node has every row, so
  joins with them stay local and every node knows which migrations ran.
* **Materialized views** are created on every node, read the shard's
  ``_local`` feed and write the shard's ``_local`` target (an insert into the
  ``Distributed`` feed reaches the views of the dossier's shard).
  **Plain views** read the ``Distributed`` tables.

Every name is qualified with the database, because an ``ON CLUSTER``
statement runs on the other nodes in their default database (ClickHouse
issues #6104, #39500): ``currentDatabase()`` and a bare ``AS t`` would be
resolved there. A statement this module cannot translate raises
:class:`ClusterDDLError` naming it, rather than guessing.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Final, Protocol

SHARDING_KEY: Final = "cityHash64(dossier_id)"
LOCAL_SUFFIX: Final = "_local"
SHARD_PATH: Final = "/clickhouse/tables/{shard}/{database}/"
ALL_NODES_PATH: Final = "/clickhouse/tables/all/{database}/"
REPLICA: Final = "{replica}"
#: Settings a writer on a cluster needs: a Distributed insert returns once every shard has its rows.
WRITE_SETTINGS: Final = {"distributed_foreground_insert": 1}
#: Settings of a query that joins a Distributed table with a table only this node has (a staging table):
#: the other shards get the local rows sent along (GLOBAL IN / GLOBAL JOIN) instead of looking them up.
LOCAL_JOIN_SETTINGS: Final = {"prefer_global_in_and_join": 1}

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"
_CLUSTER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_DATABASE_RE: Final = re.compile(rf"^{_NAME}$")
_MERGETREE_RE: Final = re.compile(r"^(|Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)MergeTree$")
_CREATE_TABLE_RE: Final = re.compile(rf"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})\s*\(", re.I)
_ENGINE_RE: Final = re.compile(rf"\s*ENGINE\s*=\s*({_NAME})\s*", re.I)
_MV_RE: Final = re.compile(
    rf"^CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})\s+TO\s+({_NAME})\s+AS\s+(.*)$", re.I | re.S
)
_VIEW_RE: Final = re.compile(rf"^CREATE\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})\s+AS\s+(.*)$", re.I | re.S)
_ALTER_RE: Final = re.compile(rf"^ALTER\s+TABLE\s+({_NAME})\s+(.*)$", re.I | re.S)
_MODIFY_QUERY_RE: Final = re.compile(r"^MODIFY\s+QUERY\s+(.*)$", re.I | re.S)
_DROP_RE: Final = re.compile(rf"^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?({_NAME})(\s+SYNC)?$", re.I)
_OPTIMIZE_RE: Final = re.compile(rf"^OPTIMIZE\s+TABLE\s+({_NAME})\s+FINAL$", re.I)
_COLUMN_ALTER_RE: Final = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
_NOT_COLUMN_ALTER_RE: Final = re.compile(
    r"\b(PROJECTION|INDEX|TTL|PARTITION|SETTING|ORDER\s+BY|CONSTRAINT|STATISTICS|UPDATE|DELETE)\b", re.I
)
_TABLE_REF_RE: Final = re.compile(rf"\b(FROM|JOIN)(\s+)({_NAME})\b(?!\s*[.(])", re.I)
_DOSSIER_COLUMN_RE: Final = re.compile(
    r"(?:^|,)\s*`?dossier_id`?\s+(?:String|LowCardinality\(String\))(?=\s|,|$)", re.M
)


class ClusterDDLError(ValueError):
    """A migration statement has no cluster variant here, or a cluster or database name is unusable."""


class ClusterConfig(Protocol):
    """What :func:`cluster_name` reads (``dossier_runtime.settings.Settings`` has it)."""

    @property
    def clickhouse_url(self) -> str | None: ...

    @property
    def clickhouse_cluster(self) -> str | None: ...


def cluster_name(settings: ClusterConfig) -> str | None:
    """The configured cluster, None for a single node; refuses a cluster on the embedded store."""
    name = settings.clickhouse_cluster
    if not name:
        return None
    if not settings.clickhouse_url:
        raise ClusterDDLError(
            "DOSSIER_CLICKHOUSE_CLUSTER needs a ClickHouse server, but the embedded store is one node: "
            "set DOSSIER_CLICKHOUSE_URL to a node of the cluster, or unset DOSSIER_CLICKHOUSE_CLUSTER"
        )
    return checked_cluster(name)


def checked_cluster(name: str) -> str:
    if not _CLUSTER_RE.match(name):
        raise ClusterDDLError(f"{name!r} is not a cluster name of remote_servers (letters, digits, _ . -)")
    return name


def local_table(name: str, cluster: str | None) -> str:
    """Where a table's rows physically are on the node a writer is connected to.

    ``events`` → ``events_local`` on a cluster (staging tables are created
    ``AS`` it, partitions attach to it); unchanged on one node and for tables
    replicated to every node.
    """
    if cluster is None:
        return name
    return released_layout().local(name)


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file, comments kept, split at a ``;`` ending a line."""
    parts = re.split(r";[ \t]*(?:\n|$)", sql)
    return [p.strip() for p in parts if strip_comments(p)]


def strip_comments(text: str) -> str:
    """The statement without ``--`` comments (whole lines, or after code outside quotes)."""
    lines = []
    for line in text.splitlines():
        cut = line.find("--")
        if cut >= 0 and "'" not in line[:cut]:
            line = line[:cut]
        if line.strip():
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each table of the migrations lives on a cluster."""

    #: sharded table → its Distributed sharding key (None: written only by shard-local views)
    sharded: Mapping[str, str | None]
    #: MergeTree-family tables kept whole on every node
    everywhere: frozenset[str]
    #: materialized view → the table it writes
    views: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def local(self, name: str) -> str:
        return name + LOCAL_SUFFIX if name in self.sharded else name


@dataclasses.dataclass(frozen=True)
class _Table:
    name: str
    columns: str  # "( … )", verbatim
    engine: str
    engine_args: str | None  # inside the parentheses, verbatim; None without parentheses
    rest: str  # PARTITION BY / ORDER BY / SETTINGS …, verbatim


def plan(statements: Iterable[str]) -> Layout:
    """The layout of the tables the statements create, in migration order."""
    texts = [strip_comments(s) for s in statements]
    view_targets = {m.group(2) for m in map(_MV_RE.match, texts) if m}
    sharded: dict[str, str | None] = {}
    everywhere: set[str] = set()
    for text in texts:
        # A dropped table keeps its place: the statements that created and dropped it are derived with it.
        if not _CREATE_TABLE_RE.match(text):
            continue
        table = _parse_table(text)
        keyed = bool(_DOSSIER_COLUMN_RE.search(table.columns[1:-1]))
        if table.engine == "Null" and not keyed:
            raise ClusterDDLError(f"{table.name}: a Null feed table needs a `dossier_id String` column to be sharded")
        sharded.pop(table.name, None)  # a table created again after a drop is placed by its new definition
        everywhere.discard(table.name)
        if table.engine == "Null" or keyed or table.name in view_targets:
            sharded[table.name] = SHARDING_KEY if keyed else None
        else:
            everywhere.add(table.name)
    views = {m.group(1): m.group(2) for m in map(_MV_RE.match, texts) if m}
    return Layout(sharded, frozenset(everywhere), views)


@functools.cache
def released_layout() -> Layout:
    """The layout of every migration shipped in ``schemas/clickhouse``."""
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in (resources.files("schemas") / "clickhouse").iterdir()
        if re.match(r"^\d{4}_[a-z0-9_]+\.sql$", entry.name)
    )
    return plan(s for _name, sql in files for s in split_statements(sql))


def cluster_statements(statements: Sequence[str], *, cluster: str, database: str, layout: Layout) -> list[str]:
    """The cluster variant of one migration's statements (single-node text in, cluster DDL out)."""
    checked_cluster(cluster)
    if not _DATABASE_RE.match(database):
        raise ClusterDDLError(f"database {database!r}: use a plain identifier for the dossier database")
    rewriter = _Rewriter(cluster, database, layout)
    out: list[str] = []
    for statement in statements:
        out.extend(rewriter.rewrite(strip_comments(statement)))
    return out


class _Rewriter:
    def __init__(self, cluster: str, database: str, layout: Layout) -> None:
        self.db = database
        self.on = f"ON CLUSTER '{cluster}'"
        self.cluster = cluster
        self.layout = layout

    def rewrite(self, text: str) -> list[str]:
        head = text.split(None, 2)
        kind = " ".join(head[:2]).upper()
        if kind == "CREATE TABLE":
            return self._table(_parse_table(text))
        if kind == "CREATE MATERIALIZED":
            return [self._materialized_view(text)]
        if kind == "CREATE VIEW":
            return [self._view(text)]
        if kind == "ALTER TABLE":
            return self._alter(text)
        if kind in ("DROP TABLE", "DROP VIEW"):
            return self._drop(text)
        if kind == "OPTIMIZE TABLE":
            return self._optimize(text)
        if head and head[0].upper() == "INSERT":
            return [text]  # runs once, on the node the migration runs on, through the Distributed tables
        raise ClusterDDLError(f"no cluster variant for this statement (extend schemas/clusterddl.py): {text[:80]}")

    def _q(self, name: str) -> str:
        return f"{self.db}.{name}"

    def _table(self, t: _Table) -> list[str]:
        if t.name in self.layout.everywhere:
            engine = _replicated(t, ALL_NODES_PATH + t.name)
            return [f"CREATE TABLE IF NOT EXISTS {self._q(t.name)} {self.on}\n{t.columns}\nENGINE = {engine}{t.rest}"]
        if t.name not in self.layout.sharded:
            raise ClusterDDLError(f"{t.name} is not in the layout of the released migrations")
        local = t.name + LOCAL_SUFFIX
        engine = "Null" if t.engine == "Null" else _replicated(t, SHARD_PATH + local)
        key = self.layout.sharded[t.name]
        args = ", ".join([f"'{self.cluster}'", f"'{self.db}'", f"'{local}'", *([key] if key else [])])
        return [
            f"CREATE TABLE IF NOT EXISTS {self._q(local)} {self.on}\n{t.columns}\nENGINE = {engine}{t.rest}",
            f"CREATE TABLE IF NOT EXISTS {self._q(t.name)} {self.on} AS {self._q(local)}\nENGINE = Distributed({args})",
        ]

    def _materialized_view(self, text: str) -> str:
        match = _MV_RE.match(text)
        if not match:
            raise ClusterDDLError(f"a materialized view needs `TO table` to have a cluster variant: {text[:80]}")
        name, target, select = match.groups()
        if target not in self.layout.sharded:
            raise ClusterDDLError(f"materialized view {name}: its target {target} is not a sharded table")
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self._q(name)} {self.on} "
            f"TO {self._q(self.layout.local(target))} AS\n{self._view_body(name, select)}"
        )

    def _view_body(self, name: str, select: str) -> str:
        """A materialized view's query on a shard: it reads the shard's ``_local`` tables."""
        sources = set(_table_refs(select))
        unsharded = sorted(s for s in sources if s not in self.layout.sharded)
        if unsharded or not sources:
            raise ClusterDDLError(f"materialized view {name} must read only sharded tables, not {unsharded}")
        return _rename_tables(select, lambda t: self._q(self.layout.local(t)))

    def _modify_query(self, name: str, actions: str) -> str:
        """``ALTER TABLE view MODIFY QUERY …``: the view's new query, in place on every node (no window without it)."""
        match = _MODIFY_QUERY_RE.match(actions)
        if not match:
            raise ClusterDDLError(f"materialized view {name}: only MODIFY QUERY has a cluster variant: {actions[:60]}")
        return f"ALTER TABLE {self._q(name)} {self.on} MODIFY QUERY\n{self._view_body(name, match.group(1))}"

    def _view(self, text: str) -> str:
        match = _VIEW_RE.match(text)
        if not match:
            raise ClusterDDLError(f"no cluster variant for this view: {text[:80]}")
        name, select = match.groups()
        body = _rename_tables(select, self._q)
        return f"CREATE VIEW IF NOT EXISTS {self._q(name)} {self.on} AS\n{body}"

    def _alter(self, text: str) -> list[str]:
        match = _ALTER_RE.match(text)
        assert match
        name, actions = match.groups()
        if name in self.layout.views:
            return [self._modify_query(name, actions)]
        if name in self.layout.everywhere:
            return [f"ALTER TABLE {self._q(name)} {self.on} {actions}"]
        if name not in self.layout.sharded:
            raise ClusterDDLError(f"ALTER TABLE {name}: not a table of the released migrations")
        local = f"ALTER TABLE {self._q(name + LOCAL_SUFFIX)} {self.on} {actions}"
        if _COLUMN_ALTER_RE.match(actions) and not _NOT_COLUMN_ALTER_RE.search(actions):
            return [local, f"ALTER TABLE {self._q(name)} {self.on} {actions}"]  # the Distributed table's columns too
        return [local]

    def _drop(self, text: str) -> list[str]:
        match = _DROP_RE.match(text)
        if not match:
            raise ClusterDDLError(f"no cluster variant for this DROP: {text[:80]}")
        kind, if_exists, name, sync = match.groups()
        tail = " SYNC" if sync else ""
        names = [name, name + LOCAL_SUFFIX] if name in self.layout.sharded else [name]
        return [f"DROP {kind.upper()} {if_exists or ''}{self._q(n)} {self.on}{tail}" for n in names]

    def _optimize(self, text: str) -> list[str]:
        """``OPTIMIZE TABLE t FINAL``: every replica merges its own parts (a sharded table's ``_local`` table)."""
        match = _OPTIMIZE_RE.match(text)
        if not match:
            raise ClusterDDLError(f"no cluster variant for this OPTIMIZE (only `OPTIMIZE TABLE t FINAL`): {text[:80]}")
        name = match.group(1)
        if name not in self.layout.sharded and name not in self.layout.everywhere:
            raise ClusterDDLError(f"OPTIMIZE TABLE {name}: not a table of the released migrations")
        return [f"OPTIMIZE TABLE {self._q(self.layout.local(name))} {self.on} FINAL"]


def _table_ref_matches(select: str) -> list[re.Match[str]]:
    """``FROM t`` / ``JOIN t`` of a query or subquery, not ``extract(day FROM x)`` inside a function."""
    found = []
    for match in _TABLE_REF_RE.finditer(select):
        depth, i = 0, match.start() - 1
        while i >= 0 and not (select[i] == "(" and depth == 0):
            depth += {")": 1, "(": -1}.get(select[i], 0)
            i -= 1
        if i < 0 or re.match(r"\(\s*(SELECT|WITH)\b", select[i:], re.I):
            found.append(match)
    return found


def _table_refs(select: str) -> list[str]:
    return [m.group(3) for m in _table_ref_matches(select)]


def _rename_tables(select: str, rename: Callable[[str], str]) -> str:
    out, last = [], 0
    for match in _table_ref_matches(select):
        out += [select[last : match.start(3)], rename(match.group(3))]
        last = match.end(3)
    return "".join([*out, select[last:]])


def _replicated(table: _Table, path: str) -> str:
    if not _MERGETREE_RE.match(table.engine):
        raise ClusterDDLError(f"{table.name}: engine {table.engine} has no replicated variant on a cluster")
    args = [f"'{path}'", f"'{REPLICA}'"]
    if table.engine_args and table.engine_args.strip():
        args.append(table.engine_args.strip())
    return f"Replicated{table.engine}({', '.join(args)})"


def _parse_table(text: str) -> _Table:
    match = _CREATE_TABLE_RE.match(text)
    if not match:
        raise ClusterDDLError(f"only `CREATE TABLE name (columns) ENGINE = …` has a cluster variant: {text[:80]}")
    open_at = match.end() - 1
    close_at = _closing(text, open_at)
    engine = _ENGINE_RE.match(text, close_at + 1)
    if not engine:
        raise ClusterDDLError(f"{match.group(1)}: ENGINE = … must follow the columns")
    after = engine.end()
    args = None
    if after < len(text) and text[after] == "(":
        end = _closing(text, after)
        args, after = text[after + 1 : end], end + 1
    rest = text[after:].rstrip()
    return _Table(
        match.group(1), text[open_at : close_at + 1], engine.group(1), args, "\n" + rest.lstrip() if rest else ""
    )


def _closing(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at`` (quotes respected)."""
    depth = 0
    quote = ""
    for i in range(open_at, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ClusterDDLError(f"unbalanced parentheses in: {text[:80]}")
