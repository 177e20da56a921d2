"""The cluster variant of the migrations: derived from every released file, parsed by ClickHouse, and run.

chDB has no ClickHouse Keeper, but ClickHouse's in-memory test keeper
(``<zookeeper><implementation>testkeeper</implementation></zookeeper>``) and a
``remote_servers`` config load into it, so the generated Replicated and
Distributed tables are created and used for real, on a one-node cluster. What
it cannot do is ``ON CLUSTER`` (no DDL worker in clickhouse-local): that
clause is checked by the parser, then stripped for the run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner

from consumers.cli_migrate import migrate_cmd
from consumers.migrations import MigrationError, deployed_cluster, migrate, released_migrations, script
from dossier_runtime import engineversion
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from schemas.clusterddl import (
    SHARDING_KEY,
    ClusterDDLError,
    cluster_name,
    cluster_statements,
    local_table,
    plan,
    released_layout,
    split_statements,
    strip_comments,
)
from tests.test_engine_matrix import ENGINES, engine_id

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "dossier"
DB = "dossier"


def _cluster_ddl() -> list[str]:
    return [s for m in released_migrations() for s in m.ddl(CLUSTER, DB)]


#: Tables and views a later migration drops: 0009 the first daily counts, 0018 their one-row-per-event successor.
_DROPPED: Final = (
    "daily_counts",
    "daily_counts_local",
    "daily_counts_mv",
    "daily_events",
    "daily_events_local",
    "daily_events_mv",
)


def _created(statements: list[str], kind: str = "TABLE") -> dict[str, str]:
    found = {}
    for statement in statements:
        match = re.match(rf"CREATE {kind} IF NOT EXISTS (?:{DB}\.)?(\w+)", statement)
        if match:
            found[match.group(1)] = statement
    return found


def test_the_layout_shards_by_dossier_and_replicates_the_rest_everywhere() -> None:
    layout = released_layout()
    expected = {"events": SHARDING_KEY, "events_feed": SHARDING_KEY, "dossier_state": SHARDING_KEY}
    expected["daily_counts"] = None  # no dossier_id (0004, dropped by 0009): only the shard-local view wrote it
    expected["daily_events"] = SHARDING_KEY  # 0009: one row per event, with its dossier
    assert {name: layout.sharded.get(name, "missing") for name in expected} == expected
    assert {"schema_migrations", "dead_letters", "units", "officials", "procedures"} <= layout.everywhere
    assert not set(layout.sharded) & layout.everywhere
    assert local_table("events", CLUSTER) == "events_local"
    assert local_table("events", None) == "events"
    assert local_table("units", CLUSTER) == "units"


def test_every_single_node_table_and_view_has_its_cluster_counterpart() -> None:
    single = [s for m in released_migrations() for s in m.statements()]
    cluster = _cluster_ddl()
    tables, cluster_tables = _created(single), _created(cluster)
    layout = released_layout()
    for name in tables:
        assert name in cluster_tables, name
        if name in layout.sharded:
            local = cluster_tables[f"{name}_local"]
            distributed = cluster_tables[name]
            key = layout.sharded[name]
            args = f"'{CLUSTER}', '{DB}', '{name}_local'" + (f", {key}" if key else "")
            assert f"ENGINE = Distributed({args})" in distributed
            assert f"AS {DB}.{name}_local" in distributed
            assert "ENGINE = Null" in local if name == "events_feed" else "Replicated" in local
        else:
            assert f"/clickhouse/tables/all/{{database}}/{name}'" in cluster_tables[name]
    for kind in ("MATERIALIZED VIEW", "VIEW"):
        assert set(_created(single, kind)) == set(_created(cluster, kind))
    assert all(f"ON CLUSTER '{CLUSTER}'" in s for s in cluster if not s.startswith("INSERT"))
    backfills = [strip_comments(s) for s in single if strip_comments(s).startswith("INSERT")]
    assert backfills == [s for s in cluster if s.startswith("INSERT")]  # once, through the Distributed tables


def test_engines_keep_their_parameters_and_views_point_at_the_right_tables() -> None:
    created = _created(_cluster_ddl())
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')\n"
        "PARTITION BY toYYYYMM(occurred_at)\nORDER BY (dossier_id, seq)"
    ) in created["events_local"]
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/dossier_state_local', '{replica}', seq)"
    ) in created["dossier_state_local"]
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/daily_counts_local', '{replica}')"
        in (created["daily_counts_local"])
    )
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/daily_events_local', '{replica}')"
        in (created["daily_events_local"])
    )
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/dead_letters', '{replica}', dead_at)"
        in (created["dead_letters"])
    )
    views = _created(_cluster_ddl(), "MATERIALIZED VIEW")
    pairs = ("dossier_state_mv", "dossier_state_local"), ("daily_counts_mv", "daily_counts_local")
    for name, target in (*pairs, ("daily_events_mv", "daily_events_local")):
        assert f"TO {DB}.{target} AS" in views[name]
        assert f"FROM {DB}.events_feed_local" in views[name]
        assert "FROM events_feed" not in views[name]
    plain = _created(_cluster_ddl(), "VIEW")["daily_counts_view"]  # 0018's, over the Distributed table
    assert f"FROM {DB}.events\n" in plain
    dropped = [s for s in _cluster_ddl() if s.startswith("DROP TABLE")]
    for table in ("daily_counts", "daily_events"):  # 0009's and 0018's, both halves of each
        assert f"DROP TABLE IF EXISTS {DB}.{table} ON CLUSTER '{CLUSTER}'" in dropped
        assert f"DROP TABLE IF EXISTS {DB}.{table}_local ON CLUSTER '{CLUSTER}'" in dropped


def test_clickhouse_parses_every_generated_statement(tmp_path: Path) -> None:
    statements = _cluster_ddl()
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        for statement in statements:
            formatted = store.query("SELECT formatQuery({q:String})", {"q": statement}).scalar()
            assert statement.startswith("INSERT") or f"ON CLUSTER {CLUSTER}" in formatted, statement[:60]
        with pytest.raises(Exception, match="Syntax error"):
            store.query("SELECT formatQuery({q:String})", {"q": "CREATE TABLE x ON CLUSTER"})


def test_a_future_migration_is_derived_too() -> None:
    layout = released_layout()
    derive = lambda sql: cluster_statements(split_statements(sql), cluster=CLUSTER, database=DB, layout=layout)  # noqa: E731
    assert derive("ALTER TABLE events ADD COLUMN IF NOT EXISTS note Nullable(String);") == [
        f"ALTER TABLE {DB}.events_local ON CLUSTER '{CLUSTER}' ADD COLUMN IF NOT EXISTS note Nullable(String)",
        f"ALTER TABLE {DB}.events ON CLUSTER '{CLUSTER}' ADD COLUMN IF NOT EXISTS note Nullable(String)",
    ]
    assert derive("ALTER TABLE events ADD PROJECTION p (SELECT unit_code, count() GROUP BY unit_code);") == [
        f"ALTER TABLE {DB}.events_local ON CLUSTER '{CLUSTER}' ADD PROJECTION p "
        "(SELECT unit_code, count() GROUP BY unit_code)"
    ]
    assert derive("ALTER TABLE units ADD COLUMN note String -- why\n;") == [
        f"ALTER TABLE {DB}.units ON CLUSTER '{CLUSTER}' ADD COLUMN note String"
    ]
    assert derive("DROP VIEW IF EXISTS daily_counts_view;") == [
        f"DROP VIEW IF EXISTS {DB}.daily_counts_view ON CLUSTER '{CLUSTER}'"
    ]
    assert derive("ALTER TABLE dossier_state_mv MODIFY QUERY SELECT dossier_id FROM events_feed;") == [
        f"ALTER TABLE {DB}.dossier_state_mv ON CLUSTER '{CLUSTER}' MODIFY QUERY\n"
        f"SELECT dossier_id FROM {DB}.events_feed_local"
    ]
    # Each replica merges its own parts: the local table of a sharded one, the table replicated everywhere.
    assert derive("OPTIMIZE TABLE dossier_facts FINAL;") == [
        f"OPTIMIZE TABLE {DB}.dossier_facts_local ON CLUSTER '{CLUSTER}' FINAL"
    ]
    assert derive("OPTIMIZE TABLE units FINAL;") == [f"OPTIMIZE TABLE {DB}.units ON CLUSTER '{CLUSTER}' FINAL"]
    with pytest.raises(ClusterDDLError, match="only MODIFY QUERY"):
        derive("ALTER TABLE dossier_state_mv MODIFY COMMENT 'x';")
    view = derive("CREATE VIEW IF NOT EXISTS v AS SELECT extract(YEAR FROM occurred_at) AS y FROM events;")[0]
    assert f"extract(YEAR FROM occurred_at) AS y FROM {DB}.events" in view


def test_a_new_table_is_classified_by_its_columns_and_views() -> None:
    sql = """
