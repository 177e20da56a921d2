"""The three ways a :class:`~dossier_runtime.store.Store` reaches ClickHouse.

Every backend speaks one small interface: record batches for a query
(Arrow IPC under the hood, so results have the same Python types whichever
backend answered), a command, and a raw insert of bytes in a ClickHouse input
format. Values are always bound server-side (``{name:Type}`` placeholders,
formatted by clickhouse-connect's binder), never spliced into SQL text.

* :class:`ChdbBackend`: the embedded engine, in this process (raw ``chdb``:
  it gives streaming ``send_query`` results and streaming ``send_insert``,
  which clickhouse-connect's chdb client routes through temp files).
* :class:`ServerBackend`: a ClickHouse server over HTTP(S), clickhouse-connect.
* :class:`EndpointBackend`: the loopback endpoint of the process that owns an
  embedded store (:mod:`dossier_runtime.storeserver`).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import re
import socket
import struct
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import pyarrow as pa

from dossier_runtime import engineversion
from dossier_runtime.errors import StoreError
from dossier_runtime.settings import ClickHouseServer
from dossier_runtime.sqlguard import ConsoleLimits

#: Settings every reader runs with: no writes, no DDL, settings still adjustable per query.
READONLY: Final = {"readonly": "2"}
#: Settings a reader may set on an endpoint session before it is locked: the console's limits.
READER_SETTINGS: Final = frozenset(ConsoleLimits().settings())
#: The tables a reading command may append to (through :meth:`Store.append`): the integrity ledger, where
#: ``dossier inspect verify`` records what it recomputed (migration 0008). Nothing else is written by a reader,
#: and through an owner's endpoint not even these: the owner records a run's claim as it checked it.
RECORD_TABLES: Final = frozenset({"integrity_runs", "integrity_parts", "integrity_breaks"})

#: chDB's refusal to stream a statement it only answers whole (EXPLAIN, SHOW, DESCRIBE).
_STREAMING_UNSUPPORTED: Final = "Streaming query is not supported"
FRAME_END: Final = 0
FRAME_ERROR: Final = 0xFFFFFFFF


class StoreQueryError(StoreError):
    """ClickHouse refused a statement (syntax, unknown column, read-only, …); the message is ClickHouse's."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


def bind_parameters(parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Server-side parameter values in ClickHouse text form (``{name:Type}`` placeholders)."""
    if not parameters:
        return {}
    from clickhouse_connect.driver.binding import format_bind_value

    return {name: str(format_bind_value(_with_micros(value), UTC)) for name, value in parameters.items()}


def _with_micros(value: Any) -> Any:
    """Datetimes as UTC text with microseconds: clickhouse-connect's binding would drop them."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return _Literal(aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(value, list | tuple):
        return [_with_micros(v) for v in value]
    return value


class _Literal(str):
    """Text bound as is (already in ClickHouse's format)."""


def _error_code(message: str) -> int | None:
    marker = "Code: "
    idx = message.find(marker)
    if idx < 0:
        return None
    digits = message[idx + len(marker) :].split(".", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


def clean_error(message: str) -> str:
    """ClickHouse's own sentence, without driver prefixes and stack noise."""
    idx = message.find("Code: ")
    text = message[idx:] if idx >= 0 else message
    return text.strip().split("\n", 1)[0]


class Backend(Protocol):
    kind: str

    def batches(
        self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None
    ) -> Iterator[pa.RecordBatch]: ...

    def command(self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None) -> None: ...

    def insert(
        self, statement: str, fmt: str, chunks: Iterable[bytes], data_params: Mapping[str, Any] | None
    ) -> int: ...

    def append(self, table: str, rows: bytes) -> int: ...

    def close(self) -> None: ...


def _read_ipc(data: bytes) -> Iterator[pa.RecordBatch]:
    if not data:
        return
    yield from _with_schema(pa.ipc.open_stream(data))


def _with_schema(reader: pa.ipc.RecordBatchStreamReader) -> Iterator[pa.RecordBatch]:
    """The stream's batches; an empty one when it has none, so an empty result keeps its column names."""
    empty = True
    for batch in reader:
        empty = False
        yield batch
    if empty:
        # pa.nulls, not pa.array([]): converting Python values asks whether pandas is installed, which imports it.
        yield pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in reader.schema], schema=reader.schema)


