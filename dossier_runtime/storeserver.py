"""The loopback read endpoint of the process that owns an embedded store.

chDB admits one OS process per data directory (platform.md B-1). The process
that opened the store (``dossier consume run``, a load, or any command that
found the directory free) therefore serves reads to the others: a
``ThreadingHTTPServer`` on 127.0.0.1, one read-only (``readonly = 2``) chDB
session per request, answers streamed as Arrow IPC frames. Its port, pid and
a random token go to ``<data dir>/store.endpoint.json`` (mode 0600); a
request without the token is refused, so another local user cannot read the
store through the port.

Protocol (internal, versioned by this module only):

* ``GET /ping`` → ``{"pid": …, "data_dir": …}``
* ``POST /record-verify`` with ``{"table_uuid", "parts": [{"name", "rows",
  "checksum"}]}`` → ``{"run_id", "parts", "breaks", "events", "left_out"}``:
  the one write the endpoint makes for a reader, and it writes no row the
  reader made. The claim (a verify run read these parts) is checked against
  ``system.parts``, the owner recomputes the hashes of those parts itself and
  records what *it* found (:func:`~dossier_runtime.ledgerrecord.record_claim`);
  a claim with anything else (breaks, counts), about another table, or with a
  part's rows or checksum wrong is refused (400 malformed, 409 contradicted by
  the store) and nothing is recorded. Readers run as the same OS user and can
  read this directory, so a key kept here would not keep them from forging;
  recomputing does. ``POST /append`` (rows for the ledger, as before) is
  refused with 403;
* ``POST /record-access`` with an access (:class:`~dossier_runtime.accessrecord.Access`: who, when, the
  command, its parameters, rows, output hash, exit code, how it came) → ``{"seq", "prev_hash", "hash"}``:
  a reading command's entry in the access log. The fields are the reader's own declaration (checked for
  form and size, 400 otherwise); its place in the chain is the owner's, which appends one entry at a time;
  500 when the log cannot take it (no access log: migrate);
* ``POST /query`` with ``{"sql", "params" (ClickHouse text form), "settings"}``:
  each request gets a session of its own where the ``settings`` (only the
  limits of :data:`~dossier_runtime.storebackends.READER_SETTINGS`) are set
  and then frozen with ``readonly = 1``, the engine's strictest reading mode
  (no write, no DDL, no table function that reaches outside, no setting
  changed by the statement) → 200 and frames ``[u32 length][Arrow IPC stream]`` … ``[u32 0]``; an error
  before the first frame is a 400 with ``{"error", "code"}``, an error after
  it a ``[u32 0xFFFFFFFF][u32 n][json]`` frame.

Closing hands the store over. The endpoint file goes first, so no new client finds this owner; every request
already accepted is answered (up to :data:`CLOSE_WAIT_S`); a connection the kernel took but the server had not
yet accepted is answered 503 with ``{"closing": true}`` and nothing run. A client told so, or refused a
connection, ran nothing here: it opens the store itself (or finds the next owner) and sends the request again
(:class:`~dossier_runtime.store.Store`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from dossier_runtime import accessrecord
from dossier_runtime.errors import StoreError
from dossier_runtime.ledgerrecord import Claim, LedgerClaimError, QueryFn, record_claim
from dossier_runtime.storebackends import (
    FRAME_END,
    FRAME_ERROR,
    READER_SETTINGS,
    ChdbBackend,
    StoreQueryError,
)

ENDPOINT_FILE: Final = "store.endpoint.json"
#: How long a closing owner waits for the requests it accepted to be answered.
CLOSE_WAIT_S: Final = 30.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    chdb_path: Path
    database: str
    token: str
    data_dir: Path
    access_lock: threading.Lock
    closing: bool = False
    in_flight: int = 0  # requests accepted and not yet answered, under ``idle``
    idle: threading.Condition

    def process_request(self, request: Any, client_address: Any) -> None:
        """Counted in flight as it is accepted, before its thread starts: a closing owner cannot miss it."""
        with self.idle:
            self.in_flight += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._answered()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._answered()

    def _answered(self) -> None:
        with self.idle:
            self.in_flight -= 1
            self.idle.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    # A connection that sends no request for this long is dropped (closing waits for every accepted one); once the
    # token is checked, answers stream without a limit, however slowly the reader takes them.
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _closing(self) -> bool:
        """Answered 503 (the request read, nothing run) when the owner is closing: the client goes elsewhere."""
        if not self.server.closing:
            return False
        with contextlib.suppress(ValueError, OSError):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
        closing = f"the process that owns the store (pid {os.getpid()}) is closing it"
        self._json(503, {"error": closing, "closing": True})
        return True

    def _authorised(self) -> bool:
        """A request with the token, while the owner is not closing (else answered, and False)."""
        if secrets.compare_digest(self.headers.get("X-Dossier-Token", ""), self.server.token):
            if self._closing():
                return False
            self.connection.settimeout(None)
            return True
        self._json(403, {"error": "missing or wrong store token (read it from store.endpoint.json)"})
        return False

    def _json(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _request(self) -> dict[str, Any]:
        """The JSON body (ValueError, KeyError or TypeError when it is not a JSON object)."""
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if not isinstance(request, dict):
            raise TypeError("the body is not a JSON object")
        return request

    def _backend(self, *, readonly: bool) -> ChdbBackend | None:
        """A session of its own on the store, or None after answering 503."""
        try:
            return ChdbBackend(self.server.chdb_path, self.server.database, readonly=readonly)
        except StoreError as exc:
            self._json(503, {"error": str(exc)})
            return None

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path == "/ping":
            self._json(200, {"pid": os.getpid(), "data_dir": str(self.server.data_dir)})
        else:
            self._json(404, {"error": f"no such endpoint {self.path}"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if self.path == "/record-verify":
            self._record_verify()
            return
        if self.path == "/record-access":
            self._record_access()
            return
        if self.path == "/append":
            self._json(403, {"error": _NO_APPEND})
            return
        if self.path != "/query":
            self._json(404, {"error": f"no such endpoint {self.path}"})
            return
        try:
            request = self._request()
            sql, params = str(request["sql"]), {str(k): str(v) for k, v in dict(request.get("params") or {}).items()}
            settings = {str(k): str(v) for k, v in dict(request.get("settings") or {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._json(400, {"error": f"bad request: {exc}"})
            return
        unknown = sorted(set(settings) - READER_SETTINGS)
        if unknown:
            self._json(400, {"error": f"the endpoint sets no {unknown[0]}; readers may set {sorted(READER_SETTINGS)}"})
            return
        try:
            backend = ChdbBackend(self.server.chdb_path, self.server.database, readonly=True, locked=settings)
        except StoreError as exc:
            self._json(503, {"error": str(exc)})
            return
        started = False
        try:
            for chunk in backend.stream(sql, None, None, prebound=params):
                if not started:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.apache.arrow.stream")
                    self.end_headers()
                    started = True
                self.wfile.write(struct.pack(">I", len(chunk)))
                self.wfile.write(chunk)
            if not started:
                self.send_response(200)
                self.end_headers()
            self.wfile.write(struct.pack(">I", FRAME_END))
        except StoreQueryError as exc:
            body = {"error": str(exc), "code": exc.code}
            if started:
                payload = json.dumps(body).encode()
                self.wfile.write(struct.pack(">II", FRAME_ERROR, len(payload)) + payload)
            else:
                self._json(400, body)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            backend.close()

    def _record_verify(self) -> None:
        """A reader's verify run: its claim checked, its parts' hashes recomputed and recorded here, by the owner."""
        try:
            claim = Claim.from_json(self._request())
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad record request: {exc}"})
            return
        backend = self._backend(readonly=False)
        if backend is None:
            return
        try:
            recorded = record_claim(_rows_of(backend), backend.append, claim)
        except LedgerClaimError as exc:
            self._json(409, {"error": str(exc)})
            return
        except StoreQueryError as exc:
            self._json(500, {"error": f"the owner could not record the run: {exc}", "code": exc.code})
            return
        finally:
            backend.close()
        self._json(200, recorded.to_json())

    def _record_access(self) -> None:
        """A reader's access: its declaration chained onto the access log by the owner, one append at a time."""
        try:
            access = accessrecord.Access.from_json(self._request())
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad access record: {exc}"})
            return
        backend = self._backend(readonly=False)
        if backend is None:
            return
        try:
            with self.server.access_lock:
                entry = accessrecord.append(_rows_of(backend), _jsonl_insert(backend), access)
        except StoreQueryError as exc:
            self._json(500, {"error": f"the owner could not record the access: {exc}", "code": exc.code})
            return
        except StoreError as exc:
            self._json(500, {"error": str(exc)})
            return
        finally:
            backend.close()
        self._json(200, {"seq": entry.seq, "prev_hash": entry.prev_hash, "hash": entry.hash})