CREATE TABLE IF NOT EXISTS findings (rule String, dossier_id String DEFAULT '')
ENGINE = ReplacingMergeTree ORDER BY dossier_id;
CREATE TABLE IF NOT EXISTS rule_runs (rule String, dossier_ids Array(String)) ENGINE = MergeTree ORDER BY rule;
CREATE TABLE IF NOT EXISTS per_rule (rule String, n UInt64) ENGINE = SummingMergeTree(n) ORDER BY rule;
CREATE MATERIALIZED VIEW IF NOT EXISTS per_rule_mv TO per_rule AS SELECT rule, count() AS n FROM findings GROUP BY rule;
"""
    layout = plan(split_statements(sql))
    assert dict(layout.sharded) == {"findings": SHARDING_KEY, "per_rule": None}
    assert layout.everywhere == {"rule_runs"}
    out = cluster_statements(split_statements(sql), cluster=CLUSTER, database=DB, layout=layout)
    assert (
        "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/per_rule_local', '{replica}', n)" in out[3]
    )
    assert f"TO {DB}.per_rule_local AS\nSELECT rule, count() AS n FROM {DB}.findings_local GROUP" in out[5]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE TABLE t (a Int32) ENGINE = Memory;", "engine Memory has no replicated variant"),
        ("CREATE TABLE t AS events ENGINE = MergeTree ORDER BY a;", "only `CREATE TABLE name"),
        ("CREATE MATERIALIZED VIEW m AS SELECT 1;", "needs `TO table`"),
        ("CREATE MATERIALIZED VIEW m TO events AS SELECT * FROM units;", "must read only sharded tables"),
        ("OPTIMIZE TABLE events DEDUPLICATE;", "no cluster variant"),
        ("OPTIMIZE TABLE nowhere FINAL;", "not a table of the released migrations"),
        ("ALTER TABLE nowhere ADD COLUMN a Int32;", "not a table of the released migrations"),
    ],
)
def test_what_has_no_cluster_variant_is_refused_by_name(sql: str, message: str) -> None:
    with pytest.raises(ClusterDDLError, match=re.escape(message)):
        statements = split_statements(sql)
        cluster_statements(statements, cluster=CLUSTER, database=DB, layout=plan([*_single(), *statements]))


def _single() -> list[str]:
    return [s for m in released_migrations() for s in m.statements()]


def test_cluster_names_and_the_embedded_store() -> None:
    assert cluster_name(Settings()) is None
    assert cluster_name(Settings(clickhouse_url="http://h:8123/db", clickhouse_cluster="dossier")) == "dossier"
    with pytest.raises(ClusterDDLError, match=r"^DOSSIER_CLICKHOUSE_CLUSTER needs a ClickHouse server.*$"):
        cluster_name(Settings(clickhouse_cluster="dossier"))
    with pytest.raises(ClusterDDLError, match="not a cluster name"):
        cluster_name(Settings(clickhouse_url="http://h:8123/db", clickhouse_cluster="x'; DROP"))
    with pytest.raises(ClusterDDLError, match="plain identifier"):
        cluster_statements([], cluster=CLUSTER, database="a-b", layout=released_layout())


def test_migrate_command_prints_the_ddl_of_the_configured_mode(tmp_path: Path) -> None:
    runner = CliRunner()
    single = runner.invoke(migrate_cmd, ["--print-sql"], obj=Settings(data_dir=tmp_path))
    assert single.exit_code == 0
    assert single.output == script(None)
    assert "ENGINE = MergeTree\nPARTITION BY toYYYYMM(occurred_at)" in single.output
    assert not (tmp_path / "store").exists()  # printing connects to nothing

    server = Settings(clickhouse_url="http://u:p@ch-s1-r1:8123/audit")
    clustered = runner.invoke(migrate_cmd, ["--print-sql"], obj=server, env={"DOSSIER_CLICKHOUSE_CLUSTER": "dossier"})
    assert clustered.exit_code == 0, clustered.output
    assert clustered.output.startswith("-- dossier-audit migrations for cluster dossier, database audit\n")
    assert "ENGINE = Distributed('dossier', 'audit', 'events_local', cityHash64(dossier_id));" in clustered.output

    embedded = runner.invoke(migrate_cmd, ["--cluster", "dossier"], obj=Settings(data_dir=tmp_path))
    assert embedded.exit_code == 1
    assert "DOSSIER_CLICKHOUSE_CLUSTER needs a ClickHouse server" in embedded.output
    assert "Traceback" not in embedded.output


def test_a_single_node_database_is_not_migrated_as_a_cluster(tmp_path: Path) -> None:
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        assert deployed_cluster(store) is None
        with pytest.raises(MigrationError, match="was migrated for a single node"):
            migrate(store, cluster=CLUSTER)


_CONFIG = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <remote_servers><dossier><shard><internal_replication>true</internal_replication>
    <replica><host>localhost</host><port>9000</port></replica>
  </shard></dossier></remote_servers>
  <macros><shard>01</shard><replica>ch-s1-r1</replica></macros>
</clickhouse>
"""