#: A line chDB's C++ side writes to the process's stderr on its own when it fails to start (``Code: 76.
#: DB::Exception: Cannot lock file …/status. Another server instance …``), before Python sees the error.
_CHDB_ERROR_LINE: Final = re.compile(rb"^Code: \d+\. DB::Exception: ")

#: Held while descriptor 2 is swapped (:func:`_native_errors_held`).
_STDERR_SWAP: Final = threading.Lock()


@contextlib.contextmanager
def _native_errors_held() -> Iterator[None]:
    """Keep chDB's own error lines off stderr while it starts; everything else written meanwhile is passed on.

    Losing a race for the store to another process is normal (the store then goes through that process), and
    the caller turns every failure into a sentence; the raw line would reach the user beside it. File
    descriptor 2 is swapped for a temporary file for the length of the connect, so other threads' lines
    written then are held and written afterwards, in order.

    One swap at a time in the process: two sessions connecting at once (a sink's background index reads)
    would otherwise each save the descriptor the other had swapped in, and the last to finish would leave
    stderr pointing at a deleted temporary file, where the command's error sentence would then vanish.
    """
    with _STDERR_SWAP:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable stderr: nothing to keep clean
            yield
            return
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                kept = [line for line in held.read().splitlines(keepends=True) if not _CHDB_ERROR_LINE.match(line)]
                if kept:
                    os.write(2, b"".join(kept))


#: The sentinel :meth:`ChdbBackend._resync` sends after a failed statement, and what it must read back.
_SENTINEL_SQL: Final = "SELECT 'dossier-audit: in step'"
_SENTINEL_TSV: Final = b"dossier-audit: in step\n"
_RESYNC_TRIES: Final = 4


