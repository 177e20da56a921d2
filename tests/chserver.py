"""ClickHouse's HTTP interface served by the real ClickHouse engine (chDB), to test server mode without a server.

What it is: a small ``ThreadingHTTPServer`` in its own process (``python -m
tests.chserver``) on a free loopback port, owning its own chDB data directory
(chDB admits one process per directory). It answers the part of ClickHouse's
HTTP protocol that clickhouse-connect uses as ``ServerBackend`` uses it; every
statement runs in the real ClickHouse engine (chDB 4.4 = ClickHouse 26.9), so
SQL, types, formats, parameters, settings, errors and table engines are
ClickHouse's own, not imitated. No PyPI package ships a ClickHouse server
binary (``clickhousectl`` downloads one from builds.clickhouse.com at run time,
which this machine cannot reach), hence this shim.

What it cannot show: replication, several server nodes or a cluster
(``ON CLUSTER``, Keeper, ``Distributed``), a server's own concurrency (the shim
runs one statement at a time: chDB holds Python's GIL while a statement runs),
streamed responses (an answer is computed whole, then sent; so a session is
free again as soon as the answer is sent, where a server holds it until the
client has read everything, and an error never comes after the answer
started, where a server appends its exception to a 200 body), compression on
the wire, TLS, users and grants beyond one user/password, and a server
restart's effect on sessions. The server's time zone is chosen at start
(``start(timezone=…)``), as a server's ``<timezone>`` is. The process exits
with the process that started it.

Protocol served:

* ``GET /ping`` → ``Ok.``
* queries by ``GET``/``POST`` on ``/``: the SQL is the ``query`` URL parameter,
  followed by the body unless the statement is an ``INSERT … FORMAT X`` whose
  body is its data; or the body alone; or ``multipart/form-data`` fields
  ``query`` and ``param_*`` (clickhouse-connect switches to a form when bound
  values pass 4 KiB).
* ``database``, ``param_<name>`` (server-side ``{name:Type}`` parameters, in
  ClickHouse text form), ``default_format`` or the ``X-ClickHouse-Format``
  header (else TabSeparated; a ``FORMAT`` clause wins: chDB honours it,
  Native and ArrowStream included).
* Settings as URL parameters: applied with ``SET`` on the request's session
  for that request only (a setting the previous request of the session had and
  this one has not is ``SET … = DEFAULT``; except ``readonly``, which a
  read-only session cannot lift: clickhouse-connect sends it with every request
  of a read-only client anyway); unknown ones fail as on a server
  (``UNKNOWN_SETTING``). Transport parameters, read and ignored, never sent to
  the engine: ``session_id`` (used: one chDB session per id, a concurrent
  request on a busy session gets ``SESSION_IS_LOCKED``; an idle session is
  dropped after 10 minutes, whatever ``session_timeout`` says), ``session_timeout``,
  ``session_check``, ``query_id`` (echoed), ``quota_key``, ``compress``,
  ``decompress``, ``buffer_size``, ``wait_end_of_query`` (answers are always
  whole), ``client_protocol_version`` (ignored, so clickhouse-connect's
  protocol probe fails and it uses protocol 0, as with a proxy), ``role``,
  ``close_session``, ``stacktrace``, ``user``, ``password``.
  ``enable_http_compression``, ``send_progress_in_http_headers``,
  ``http_headers_progress_interval_ms`` and
  ``cancel_http_readonly_queries_on_client_close`` are real settings chDB
  knows: they are SET and have no effect (nothing is compressed or streamed).
* Errors: HTTP 4xx/5xx, body ``Code: N. DB::Exception: … (NAME) (version …)``
  as ClickHouse wrote it, header ``X-ClickHouse-Exception-Code: N``.
* Basic auth (or ``X-ClickHouse-User``/``X-ClickHouse-Key``, or ``user`` and
  ``password`` parameters) checked against the one configured user:
  ``AUTHENTICATION_FAILED`` (516) otherwise.
* ``INSERT`` with a body (chDB has no stdin):

  - ``INSERT INTO t (cols) FORMAT X`` → chDB's streaming insert
    (``send_insert``), the bytes as sent; chDB before 26.7 has none: the
    body is spooled to a file and inserted with ``INSERT INTO t (cols)
    SELECT * FROM file(…, 'X')`` (typed by the table's columns);
  - ``INSERT INTO t (cols) SELECT … FROM input(S) … FORMAT X`` → the body is
    spooled to a file and the statement rewritten: the ``FORMAT X`` clause is
    dropped and ``input(`` becomes ``file({_chserver_body:String}, 'X', ``,
    run with ``max_threads = 1`` (``input()`` is one stream on a server, so
    ``rowNumberInAllBlocks()`` follows the data's order; it must here too).

Use from tests: :func:`start` / :class:`ChServer` (``url(database)``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

TRANSPORT: Final = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "close_session",
        "stacktrace",
    }
)
#: HTTP status of some exception codes (ClickHouse's own mapping, in part); the rest are 500.
STATUS: Final = {62: 400, 36: 400, 43: 400, 47: 404, 60: 404, 81: 404, 115: 400, 164: 403, 373: 409, 516: 401}
RESULT_KEYWORDS: Final = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "(")
_FORMAT_AT_END: Final = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_INSERT_WITH_DATA: Final = re.compile(r"^(\s*INSERT\b.*?\bFORMAT\s+[A-Za-z0-9_]+)[ \t]*\r?\n?(.*)$", re.S | re.I)
_INPUT_CALL: Final = re.compile(r"\binput\s*\(", re.IGNORECASE)
_CODE: Final = re.compile(r"Code: (\d+)\.")
_COMMENTS: Final = re.compile(r"^(\s+|--[^\n]*\n|/\*.*?\*/)+", re.S)


class ShimError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def _engine_error(exc: Exception) -> ShimError:
    text = str(exc).strip()
    match = _CODE.search(text)
    if match:
        return ShimError(int(match.group(1)), text[match.start() :])
    return ShimError(1002, f"Code: 1002. DB::Exception: {text} (UNKNOWN_EXCEPTION)")


class _Session:
    """One chDB session (a connection handle on the shared engine), its database and applied settings."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.busy = threading.Lock()
        self.database: str | None = None
        self.applied: dict[str, str] = {}
        self.used = time.monotonic()