_RUN = textwrap.dedent(
    """
    import json, os, re, sys
    from pathlib import Path
    from consumers.migrations import deployed_cluster, released_migrations
    from dossier_runtime.store import Store
    from dossier_runtime.storebackends import ChdbBackend
    from schemas.clusterddl import LOCAL_JOIN_SETTINGS, WRITE_SETTINGS, local_table

    backend = ChdbBackend(Path(sys.argv[1] + "?config-file=" + sys.argv[2]), "dossier", readonly=False)
    store = Store(backend, role="writer", location="one-node test cluster")
    out = {}

    read_only = set()

    def apply(database, replicated):
        for m in released_migrations():
            for statement in m.ddl("dossier", database):
                statement = statement.replace(" ON CLUSTER 'dossier'", "")
                if not replicated:
                    statement = re.sub(r"Replicated(\\w*MergeTree)\\('[^']*', '[^']*'(?:, )?", r"\\1(", statement)
                altered = re.match(r"(?:ALTER|OPTIMIZE) TABLE (\\S+)", statement)
                if replicated and altered and altered.group(1) in read_only:
                    out["readonly_alters"].append(statement)  # builds on an ALTER the test keeper refused
                    continue
                inserted = re.match(r"INSERT INTO (\\w+)", statement)
                if replicated and inserted and f"{database}.{inserted.group(1)}_local" in read_only:
                    out.setdefault("readonly_inserts", []).append(statement)  # into the columns such an ALTER adds
                    continue
                try:
                    store.command(statement)
                except Exception as exc:  # an ALTER (an OPTIMIZE) of a replicated table needs a writable Keeper session
                    if not (replicated and altered and "TABLE_IS_READ_ONLY" in str(exc)):
                        raise
                    out.setdefault("readonly_alters", []).append(statement)
                    read_only.add(altered.group(1))

    try:
        # 1. The DDL exactly as generated (ON CLUSTER aside): replicated tables, Keeper paths, Distributed tables.
        apply("dossier", True)
        out["tables"] = dict(store.query(
            "SELECT name, engine FROM system.tables WHERE database = 'dossier' ORDER BY name").rows)
        out["replicas"] = [list(r) for r in store.query(
            "SELECT table, zookeeper_path, replica_name FROM system.replicas ORDER BY table").rows]
        out["deployed_cluster"] = deployed_cluster(store)
        out["empty"] = store.query("SELECT count() FROM events").scalar()
        # 2. chDB's test keeper leaves replicas read-only, so the data path runs on the same DDL without
        #    replication: inserts through the Distributed tables, the shard-local views, a writer's staging.
        store.command("CREATE DATABASE plain")
        store.command("USE plain")
        apply("plain", False)
        cols = "event_id, dossier_id, seq, event_type, occurred_at, recorded_at, unit_code, _topic, _partition, _offset"
        rows = ("SELECT toString(number), concat('D', toString(number % 3)), intDiv(number, 3), 'DossierReceived', "
                "toDateTime64('2024-03-01 08:00:00', 6, 'UTC') + number, now64(6), 'U1', 't', 0, number "
                "FROM numbers(9)")
        staging = "_staging_0123456789ab"
        store.command(f"CREATE TABLE {staging} AS {local_table('events', 'dossier')} ENGINE = Memory")
        store.command(f"INSERT INTO {staging} ({cols}) {rows}")
        overlap = (f"SELECT count() FROM events WHERE dossier_id IN (SELECT dossier_id FROM {staging}) "
                   f"AND (dossier_id, seq) IN (SELECT dossier_id, seq FROM {staging})")
        out["overlap_before"] = store.query(overlap, settings=LOCAL_JOIN_SETTINGS).scalar()
        feed = "event_id, dossier_id, seq, event_type, status, occurred_at, recorded_at, unit_code"
        store.command(f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM {staging}", settings=WRITE_SETTINGS)
        store.command(f"INSERT INTO events SELECT * FROM {staging}", settings=WRITE_SETTINGS)
        out["overlap_after"] = store.query(overlap, settings=LOCAL_JOIN_SETTINGS).scalar()
        behind = (f"SELECT count() FROM {staging} AS b INNER JOIN (SELECT dossier_id, max(seq) AS stored_seq "
                  f"FROM dossier_state WHERE dossier_id IN (SELECT dossier_id FROM {staging}) GROUP BY dossier_id) "
                  "AS st USING dossier_id WHERE b.seq <= st.stored_seq")
        out["behind"] = store.query(behind, settings=LOCAL_JOIN_SETTINGS).scalar()
        out["events"] = store.query("SELECT count() FROM events").scalar()
        out["events_local"] = store.query("SELECT count() FROM events_local").scalar()
        out["state"] = [list(r) for r in store.query(
            "SELECT dossier_id, seq FROM dossier_state FINAL ORDER BY dossier_id").rows]
        out["daily"] = store.query("SELECT sum(events) FROM daily_counts_view").scalar()
    except Exception as exc:
        out["error"] = repr(exc)
    print(json.dumps(out, default=str))
    sys.stdout.flush()
    os._exit(0)  # chDB with the test keeper does not close cleanly
    """
)


