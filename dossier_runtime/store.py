"""The ClickHouse store: one small query API over embedded chDB, its owner's endpoint, or a server.

``open_store(settings, role="reader" | "writer")`` returns a :class:`Store`:

* ``DOSSIER_CLICKHOUSE_URL`` set → a ClickHouse server over HTTP(S).
* otherwise the embedded chDB store in ``<data dir>/store`` (database
  ``dossier``). chDB admits one process per directory (platform.md B-1), so:

  - if another process owns the directory and serves it
    (``<data dir>/store.endpoint.json``), a reader goes through that process's
    loopback endpoint and sees fresh data; a writer is refused with a sentence
    naming the process;
  - if the directory is free, this process opens it and, by default, serves
    reads to the others until it closes the store;
  - if it is locked by a process that does not serve it, the error names it.

The API (the same on every backend; results come through Arrow, so Python
types are the same everywhere: ``DateTime64(6,'UTC')`` → aware datetime,
``FixedString`` → bytes, ``Nullable`` → None, ``Array`` → list)::

    store.query(sql, {"id": "D1"})          # QueryResult: .column_names, .rows, .named(), .scalar()
    store.query_arrow(sql, params)          # pyarrow.Table
    for batch in store.query_batches(sql):  # pyarrow.RecordBatch, streamed (big exports)
        ...
    store.command("DDL …", params)          # DDL and other statements without a result
    store.insert_rows(table, columns, rows) # writers: small inserts (catalogues, dead letters)
    store.insert_bytes("INSERT INTO t (a, b)", "Avro", [data])  # writers: raw bytes in an input format

Placeholders are ClickHouse's server-side ``{name:Type}``; values are never
put into SQL text. A reader's session is ``readonly = 2``: any write or DDL is
refused by ClickHouse itself (``Code: 164 … READONLY``). An inspector's own SQL
(``dossier inspect sql``) is checked against :mod:`dossier_runtime.sqlguard`
first and runs through :meth:`Store.query_console`, on a session of its own
with limits set and ``readonly = 1``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from dossier_runtime import accessrecord
from dossier_runtime.accessrecord import Access, AccessLogError
from dossier_runtime.errors import StoreError
from dossier_runtime.ledgerrecord import Entry, Recorded
from dossier_runtime.ledgerrecord import write as write_ledger
from dossier_runtime.outfile import reason
from dossier_runtime.settings import Settings
from dossier_runtime.sqlguard import ConsoleLimits
from dossier_runtime.storebackends import (
    RECORD_TABLES,
    Backend,
    ChdbBackend,
    EndpointBackend,
    OwnerGoneError,
    ServerBackend,
    StoreQueryError,
    _read_ipc,
    console_batches,
)
from dossier_runtime.storeserver import StoreEndpoint, read_endpoint

__all__ = ["EMBEDDED_DATABASE", "QueryResult", "Store", "StoreBusyError", "StoreQueryError", "open_store"]

Role = Literal["reader", "writer"]
_T = TypeVar("_T")
EMBEDDED_DATABASE: Final = "dossier"
STORE_SUBDIR: Final = "store"
_OWNER_WAIT_S: Final = 8.0

_local_lock = threading.Lock()
_local_open: dict[Path, int] = {}  # chDB paths this process has open, with a reference count


class StoreBusyError(StoreError):
    """The embedded store is held by another process in a way that excludes this use."""


@dataclasses.dataclass(frozen=True)
class QueryResult:
    """Column names and rows (tuples) of a query."""

    column_names: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def named(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name (for :func:`schemas.rendering.render`)."""
        return [dict(zip(self.column_names, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row (None when there are no rows)."""
        return self.rows[0][0] if self.rows and self.rows[0] else None


def table_to_result(table: pa.Table) -> QueryResult:
    columns = [_column_values(table.column(i)) for i in range(table.num_columns)]
    rows = list(zip(*columns, strict=True)) if columns else []
    return QueryResult(tuple(table.column_names), rows)


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    """Python values of a column; text that is not UTF-8 shows its bytes as ``\\xNN`` instead of failing."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz and kind.unit != "ns" and (zone := _zone(kind.tz)) is not None:
        return _zoned_datetimes(column, zone)
    try:
        values: list[Any] = column.to_pylist()
        return values
    except UnicodeDecodeError:
        if not pa.types.is_string(column.type):
            raise
        raw = column.cast(pa.binary()).to_pylist()
        return [None if v is None else v.decode("utf-8", errors="backslashreplace") for v in raw]


_UTC: Final = ZoneInfo("UTC")


@functools.cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # an offset such as +07:00: pyarrow's own conversion handles it


def _zoned_datetimes(column: pa.ChunkedArray, zone: ZoneInfo) -> list[Any]:
    """The aware datetimes of a time zone's timestamps, from the same instants read without the zone (UTC clock).

    The values ``to_pylist`` would give, without its path for zoned timestamps: that path asks whether
    pandas is installed, which imports it, about a quarter of a second of every command that shows a time.
    Each chunk is viewed as zoneless (the same buffers), not cast: a cast imports ``pyarrow.compute`` (~30 ms).
    """
    naive = pa.timestamp(column.type.unit)
    values: list[Any] = [v for chunk in column.chunks for v in chunk.view(naive).to_pylist()]
    for i, value in enumerate(values):
        if value is not None:
            values[i] = value.replace(tzinfo=_UTC).astimezone(zone)  # in UTC itself, astimezone returns it as it is
    return values


class Store:
    """A connection to the dossier store; see the module docstring for the API."""

    def __init__(
        self,
        backend: Backend,
        *,
        role: Role,
        location: str,
        endpoint: StoreEndpoint | None = None,
        local_path: Path | None = None,
        reopen: Callable[[], Store] | None = None,
    ) -> None:
        self._backend = backend
        self.role = role
        self.location = location
        self._endpoint = endpoint
        self._local_path = local_path
        self._reopen = reopen  # through an owner's endpoint: how to open the store again when the owner goes
        self._closed = False

    @property
    def kind(self) -> str:
        """``embedded`` (this process), ``endpoint`` (through the owning process) or ``server``."""
        return self._backend.kind

    @property
    def database(self) -> str:
        return str(getattr(self._backend, "database", ""))

    @property
    def local_path(self) -> Path | None:
        """The embedded engine's directory (``<data dir>/store``) when this process holds it, else None."""
        return self._local_path if self.kind == "embedded" else None

    def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, settings: Mapping[str, Any] | None = None
    ) -> QueryResult:
        return table_to_result(self.query_arrow(sql, parameters, settings=settings))

    def query_arrow(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, settings: Mapping[str, Any] | None = None
    ) -> pa.Table:
        batches = list(self._streamed(lambda backend: backend.batches(sql, parameters, _settings(settings))))
        if not batches:
            return pa.table({})
        return pa.Table.from_batches(batches)

    def query_batches(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, settings: Mapping[str, Any] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream a big result batch by batch; memory stays bounded by one ClickHouse block."""
        if isinstance(self._backend, ChdbBackend):
            for chunk in self._backend.stream(sql, parameters, _settings(settings)):
                yield from _read_ipc(chunk)
        else:
            yield from self._streamed(lambda backend: backend.batches(sql, parameters, _settings(settings)))

    def query_console(self, sql: str, parameters: Mapping[str, Any] | None, limits: ConsoleLimits) -> QueryResult:
        """An inspector's checked statement (:mod:`dossier_runtime.sqlguard`), on a session locked with ``limits``."""
        batches = list(self._streamed(lambda backend: console_batches(backend, sql, parameters, limits.settings())))
        return table_to_result(pa.Table.from_batches(batches) if batches else pa.table({}))

    def command(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, settings: Mapping[str, Any] | None = None
    ) -> None:
        self._owner_retry(lambda: self._backend.command(sql, parameters, _settings(settings)), reads=True)

    def _owner_retry(self, call: Callable[[], _T], *, reads: bool) -> _T:
        """``call()``; when the owner it went through has gone, once more on the store opened again.

        A read goes again whatever happened to it; a write only when it surely did not run (the owner refused
        the connection or answered that it was closing), so nothing is recorded twice.
        """
        try:
            return call()
        except OwnerGoneError as exc:
            if self._reopen is None or not (reads or exc.ran is False):
                raise
            self._adopt(self._reopen())
        return call()

    def _streamed(self, stream: Callable[[Backend], Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
        """``stream(backend)``, opened again on the store opened again when its owner went before the first batch."""

        def opened() -> tuple[Iterator[pa.RecordBatch], pa.RecordBatch | None]:
            batches = stream(self._backend)
            return batches, next(batches, None)

        batches, first = self._owner_retry(opened, reads=True)
        if first is not None:
            yield first
            yield from batches

    def _adopt(self, other: Store) -> None:
        """Go on with ``other``'s connection: the owner this store read through has handed the store over."""
        self._backend.close()
        self._backend, self._endpoint, self._local_path = other._backend, other._endpoint, other._local_path
        self.location, self._reopen = other.location, other._reopen
        other._closed = True  # what it holds is this store's now, closed by this store's close()

    def insert_bytes(
        self,
        statement: str,
        fmt: str,
        chunks: Iterable[bytes],
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert raw bytes in a ClickHouse input format; ``statement`` is ``INSERT INTO t (cols)``."""
        self._require_writer()
        return self._backend.insert(statement, fmt, chunks, parameters)

    def insert_rows(self, table: str, column_names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert Python rows (through Arrow); for small tables: catalogues, dead letters."""
        self._require_writer()
        materialised = list(rows)
        if not materialised:
            return 0
        columns = list(zip(*materialised, strict=True))
        arrow = pa.table({name: pa.array(list(col)) for name, col in zip(column_names, columns, strict=True)})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, arrow.schema) as writer:
            writer.write_table(arrow)
        cols = ", ".join(f"`{name}`" for name in column_names)
        self._backend.insert(f"INSERT INTO `{table}` ({cols})", "ArrowStream", [sink.getvalue().to_pybytes()], None)
        return len(materialised)

    def append(self, table: str, rows: bytes) -> int:
        """Append JSONEachRow ``rows`` to a record table (:data:`RECORD_TABLES`), whatever this store's role.

        The one write a reader may make: the integrity ledger, when this process opened the store itself (or on
        a server, where the user's grants decide). Through another process's endpoint it is refused: the owner
        writes no rows a reader made (:meth:`record_run`).
        """
        if table not in RECORD_TABLES:
            raise StoreError(f"{table} is not a record table; only {', '.join(sorted(RECORD_TABLES))} take appends")
        return self._backend.append(table, rows)

    def record_run(self, entry: Entry) -> Recorded:
        """Put a verify run on the integrity ledger; what went on record comes back.

        A process that opened the store (or a server's user) writes the run's rows itself. Through another
        process's endpoint only the run's claim is sent (the table's UUID, the parts it read): the owner checks
        it, recomputes those parts' hashes and records what it found (:mod:`dossier_runtime.ledgerrecord`).
        """
        return self._owner_retry(lambda: self._record_run(entry), reads=False)

    def _record_run(self, entry: Entry) -> Recorded:
        if isinstance(self._backend, EndpointBackend):
            return Recorded.from_json(self._backend.record_run(entry.claim().to_json()))
        write_ledger(self.append, entry)
        return entry.recorded()

    def access_refusal(self) -> str | None:
        """Why an access to this store could not be recorded now (None when it can): asked before an inspection.

        The log must exist and, when this process opened an embedded store, its directory must take writes.
        Through an owner's endpoint or on a server the append itself is the proof (the owner or the grants).
        """
        if not self._owner_retry(lambda: accessrecord.exists(_rows(self._backend)), reads=True):
            return "the store has no access log (it predates migration 0013): run `dossier consume migrate`"
        if isinstance(self._backend, ChdbBackend) and not os.access(self._backend.path, os.W_OK):
            return f"the store in {self._backend.path} is read-only"
        return None

    def record_access(self, access: Access) -> accessrecord.Entry:
        """Chain ``access`` onto the access log (:mod:`dossier_runtime.accessrecord`), whatever this store's role.

        Through another process's endpoint the owner chains and appends it (one append at a time); here it
        goes on a writing session of its own. :class:`AccessLogError` when it cannot be recorded.
        """
        try:
            return self._owner_retry(lambda: self._record_access(access), reads=False)
        except AccessLogError:
            raise
        except (StoreError, KeyError, ValueError) as exc:
            raise AccessLogError(f"the access log refused the entry: {exc}") from exc

    def _record_access(self, access: Access) -> accessrecord.Entry:
        if isinstance(self._backend, EndpointBackend):
            answer = self._backend.record_access(access.to_json())
            return accessrecord.Entry(int(answer["seq"]), str(answer["prev_hash"]), access, str(answer["hash"]))
        with _writing(self._backend) as writer:
            return accessrecord.append(_rows(writer), _jsonl_insert(writer), access)

    def _require_writer(self) -> None:
        if self.role != "writer":
            raise StoreError("this store was opened for reading; writes need open_store(..., role='writer')")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._endpoint is not None:
                self._endpoint.close()
        finally:
            try:
                self._backend.close()
            finally:
                if self._local_path is not None:
                    with _local_lock:
                        _local_open[self._local_path] -= 1
                        if _local_open[self._local_path] <= 0:
                            del _local_open[self._local_path]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rows(backend: Backend) -> accessrecord.QueryFn:
    """``query(sql, params) -> rows`` on ``backend``."""

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        batches = list(backend.batches(sql, params, None))
        return table_to_result(pa.Table.from_batches(batches) if batches else pa.table({})).rows

    return query


def _jsonl_insert(backend: Backend) -> accessrecord.InsertFn:
    return lambda statement, rows: backend.insert(statement, "JSONEachRow", [rows], None)


@contextlib.contextmanager
def _writing(backend: Backend) -> Iterator[Backend]:
    """``backend`` if it writes, else a writing session of its own on the same store (closed after)."""
    if isinstance(backend, ChdbBackend) and backend.readonly:
        writer: Backend = ChdbBackend(backend.path, backend.database, readonly=False)
    elif isinstance(backend, ServerBackend) and backend.readonly:
        writer = ServerBackend(backend.server, readonly=False)
    else:
        yield backend
        return
    try:
        yield writer
    finally:
        writer.close()


def _settings(settings: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not settings:
        return None
    return {str(k): str(int(v) if isinstance(v, bool) else v) for k, v in settings.items()}


def store_path(settings: Settings) -> Path:
    """Directory of the embedded chDB engine."""
    return (settings.data_dir / STORE_SUBDIR).resolve()


def lock_holder(chdb_dir: Path) -> int | None:
    """The pid holding chDB's lock on ``chdb_dir`` (-1 if unknown), or None when it is free.

    Probes ``<dir>/status`` with a non-blocking flock and releases it at once,
    without starting the engine (platform.md B-1).
    """
    status = chdb_dir / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 256).decode(errors="replace")
            digits = text.split("PID:", 1)[1].split("|", 1)[0].strip() if "PID:" in text else ""
            return int(digits) if digits.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _describe_pid(pid: int) -> str:
    if pid <= 0:
        return "another process"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"process {pid}" + (f" ({cmd[:120]})" if cmd else "")


def open_store(settings: Settings, *, role: Role = "reader", serve: bool = True) -> Store:
    """Open the store for reading or writing; raises :class:`StoreError` with what to do.

    ``serve``: when this process opens an embedded store itself, serve reads to
    other processes on loopback while it is open (the default).
    """
    if settings.clickhouse_server is not None:
        backend = ServerBackend(settings.clickhouse_server, readonly=role == "reader")
        return Store(backend, role=role, location=settings.clickhouse_server.location)
    return _open_embedded(settings, role, serve)


def _open_embedded(settings: Settings, role: Role, serve: bool) -> Store:
    chdb_dir = store_path(settings)
    location = f"embedded chDB in {chdb_dir}"
    if role == "reader" and not chdb_dir.is_dir():
        # A reading command never creates a store: a mistyped directory must be named, not filled.
        what = "does not exist" if not settings.data_dir.exists() else f"holds no store (no {STORE_SUBDIR}/ in it)"
        raise StoreError(
            f"no store in {settings.data_dir.resolve()}: the directory {what}; check DOSSIER_DATA_DIR (or "
            "--data-dir), or create a store there with `dossier consume migrate`"
        )
    with _local_lock:
        if chdb_dir in _local_open:  # this process already has the engine: another session on it
            _local_open[chdb_dir] += 1
            backend = ChdbBackend(chdb_dir, EMBEDDED_DATABASE, readonly=role == "reader")
            return Store(backend, role=role, location=location, local_path=chdb_dir)
        if _local_open:
            other = next(iter(_local_open))
            raise StoreBusyError(
                f"this process already has the embedded store {other} open; chDB serves one directory per process"
            )
    deadline = time.monotonic() + _OWNER_WAIT_S
    while True:
        owner = read_endpoint(settings.data_dir)
        if owner is not None:
            if role == "reader":
                backend_ep = EndpointBackend(owner["port"], owner["token"], owner["pid"], EMBEDDED_DATABASE)
                return Store(
                    backend_ep,
                    role=role,
                    location=f"{location} (through {_describe_pid(owner['pid'])})",
                    reopen=functools.partial(_open_embedded, settings, role, serve),
                )
            # A reader that found the directory free owns it for a moment (a status probe): wait it out.
            if owner["role"] != "reader" or time.monotonic() > deadline:
                raise StoreBusyError(
                    f"the store in {chdb_dir} is in use by {_describe_pid(owner['pid'])}; "
                    "stop it (Ctrl-C in its terminal) and run this command again, or run this while it is not running"
                )
            time.sleep(0.1)
            continue
        holder = lock_holder(chdb_dir)
        if holder is None:
            store = _try_open_here(settings, chdb_dir, role, serve, location)
            if store is not None:
                return store
        elif time.monotonic() > deadline:
            raise StoreBusyError(
                f"the store in {chdb_dir} is locked by {_describe_pid(holder)}, which does not serve it to others; "
                "wait for it to finish or stop it, then run this command again"
            )
        if time.monotonic() > deadline:
            raise StoreBusyError(f"could not open the store in {chdb_dir} (another process keeps taking it); retry")
        time.sleep(0.1)


#: The largest read-only store a reading command copies to read it (a copy takes its size in the temp directory).
READ_ONLY_COPY_MAX: Final = 4 * 1024**3


def _read_only_copy(chdb_dir: Path) -> Path:
    """A copy of a store this process cannot write, in the temp directory, removed when the process exits.

    chDB writes to the directory it opens even in read-only mode (its ``status`` file, a lock), so a store on a
    read-only disk or directory cannot be opened in place: a reading command reads a copy, or says why not.
    """
    import atexit
    import shutil
    import sys
    import tempfile

    size = sum(p.stat().st_size for p in chdb_dir.rglob("*") if p.is_file() and not p.is_symlink())
    room = shutil.disk_usage(tempfile.gettempdir()).free
    if size > READ_ONLY_COPY_MAX or size * 2 > room:
        raise StoreError(
            f"the store in {chdb_dir} is read-only (a read-only disk or directory) and chDB must write where it "
            f"opens a store, even to read it; at {size / 1024**3:.1f} GiB it is too big to copy into "
            f"{tempfile.gettempdir()} (up to {READ_ONLY_COPY_MAX / 1024**3:.0f} GiB, and twice its size free): copy "
            "DOSSIER_DATA_DIR to a writable disk and point DOSSIER_DATA_DIR at the copy"
        )
    copy = Path(tempfile.mkdtemp(prefix="dossier-readonly-store-")) / "store"
    atexit.register(shutil.rmtree, copy.parent, True)
    try:
        shutil.copytree(chdb_dir, copy, symlinks=True, ignore=shutil.ignore_patterns("status", "*.lock", "endpoint*"))
    except (OSError, shutil.Error) as exc:
        raise StoreError(f"the store in {chdb_dir} is read-only and could not be copied to read it: {exc}") from None
    print(
        f"warning: the store in {chdb_dir} is read-only; reading a copy of it ({size / 1024**2:,.0f} MiB in "
        f"{copy}): what this command records (the access log, the integrity ledger) is not kept",
        file=sys.stderr,
    )
    return copy


def _try_open_here(settings: Settings, chdb_dir: Path, role: Role, serve: bool, location: str) -> Store | None:
    if chdb_dir.is_dir() and not os.access(chdb_dir, os.W_OK):
        if role != "reader":
            raise StoreError(
                f"the store in {chdb_dir} is read-only (a read-only disk or directory): this command writes to it; "
                "make it writable, or copy DOSSIER_DATA_DIR to a writable disk and point DOSSIER_DATA_DIR there"
            )
        chdb_dir, serve = _read_only_copy(chdb_dir), False
    try:
        chdb_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store in {chdb_dir}: {reason(exc)}; set DOSSIER_DATA_DIR (or --data-dir) to a "
            "directory this user may write"
        ) from None
    with _local_lock:
        try:
            backend = ChdbBackend(chdb_dir, EMBEDDED_DATABASE, readonly=role == "reader")
        except StoreQueryError:
            raise
        except StoreError:
            if lock_holder(chdb_dir) is not None:
                return None  # lost a race with another process: look again
            raise
        _local_open[chdb_dir] = 1
    endpoint = None
    if serve:
        try:
            endpoint = StoreEndpoint(settings.data_dir, chdb_dir, EMBEDDED_DATABASE, role=role)
        except OSError:
            endpoint = None  # no loopback: still usable here, just not shared
    return Store(backend, role=role, location=location, endpoint=endpoint, local_path=chdb_dir)


@contextlib.contextmanager
def opened_store(settings: Settings, *, role: Role = "reader", serve: bool = True) -> Iterator[Store]:
    """``with opened_store(settings) as store:`` — :func:`open_store` closed on exit."""
    store = open_store(settings, role=role, serve=serve)
    try:
        yield store
    finally:
        store.close()