class Engine:
    """The chDB engine of one data directory and its sessions."""

    def __init__(self, path: Path, databases: list[str]) -> None:
        import chdb

        self._chdb = chdb
        self.path = path
        self.spool = path / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.base = chdb.connect(str(path))  # type: ignore[no-untyped-call]  # the engine, up while the server is
        self.run_lock = threading.Lock()  # one statement at a time (chDB holds the GIL anyway)
        self.sessions: dict[str, _Session] = {}
        self.sessions_lock = threading.Lock()
        for name in databases:
            self.base.query(f"CREATE DATABASE IF NOT EXISTS `{name}`", "TabSeparated")
        version, tz = bytes(self.base.query("SELECT version(), timezone()", "TabSeparated").bytes()).decode().split()
        self.version, self.timezone = version, tz

    def _new_session(self) -> _Session:
        return _Session(self._chdb.connect(str(self.path)))  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def session(self, session_id: str | None) -> Iterator[_Session]:
        if session_id is None:
            temporary = self._new_session()
            try:
                yield temporary
            finally:
                temporary.conn.close()
            return
        with self.sessions_lock:
            self._expire()
            current = self.sessions.get(session_id)
            if current is None:
                current = self.sessions[session_id] = self._new_session()
        if not current.busy.acquire(blocking=False):
            raise ShimError(
                373,
                f"Code: 373. DB::Exception: Session {session_id} is locked by a concurrent client. (SESSION_IS_LOCKED)",
            )
        try:
            yield current
        finally:
            current.used = time.monotonic()
            current.busy.release()

    def _expire(self, idle_s: float = 600) -> None:
        now = time.monotonic()
        for key, value in list(self.sessions.items()):
            if now - value.used > idle_s and not value.busy.locked():
                value.conn.close()
                del self.sessions[key]

    def _raw(self, session: _Session, sql: str, fmt: str = "TabSeparated", params: dict[str, str] | None = None) -> Any:
        try:
            return session.conn.query(sql, fmt, params=params or None)
        except Exception as exc:  # chDB raises RuntimeError/ChdbError with ClickHouse's text
            raise _engine_error(exc) from exc

    def _prepare(self, session: _Session, database: str | None, settings: dict[str, str]) -> None:
        if database and database != session.database:
            self._raw(session, f"USE `{database.replace('`', '')}`")
            session.database = database
        changed = {k: v for k, v in settings.items() if session.applied.get(k) != v}
        dropped = [k for k in session.applied if k not in settings and k != "readonly"]
        if dropped:
            self._raw(session, "SET " + ", ".join(f"{k} = DEFAULT" for k in dropped))
            for key in dropped:
                del session.applied[key]
        if changed:
            self._raw(session, "SET " + ", ".join(f"{k} = {_literal(v)}" for k, v in changed.items()))
            session.applied.update(changed)

    def execute(self, request: Request) -> tuple[bytes, dict[str, str]]:
        with self.session(request.session_id) as session, self.run_lock:
            self._prepare(session, request.database, request.settings)
            headers = {"X-ClickHouse-Timezone": self.timezone}
            if request.data is not None:
                written = self._insert(session, request)
                headers["X-ClickHouse-Summary"] = json.dumps({"written_rows": str(written)})
                return b"", headers
            sql = request.sql
            fmt_match = _FORMAT_AT_END.search(sql)
            fmt = fmt_match.group(1) if fmt_match else request.default_format
            result = self._raw(session, sql, fmt, request.params)
            if _COMMENTS.sub("", sql).upper().startswith(RESULT_KEYWORDS):
                headers["X-ClickHouse-Format"] = fmt
            read_rows = getattr(result, "rows_read", None)
            if callable(read_rows):
                headers["X-ClickHouse-Summary"] = json.dumps({"read_rows": str(read_rows())})
            return bytes(result.bytes() or b""), headers

    def _insert(self, session: _Session, request: Request) -> int:
        statement = request.sql
        match = _FORMAT_AT_END.search(statement)
        if match is None:
            raise ShimError(62, "Code: 62. DB::Exception: an INSERT with data needs FORMAT (chserver). (SYNTAX_ERROR)")
        fmt, head = match.group(1), statement[: match.start()].rstrip()
        assert request.data is not None
        if _INPUT_CALL.search(head):
            spooled = self.spool / f"body-{uuid.uuid4().hex}"
            spooled.write_bytes(request.data)
            try:
                rewritten = _INPUT_CALL.sub(f"file({{_chserver_body:String}}, '{fmt}', ", head, count=1)
                self._prepare(session, None, {**request.settings, "max_threads": "1"})
                result = self._raw(
                    session, rewritten, "TabSeparated", {**request.params, "_chserver_body": str(spooled)}
                )
            finally:
                spooled.unlink(missing_ok=True)
            written = getattr(result, "rows_written", None)
            return int(written()) if callable(written) else 0
        if "{" in head and request.params:
            raise ShimError(48, "Code: 48. DB::Exception: parameters in INSERT … FORMAT (chserver). (NOT_IMPLEMENTED)")
        if not hasattr(session.conn, "send_insert"):  # chDB before 26.7: the body through a file, typed by the table
            spooled = self.spool / f"body-{uuid.uuid4().hex}"
            spooled.write_bytes(request.data)
            try:
                statement = f"{head} SELECT * FROM file({{_chserver_body:String}}, '{fmt}')"
                result = self._raw(session, statement, "TabSeparated", {"_chserver_body": str(spooled)})
            finally:
                spooled.unlink(missing_ok=True)
            written = getattr(result, "rows_written", None)
            return int(written()) if callable(written) else 0
        try:
            with session.conn.send_insert(head, fmt) as inserter:
                inserter.append(request.data)
                result = inserter.finish()
        except Exception as exc:
            raise _engine_error(exc) from exc
        written = getattr(result, "rows_written", 0)
        return int(written() if callable(written) else written or 0)