def test_the_cluster_ddl_runs_on_chdb_with_a_test_keeper(tmp_path: Path) -> None:
    config = tmp_path / "cluster.xml"
    config.write_text(_CONFIG, encoding="utf-8")
    (tmp_path / "data").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(tmp_path / "data"), str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in out, out["error"]
    tables = out["tables"]
    for name in ("events", "events_feed", "dossier_state", "dossier_facts"):
        assert tables[name] == "Distributed"
    assert not set(_DROPPED) & set(tables)
    assert tables["events_local"] == "ReplicatedMergeTree"
    assert tables["events_feed_local"] == "Null"
    assert tables["dossier_state_local"] == "ReplicatedReplacingMergeTree"
    assert tables["dossier_facts_local"] == "ReplicatedAggregatingMergeTree"
    for name in ("schema_migrations", "dead_letters", "units", "officials", "procedures"):
        assert tables[name].startswith("Replicated"), name
    assert {"dossier_state_mv", "dossier_facts_mv", "daily_counts_view"} <= set(tables)
    replicas = {table: (path, replica) for table, path, replica in out["replicas"]}
    assert replicas["events_local"] == ("/clickhouse/tables/01/dossier/events_local", "ch-s1-r1")
    assert replicas["units"] == ("/clickhouse/tables/all/dossier/units", "ch-s1-r1")
    assert out["deployed_cluster"] == CLUSTER
    for statement in out.get("readonly_alters", []):  # run in the database without replication instead
        altered = re.match(rf"(?:ALTER|OPTIMIZE) TABLE {DB}\.(\w+) ", statement)
        assert altered, statement
        assert altered.group(1) in _DROPPED or out["tables"][altered.group(1)].startswith("Replicated"), statement
    assert out["empty"] == 0
    assert (out["overlap_before"], out["overlap_after"], out["behind"]) == (0, 9, 9)
    assert out["events"] == out["events_local"] == 9
    assert out["state"] == [["D0", 2], ["D1", 2], ["D2", 2]]
    assert out["daily"] == 9