class _Unusable:
    """Stands for a chDB connection that did not answer its sentinel after a failure: every use says so."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Any:
        raise StoreError(
            f"the embedded store in {self.path} stopped answering queries with their own results after an error; "
            "nothing more is read or written through this session: open the store again"
        )

    def close(self) -> None:
        return None


class ChdbBackend:
    """The embedded engine in this process. One connection per role, serialised by a lock.

    chDB 4.4 keeps the GIL while a statement runs (measured: a Python thread
    stalls for the length of a query), so Python work in other threads does
    not overlap with it. Readers get ``readonly = 2`` on their session.
    """

    kind = "embedded"

    def __init__(self, path: Path, database: str, *, readonly: bool, locked: Mapping[str, str] | None = None) -> None:
        """``locked``: settings applied, then frozen with ``readonly = 1`` (a console or endpoint session)."""
        import chdb

        engineversion.check(str(getattr(chdb, "engine_version", "")), f"the embedded engine (chDB {chdb.__version__})")
        self.path = path
        self.database = database
        self.readonly = readonly or locked is not None
        self._lock = threading.RLock()
        from dossier_runtime import sqlparser  # its parse-only session would hold chDB's one engine on another path

        if not sqlparser.is_parse_path(path):
            sqlparser.release()
        try:
            with _native_errors_held():
                self._conn = chdb.connect(str(path))  # type: ignore[no-untyped-call]
        except Exception as exc:  # chdb raises RuntimeError/ChdbError with a generic EmbeddedServer text
            raise StoreError(f"cannot open the embedded store in {path}: {clean_error(str(exc))}") from exc
        if not readonly:
            self._raw(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        exists = self._raw("SELECT count() FROM system.databases WHERE name = {db:String}", {"db": database})
        if exists.strip() == b"0":
            self._raw(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        self._raw(f"USE `{database}`")
        if locked is not None:
            for name, value in locked.items():
                self._raw(f"SET {_setting_name(name)} = {_setting_literal(value)}")
            self._raw("SET readonly = 1")
        elif readonly:
            self._raw("SET readonly = 2")

    def _raw(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        fmt: str = "TSV",
        *,
        prebound: Mapping[str, str] | None = None,
    ) -> bytes:
        bound = dict(prebound) if prebound is not None else bind_parameters(params)
        with self._lock:
            try:
                result = self._conn.query(sql, fmt, params=bound or None)
            except Exception as exc:
                self._resync()
                raise StoreQueryError(clean_error(str(exc)), _error_code(str(exc))) from exc
        return bytes(result.bytes() or b"")

    def _resync(self) -> None:
        """After a statement failed, make sure the next one gets its own result.

        chDB 4.4 hands the statement after a failed one what was left of the failed one instead of its own
        result (measured: an empty result after a refused ``max_memory_usage`` or a ``throwIf`` on an early
        row, the failed query's rows after a ``throwIf`` further on; the statement after that is answered
        right). A count read next could then say 0, or a check find nothing. So a sentinel query runs until it
        comes back as itself; if it never does, the connection is not used again.
        """
        if self._conn is None:  # closed: the failure was that, and nothing follows on this session
            return
        for _ in range(_RESYNC_TRIES):
            try:
                if bytes(self._conn.query(_SENTINEL_SQL, "TSV").bytes() or b"") == _SENTINEL_TSV:
                    return
            except Exception:  # a failed sentinel is retried like a wrong one
                continue
        self._conn.close()
        self._conn = _Unusable(self.path)

    @staticmethod
    def _with_settings(sql: str, settings: Mapping[str, str] | None) -> str:
        if not settings:
            return sql
        clause = ", ".join(f"{k} = {_setting_literal(v)}" for k, v in settings.items())
        return f"{sql.rstrip().rstrip(';')}\nSETTINGS {clause}"

    def batches(
        self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None
    ) -> Iterator[pa.RecordBatch]:
        data = self._raw(self._with_settings(sql, settings), params, "ArrowStream")
        yield from _read_ipc(data)

    def stream(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        settings: Mapping[str, str] | None,
        *,
        prebound: Mapping[str, str] | None = None,
    ) -> Iterator[bytes]:
        """Complete Arrow IPC streams, one per ClickHouse block (for the loopback endpoint and big exports).

        ``prebound`` takes parameters already in ClickHouse text form (as the endpoint receives them).
        """
        bound = dict(prebound) if prebound is not None else bind_parameters(params)
        with self._lock:
            try:
                result = self._conn.send_query(self._with_settings(sql, settings), "ArrowStream", params=bound or None)
            except Exception as exc:
                self._resync()
                if _STREAMING_UNSUPPORTED not in str(exc):
                    raise StoreQueryError(clean_error(str(exc)), _error_code(str(exc))) from exc
                # EXPLAIN, SHOW, DESCRIBE: the engine answers them whole only.
                yield self._raw(self._with_settings(sql, settings), None, "ArrowStream", prebound=bound)
                return
            try:
                for chunk in result:
                    payload = chunk.bytes() if hasattr(chunk, "bytes") else bytes(chunk)
                    if payload:
                        yield bytes(payload)
            except Exception as exc:
                self._resync()
                raise StoreQueryError(clean_error(str(exc)), _error_code(str(exc))) from exc

    def command(self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None) -> None:
        self._raw(self._with_settings(sql, settings), params)

    def insert(self, statement: str, fmt: str, chunks: Iterable[bytes], data_params: Mapping[str, Any] | None) -> int:
        if data_params:
            raise StoreError("the embedded store takes no parameters in a streaming insert")
        with self._lock:
            try:
                with self._conn.send_insert(statement, fmt) as inserter:
                    for chunk in chunks:
                        inserter.append(chunk)
                    result = inserter.finish()
            except Exception as exc:
                self._resync()
                raise StoreQueryError(clean_error(str(exc)), _error_code(str(exc))) from exc
        written = getattr(result, "rows_written", 0)
        return int(written() if callable(written) else written or 0)

    def append(self, table: str, rows: bytes) -> int:
        """JSONEachRow ``rows`` into ``table`` (a record table), on a writing session of its own if this one reads."""
        if not self.readonly:
            return self.insert(f"INSERT INTO `{table}`", "JSONEachRow", [rows], None)
        writer = ChdbBackend(self.path, self.database, readonly=False)
        try:
            return writer.insert(f"INSERT INTO `{table}`", "JSONEachRow", [rows], None)
        finally:
            writer.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def console_batches(
    backend: Backend, sql: str, params: Mapping[str, Any] | None, limits: Mapping[str, str]
) -> Iterator[pa.RecordBatch]:
    """Run an inspector's checked statement on a session of its own, ``limits`` set and then ``readonly = 1``.

    ``readonly = 1`` is the engine's strictest reading mode: no write, no DDL, no table function that
    reaches outside, and no setting can change afterwards (a ``SETTINGS`` clause included), so the limits
    hold. Each backend gets there its own way: a fresh chDB session, the owner's endpoint (whose sessions
    are all locked so), or the server's HTTP settings.
    """
    if isinstance(backend, ChdbBackend):
        session = ChdbBackend(backend.path, backend.database, readonly=True, locked=limits)
        try:
            yield from session.batches(sql, params, None)
        finally:
            session.close()
    elif isinstance(backend, ServerBackend):
        # A client of its own: the server's HTTP session would otherwise keep ``readonly = 1`` for later reads.
        client = ServerBackend(backend.server, readonly=True)
        try:
            yield from client.batches(sql, params, {**limits, "readonly": "1"})
        finally:
            client.close()
    else:
        yield from backend.batches(sql, params, limits)


def _setting_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise StoreError(f"not a setting name: {name!r}")
    return name


def _setting_literal(value: str) -> str:
    text = str(value)
    if text.lstrip("-").isdigit():
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ServerBackend:
    """A ClickHouse server over HTTP(S) (:class:`~dossier_runtime.settings.ClickHouseServer`).

    Timeouts: the connection and the handshake within ``connect_timeout`` (10 s), then every statement may stay
    silent for ``read_timeout`` (``DOSSIER_CLICKHOUSE_READ_TIMEOUT``, 300 s); no request is retried on a timeout.

    Tested against ClickHouse's HTTP interface served by the real engine
    (``tests/chserver.py``), not against a ClickHouse server binary.
    """

    kind = "server"

    def __init__(self, server: ClickHouseServer, *, readonly: bool) -> None:
        """Connect (a TCP connection, then clickhouse-connect's handshake query), each within the connect timeout.

        Nothing is tried twice: a second attempt would only double the wait for a server that is not there.
        Every failure is one :class:`StoreError` naming ``host:port``; the driver's own log lines are kept off
        stderr (:func:`_quiet_driver`).
        """
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError
        from clickhouse_connect.driver.httpclient import HttpClient
        from urllib3.util import Timeout

        self.server, self.readonly = server, readonly
        self.database = server.database
        _quiet_driver()
        _reach(server)
        try:
            self._client = clickhouse_connect.get_client(
                host=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                database=server.database,
                secure=server.secure,
                settings=dict(READONLY) if readonly else {},
                connect_timeout=server.connect_timeout,
                send_receive_timeout=server.connect_timeout,  # the handshake; raised below for statements
                compress=False,
            )
        except ClickHouseError as exc:
            raise self._refused(exc) from exc
        if isinstance(self._client, HttpClient):
            self._client.timeout = Timeout(connect=server.connect_timeout, read=server.read_timeout)
            self._client.http_retries = 0
        try:
            engineversion.check(str(self._client.server_version), f"ClickHouse at {server.address}")
        except StoreError:
            self._client.close()
            raise

    def _refused(self, exc: Exception) -> StoreError:
        """Why the handshake failed, in one sentence naming the server."""
        host = self.server.address
        code = getattr(exc, "code", None) or _error_code(str(exc))
        said = self.server.redact(_server_error(exc))  # an error may repeat the request, login included
        if code == _UNKNOWN_DATABASE:
            return StoreError(
                f"ClickHouse at {host} has no database {self.database!r}: create it "
                f"(CREATE DATABASE `{self.database}`) or fix DOSSIER_CLICKHOUSE_URL; {said}"
            )
        if code == _AUTHENTICATION_FAILED:
            return StoreError(
                f"ClickHouse at {host} refused the user name or password ({self.server.username!r}; "
                f"DOSSIER_CLICKHOUSE_URL, DOSSIER_CLICKHOUSE_USER, DOSSIER_CLICKHOUSE_PASSWORD): {said}"
            )
        transport = _transport_failure(exc, self.server, handshake=True)
        if transport is not None:
            return transport
        return StoreError(f"cannot reach ClickHouse at {host}: {said}; check DOSSIER_CLICKHOUSE_URL")

    def _guard(self, exc: Exception) -> StoreError:
        transport = _transport_failure(exc, self.server, handshake=False)
        if transport is not None:
            return transport
        code = getattr(exc, "code", None)
        return StoreQueryError(
            self.server.redact(_server_error(exc)), code if isinstance(code, int) and code else _error_code(str(exc))
        )

    def batches(
        self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None
    ) -> Iterator[pa.RecordBatch]:
        from clickhouse_connect.driver.exceptions import ClickHouseError
        from urllib3.exceptions import HTTPError

        try:
            # The format goes in a header, not appended as ``FORMAT …``: appended, it would belong to an
            # inner query (``EXPLAIN AST SELECT …`` would show it), unlike on the embedded store.
            stream: Any = self._client.raw_stream(
                sql,
                parameters=dict(params) if params else None,
                settings=dict(settings or {}),
                transport_settings={"X-ClickHouse-Format": "ArrowStream"},
            )
        except ClickHouseError as exc:
            raise self._guard(exc) from exc
        try:
            head = stream.read(8)
            if not head:  # a statement without a result: no Arrow stream at all
                return
            body = _Prefixed(head, stream)
            try:
                yield from _with_schema(pa.ipc.open_stream(body))
            except pa.ArrowInvalid as exc:
                # A server that fails after it started answering appends its exception to the body.
                tail = _read_up_to(body, _ERROR_TAIL_BYTES).decode(errors="replace")
                idx = tail.find("Code: ")
                if idx >= 0:
                    raise StoreQueryError(self.server.redact(clean_error(tail[idx:])), _error_code(tail[idx:])) from exc
                raise StoreError(f"unreadable answer from ClickHouse: {exc}") from exc
        except (OSError, HTTPError) as exc:
            failure = _transport_failure(exc, self.server, handshake=False)
            raise failure or StoreError(
                f"ClickHouse at {self.server.address} stopped answering in the middle of a result: {exc}"
            ) from exc
        finally:
            # Also when the caller stops early: an unread answer would keep the server busy (and the
            # client's session locked) until it times out.
            stream.close()

    def command(self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None) -> None:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            self._client.command(sql, parameters=dict(params) if params else None, settings=dict(settings or {}))
        except ClickHouseError as exc:
            raise self._guard(exc) from exc

    def insert(self, statement: str, fmt: str, chunks: Iterable[bytes], data_params: Mapping[str, Any] | None) -> int:
        from clickhouse_connect.driver.exceptions import ClickHouseError
        from clickhouse_connect.driver.summary import QuerySummary

        data = b"".join(chunks)
        try:
            summary = self._client.command(
                f"{statement} FORMAT {fmt}", parameters=dict(data_params) if data_params else None, data=data
            )
        except ClickHouseError as exc:
            raise self._guard(exc) from exc
        return int(summary.written_rows) if isinstance(summary, QuerySummary) else 0

    def append(self, table: str, rows: bytes) -> int:
        """JSONEachRow ``rows`` into ``table`` (a record table), on a writing client if this one reads.

        The server's grants decide: a user that may not insert gets the server's refusal.
        """
        if not self.readonly:
            return self.insert(f"INSERT INTO `{table}`", "JSONEachRow", [rows], None)
        writer = ServerBackend(self.server, readonly=False)
        try:
            return writer.insert(f"INSERT INTO `{table}`", "JSONEachRow", [rows], None)
        finally:
            writer.close()

    def close(self) -> None:
        self._client.close()


class _Prefixed(io.RawIOBase):
    """The answer's first bytes (read to tell an empty answer), then the rest of it."""

    def __init__(self, head: bytes, rest: Any) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_up_to(body: io.RawIOBase, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = body.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


_UNKNOWN_DATABASE: Final = 81
_AUTHENTICATION_FAILED: Final = 516
_ERROR_TAIL_BYTES: Final = 64 * 1024


#: What clickhouse-connect logs as it raises a transport failure; the caller's sentence replaces it.
_DRIVER_NOISE: Final = ("Unexpected Http Driver Exception",)


def _not_driver_noise(record: logging.LogRecord) -> bool:
    return record.msg not in _DRIVER_NOISE


def _quiet_driver() -> None:
    """Keep clickhouse-connect's "Unexpected Http Driver Exception" (with its traceback) off stderr.

    The driver logs it, on the logger of its HTTP backend, as it raises the error that :class:`ServerBackend`
    turns into a sentence; without a handler, Python's last-resort handler prints it above that sentence.
    Its other warnings still go wherever logging is configured to send them.
    """
    for name in ("clickhouse_connect.driver._backend.http_sync", "clickhouse_connect.driver.httpclient"):
        logger = logging.getLogger(name)
        if _not_driver_noise not in logger.filters:
            logger.addFilter(_not_driver_noise)


def _reach(server: ClickHouseServer) -> None:
    """One TCP connection to the server within the connect timeout, or a sentence saying why not.

    Made here, once, because urllib3 retries a connection that times out (doubling the wait) and words every
    failure the same way. Skipped when a proxy is configured for the server: the proxy is what gets reached.
    """
    scheme = "https" if server.secure else "http"
    if urllib.request.getproxies().get(scheme) and not urllib.request.proxy_bypass(server.host):
        return
    advice = "check the host and port of DOSSIER_CLICKHOUSE_URL"
    try:
        socket.create_connection((server.host, server.port), timeout=server.connect_timeout).close()
    except socket.gaierror as exc:
        raise StoreError(
            f"cannot reach ClickHouse at {server.address}: the host name does not resolve ({exc.strerror}); {advice}"
        ) from exc
    except TimeoutError as exc:
        raise StoreError(
            f"cannot reach ClickHouse at {server.address}: no connection within {server.connect_timeout:g} s; "
            f"{advice}, and that no firewall drops it"
        ) from exc
    except OSError as exc:
        raise StoreError(
            f"cannot reach ClickHouse at {server.address}: {exc.strerror or exc}; {advice}, and that the server runs"
        ) from exc


def _transport_failure(exc: BaseException, server: ClickHouseServer, *, handshake: bool) -> StoreError | None:
    """A sentence for a request that timed out or lost its connection (None for ClickHouse's own errors)."""
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, HTTPError | OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    reason = getattr(cause, "reason", None)
    if isinstance(cause, ReadTimeoutError) or isinstance(reason, ReadTimeoutError):
        if handshake:
            return StoreError(
                f"ClickHouse at {server.address} accepted the connection but did not answer within "
                f"{server.connect_timeout:g} s; check that DOSSIER_CLICKHOUSE_URL names ClickHouse's HTTP port "
                "(8123, or 8443 for https)"
            )
        return StoreError(
            f"ClickHouse at {server.address} did not answer within {server.read_timeout:g} s "
            "(DOSSIER_CLICKHOUSE_READ_TIMEOUT); check the server, or raise the timeout for longer statements"
        )
    if isinstance(cause, ConnectTimeoutError) or isinstance(reason, ConnectTimeoutError):
        return StoreError(
            f"cannot reach ClickHouse at {server.address}: no connection within {server.connect_timeout:g} s; "
            "check the host and port of DOSSIER_CLICKHOUSE_URL"
        )
    detail = str(reason or cause).rsplit(": ", 1)[-1].strip("')\"")
    return StoreError(f"lost the connection to ClickHouse at {server.address} ({detail}); run the command again")


def _server_error(exc: Exception) -> str:
    """ClickHouse's sentence from a clickhouse-connect error, without the driver's ``(for url …)`` suffix."""
    text = clean_error(str(exc))
    idx = text.rfind(" (for url ")
    return text[:idx] if idx > 0 and text.endswith(")") else text


class OwnerGoneError(StoreError):
    """The owner of the store stopped serving it: closing (it said so), gone (nothing listens), or lost mid-request.

    ``ran`` is False when the request surely did not run there (refused, or answered "closing"), None when it may
    have (the connection dropped after it was sent).
    """

    def __init__(self, message: str, *, ran: bool | None) -> None:
        super().__init__(message)
        self.ran = ran


class EndpointBackend:
    """Reads through the loopback endpoint of the process that owns an embedded store."""

    kind = "endpoint"

    def __init__(self, port: int, token: str, pid: int, database: str) -> None:
        self.port = port
        self.token = token
        self.pid = pid
        self.database = database

    def _post(self, path: str, body: dict[str, Any]) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request(
                "POST", path, json.dumps(body), {"X-Dossier-Token": self.token, "Content-Type": "application/json"}
            )
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise OwnerGoneError(
                f"the process that owns the store (pid {self.pid}) stopped answering ({exc}); run the command again",
                ran=False if isinstance(exc, ConnectionRefusedError) else None,
            ) from exc
        if response.status != 200:
            payload = response.read()
            conn.close()
            try:
                detail = json.loads(payload)
            except ValueError:
                detail = {"error": payload.decode(errors="replace")}
            if response.status == 503 and isinstance(detail, dict) and detail.get("closing") is True:
                raise OwnerGoneError(f"{detail.get('error')}; run the command again", ran=False)
            raise StoreQueryError(str(detail.get("error")), detail.get("code"))
        return response

    def batches(
        self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None
    ) -> Iterator[pa.RecordBatch]:
        response = self._post(
            "/query", {"sql": sql, "params": bind_parameters(params), "settings": dict(settings or {})}
        )
        try:
            for frame in read_frames(response):
                yield from _read_ipc(frame)
        finally:
            response.close()

    def command(self, sql: str, params: Mapping[str, Any] | None, settings: Mapping[str, str] | None) -> None:
        for _ in self.batches(sql, params, settings):
            pass

    def append(self, table: str, rows: bytes) -> int:
        """Refused: the owner writes no rows a reader made, not even to the ledger (:meth:`record_run`)."""
        raise StoreError(
            f"the store is owned by another dossier process (pid {self.pid}), which writes the integrity ledger "
            "itself: only a verify run's claim goes to it (Store.record_run)"
        )

    def record_run(self, claim: dict[str, Any]) -> dict[str, Any]:
        """Ask the owner to record a verify run: it checks ``claim`` (a ledgerrecord.Claim) and answers what it
        recorded, or refuses with a 4xx (raised as :class:`StoreQueryError`)."""
        response = self._post("/record-verify", claim)
        try:
            answer = json.loads(response.read())
        finally:
            response.close()
        if not isinstance(answer, dict):
            raise StoreError("the store endpoint answered a record request with something else than an object")
        return answer

    def record_access(self, access: dict[str, Any]) -> dict[str, Any]:
        """Ask the owner to chain and append an access (an ``accessrecord.Access``); it answers seq and hash."""
        response = self._post("/record-access", access)
        try:
            answer = json.loads(response.read())
        finally:
            response.close()
        if not isinstance(answer, dict):
            raise StoreError("the store endpoint answered an access record with something else than an object")
        return answer

    def insert(self, statement: str, fmt: str, chunks: Iterable[bytes], data_params: Mapping[str, Any] | None) -> int:
        raise StoreError(
            f"the store is owned by another dossier process (pid {self.pid}), which only serves reads; "
            "stop it (Ctrl-C) before writing"
        )

    def close(self) -> None:
        return None


def read_frames(response: Any) -> Iterator[bytes]:
    """Frames of the endpoint protocol: [u32 length][Arrow IPC stream] …, [u32 0] at the end."""
    while True:
        head = response.read(4)
        if len(head) < 4:
            raise StoreError("the store endpoint closed the answer early; run the command again")
        (length,) = struct.unpack(">I", head)
        if length == FRAME_END:
            return
        if length == FRAME_ERROR:
            (size,) = struct.unpack(">I", response.read(4))
            detail = json.loads(response.read(size))
            raise StoreQueryError(str(detail.get("error")), detail.get("code"))
        data = response.read(length)
        if len(data) < length:
            raise StoreError("the store endpoint closed the answer early; run the command again")
        yield data