def _literal(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclasses.dataclass
class Request:
    sql: str
    data: bytes | None
    database: str | None
    default_format: str
    session_id: str | None
    params: dict[str, str]
    settings: dict[str, str]


def parse_request(query: dict[str, str], body: bytes, content_type: str) -> Request:
    """The statement, its data, parameters and settings from URL parameters and body (see the module docstring)."""
    fields = dict(query)
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                fields[str(name)] = bytes(part.get_payload(decode=True)).decode()
        body = b""
    sql = fields.get("query", "")
    data: bytes | None = None
    if sql:
        if body:
            if re.match(r"\s*INSERT\b", _COMMENTS.sub("", sql), re.I) and _FORMAT_AT_END.search(sql):
                data = body
            else:
                sql = sql + "\n" + body.decode()
    else:
        text = body.decode(errors="surrogateescape")
        split = _INSERT_WITH_DATA.match(_COMMENTS.sub("", text))
        if split and split.group(2):
            sql, data = split.group(1), split.group(2).encode(errors="surrogateescape")
        else:
            sql = text
    if not sql.strip():
        raise ShimError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
    params = {k.removeprefix("param_"): v for k, v in fields.items() if k.startswith("param_")}
    settings = {k: v for k, v in fields.items() if k not in TRANSPORT and not k.startswith("param_")}
    return Request(
        sql=sql,
        data=data,
        database=fields.get("database") or None,
        default_format=fields.get("default_format") or "TabSeparated",
        session_id=fields.get("session_id") or None,
        params=params,
        settings=settings,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Not waiting at close for the handler threads: a client's idle keep-alive connection (a test's own client
    # pool) would keep one waiting for its next request, and the server from stopping, until SIGKILL.
    block_on_close = False
    engine: Engine
    user: str
    password: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle's algorithm the body waits for the client's delayed ACK of
    # the headers (up to 40 ms a request on Linux). A ClickHouse server sends without that delay.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _credentials(self, query: dict[str, str]) -> tuple[str, str]:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user, password
        if "X-ClickHouse-User" in self.headers:
            return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        return query.get("user", "default"), query.get("password", "")

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path.rstrip("/") == "/ping":
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = query.get("query_id") or str(uuid.uuid4())
        base = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Server-Display-Name": "chserver"}
        try:
            user, password = self._credentials(query)
            if user != self.server.user or not secrets.compare_digest(password, self.server.password):
                raise ShimError(
                    516,
                    f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                    "or there is no user with such name. (AUTHENTICATION_FAILED)",
                )
            if "default_format" not in query and "X-ClickHouse-Format" in self.headers:
                query["default_format"] = self.headers["X-ClickHouse-Format"]
            request = parse_request(query, body, self.headers.get("Content-Type", ""))
            payload, headers = self.server.engine.execute(request)
            content_type = "application/octet-stream" if request.data is None else "text/plain; charset=UTF-8"
            self._send(200, payload, {**base, **headers, "Content-Type": content_type})
        except ShimError as exc:
            text = f"{exc} (version {self.server.engine.version} (chserver))\n".encode()
            headers = {
                **base,
                "X-ClickHouse-Exception-Code": str(exc.code),
                "Content-Type": "text/plain; charset=UTF-8",
            }
            self._send(STATUS.get(exc.code, 500), text, headers)


def _exit_with_parent(parent: int) -> None:
    """A test run that dies (kill -9) leaves no server behind."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve(data_dir: Path, user: str, password: str, databases: list[str]) -> None:
    engine = Engine(data_dir, databases)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.engine, server.user, server.password = engine, user, password
    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    print(json.dumps({"port": server.server_address[1], "pid": os.getpid(), "version": engine.version}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        # Closed here, not left to the interpreter's exit: there, after some statements (the hostile-statement
        # test's), chDB's connections did not finish closing and the server waited for SIGKILL (20 s).
        for session in list(engine.sessions.values()):
            session.conn.close()
        engine.base.close()


@dataclasses.dataclass
class ChServer:
    """A running shim: ``url(database)`` is a ``DOSSIER_CLICKHOUSE_URL``."""

    process: subprocess.Popen[str]
    port: int
    user: str
    password: str
    version: str
    log: Path

    def url(self, database: str = "default") -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new empty database on the server, as ``DOSSIER_CLICKHOUSE_URL``."""
        import uuid

        import clickhouse_connect

        database = f"d_{uuid.uuid4().hex[:10]}"
        admin = clickhouse_connect.get_client(
            host="127.0.0.1", port=self.port, username=self.user, password=self.password, compress=False
        )
        try:
            admin.command(f"CREATE DATABASE {database}")
        finally:
            admin.close()
        return self.url(database)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(
    data_dir: Path,
    *,
    user: str = "dossier",
    password: str | None = None,
    timezone: str = "UTC",
    timeout: float = 60,
    python: str | None = None,
) -> ChServer:
    """Start the shim in a subprocess on a free loopback port, its chDB data in ``data_dir``.

    ``timezone`` is the server's default time zone (a server's ``<timezone>``
    setting; chDB takes it from ``TZ``): ``timezone()``, and the zone of every
    ``DateTime`` without one. ``python`` is the interpreter that runs the
    engine (default: this one): another venv's, holding another chdb-core,
    serves another ClickHouse version (see ``tests/test_engine_matrix.py``).
    """
    password = password or secrets.token_hex(8)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [python or sys.executable, "-m", "tests.chserver", str(data_dir), "--user", user, "--password", password],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "TZ": timezone},
        )
    assert process.stdout is not None
    # epoll, not select(): a long test session holds more than 1024 descriptors (chDB keeps three procfs files
    # open for each thread it leaves behind per store opened), and select() takes none above 1023.
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        raise RuntimeError(f"the ClickHouse shim did not start; its log:\n{log.read_text()[-3000:]}")
    info = json.loads(line)
    return ChServer(process, int(info["port"]), user, password, str(info["version"]), log)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chserver", description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--database", action="append", default=[])
    args = parser.parse_args(argv)
    serve(args.data_dir, args.user, args.password, args.database)


if __name__ == "__main__":
    main()