_RUN_RAW = textwrap.dedent(
    """
    import json, os, sys
    import chdb

    conn = chdb.connect(sys.argv[1] + "?config-file=" + sys.argv[2])
    out = {"version": str(conn.query("SELECT version()", "TabSeparated")).strip(), "ran": 0, "readonly_alters": []}
    conn.query("CREATE DATABASE IF NOT EXISTS dossier")
    conn.query("USE dossier")
    read_only = set()
    for statement in json.loads(open(sys.argv[3], encoding="utf-8").read()):
        statement = statement.replace(" ON CLUSTER 'dossier'", "")
        altered = statement.split()[2] if statement.startswith(("ALTER TABLE", "OPTIMIZE TABLE")) else None
        if altered in read_only:  # builds on an ALTER the test keeper refused
            out["readonly_alters"].append(statement)
            continue
        inserted = statement.split()[2] if statement.startswith("INSERT INTO") else None
        if inserted and f"dossier.{inserted}_local" in read_only:  # into the columns such an ALTER adds
            out.setdefault("readonly_inserts", []).append(statement)
            continue
        try:
            conn.query(statement)
            out["ran"] += 1
        except Exception as exc:  # an ALTER of a replicated table needs a writable Keeper session
            if altered and "TABLE_IS_READ_ONLY" in str(exc):
                out["readonly_alters"].append(statement)
                read_only.add(altered)
                continue
            out["error"] = statement[:300] + ": " + str(exc)[:1500]
            break
    tables = conn.query("SELECT name, engine FROM system.tables WHERE database = 'dossier'", "JSONCompact")
    out["tables"] = dict(json.loads(str(tables))["data"])
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # chDB with the test keeper does not close cleanly
    """
)