_NO_APPEND: Final = (
    "the owner takes no rows for the integrity ledger: it records a verify run itself from a claim "
    "(POST /record-verify with the table's UUID and the parts the run read; Store.record_run sends it)"
)


def _rows_of(backend: ChdbBackend) -> QueryFn:
    """``query(sql, params) -> rows`` on the owner's own session, for :func:`record_claim`."""

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for batch in backend.batches(sql, params, None):
            rows.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
        return rows

    return query


def _jsonl_insert(backend: ChdbBackend) -> accessrecord.InsertFn:
    return lambda statement, rows: backend.insert(statement, "JSONEachRow", [rows], None)


class StoreEndpoint:
    """Serve reads of an open embedded store on loopback until :meth:`close`."""

    def __init__(self, data_dir: Path, chdb_path: Path, database: str, *, role: str = "writer") -> None:
        self.data_dir = data_dir
        self.role = role  # a reader's ownership is brief: a writer waits for it instead of giving up
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.chdb_path = chdb_path
        self.server.database = database
        self.server.token = secrets.token_hex(16)
        self.server.data_dir = data_dir
        self.server.access_lock = threading.Lock()
        self.server.idle = threading.Condition()
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="store-endpoint", daemon=True)
        self._thread.start()
        self._write_file()

    @property
    def path(self) -> Path:
        return self.data_dir / ENDPOINT_FILE

    def _write_file(self) -> None:
        tmp = self.data_dir / f".{ENDPOINT_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "port": self.port, "token": self.server.token, "role": self.role}, handle)
        tmp.replace(self.path)

    def close(self) -> None:
        """Hand the store over (the module's docstring): no new client, every accepted request answered."""
        with contextlib.suppress(FileNotFoundError, ValueError, OSError):
            current = json.loads(self.path.read_text(encoding="utf-8"))
            if current.get("pid") == os.getpid():
                self.path.unlink()
        self.server.shutdown()
        self.server.closing = True
        self.server.timeout = 0
        # Connections already queued in the listening socket's backlog would be reset by its close, their
        # clients unable to tell whether their request ran: each is answered 503 "closing" instead.
        try:
            with selectors.DefaultSelector() as backlog:  # not select(): a process may hold fds past 1024
                backlog.register(self.server.socket, selectors.EVENT_READ)
                while backlog.select(0.05):
                    self.server.handle_request()
        finally:
            self.server.server_close()
        # Every accepted request gets its answer before the engine closes under it, up to CLOSE_WAIT_S: a stopped
        # loader must stop, and a reader whose query is cut off reads it again from the next owner.
        with self.server.idle:
            self.server.idle.wait_for(lambda: self.server.in_flight == 0, timeout=CLOSE_WAIT_S)


def read_endpoint(data_dir: Path) -> dict[str, Any] | None:
    """The endpoint record of ``data_dir`` if its process is alive, else None."""
    try:
        record = json.loads((data_dir / ENDPOINT_FILE).read_text(encoding="utf-8"))
        pid, port, token = int(record["pid"]), int(record["port"]), str(record["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return {"pid": pid, "port": port, "token": token, "role": str(record.get("role", "writer"))}