@pytest.mark.parametrize("python", ENGINES, ids=engine_id)
def test_every_generated_statement_runs_on_each_engines_one_node_cluster(python: str, tmp_path: Path) -> None:
    """Every statement of every released migration's cluster variant, on each engine of test_engine_matrix."""
    statements = _cluster_ddl()
    (tmp_path / "ddl.json").write_text(json.dumps(statements), encoding="utf-8")
    (tmp_path / "cluster.xml").write_text(_CONFIG, encoding="utf-8")
    (tmp_path / "data").mkdir()
    args = [str(tmp_path / "data"), str(tmp_path / "cluster.xml"), str(tmp_path / "ddl.json")]
    done = subprocess.run(
        [python, "-c", _RUN_RAW, *args], capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert engineversion.supported(out["version"]), out["version"]
    assert "error" not in out, out["error"]
    assert out["ran"] + len(out["readonly_alters"]) + len(out.get("readonly_inserts", [])) == len(statements)
    for statement in out.get("readonly_inserts", []):
        assert statement.startswith("INSERT INTO dossier_facts "), statement
    for statement in out["readonly_alters"]:
        altered = re.match(rf"(?:ALTER|OPTIMIZE) TABLE {DB}\.(\w+) ", statement)
        assert altered, statement
        assert altered.group(1) in _DROPPED or out["tables"][altered.group(1)].startswith("Replicated"), statement
    tables = out["tables"]
    assert {tables[n] for n in ("events", "events_feed", "dossier_state", "dossier_facts")} == {"Distributed"}
    assert tables["events_local"] == "ReplicatedMergeTree" and tables["units"] == "ReplicatedReplacingMergeTree"
    assert {"dossier_state_mv", "dossier_facts_mv", "daily_counts_view"} <= set(tables)
    assert not set(_DROPPED) & set(tables)
