"""ClickHouse's parser of this client: a chDB session opened only to parse and format statements.

The console (``dossier inspect sql``) checks a statement on ClickHouse's own
parse tree (``parseQueryToJSON``) and runs the engine's formatting of the
checked tree (``formatQueryFromJSON``); ClickHouse has both from 26.9. A
server of the supported range below that (26.3 to 26.8) has neither, but the
client has chDB 26.9 or later (a dependency of the project), so there the
statement is parsed and formatted here and the server runs the formatted text.

The session is in memory, with no table, and locked with ``readonly = 1``;
the statement only reaches it as a bound string value, so nothing of it runs
here. It is opened once per process, on first use, and kept.

chDB has one engine per process, on one path: while this session is open no
store can open in the process, so :func:`release` closes it before an
embedded store opens (:class:`~dossier_runtime.storebackends.ChdbBackend`);
while an embedded store is open, no session opens here (an embedded store
parses on its own engine, which is this client's chDB)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Final

from dossier_runtime import engineversion
from dossier_runtime.errors import StoreError
from dossier_runtime.store import Store
from dossier_runtime.storebackends import ChdbBackend

#: The engine functions the console parses and formats with, and the release that has them.
FUNCTIONS: Final = ("parseQueryToJSON", "formatQueryFromJSON")
SINCE: Final = (26, 9)
_MEMORY: Final = ":memory:"

_lock = threading.Lock()
_session: Store | None = None


class ParserUnavailableError(StoreError):
    """This process cannot parse here; the message says why."""


def local_parser() -> Store:
    """The parse-only session of this process, opened on first use; :class:`ParserUnavailableError` if none can be."""
    global _session
    with _lock:
        if _session is None:
            _session = _open()
        return _session


def _open() -> Store:
    import chdb

    version = str(getattr(chdb, "engine_version", ""))
    engine = f"this client's chDB (ClickHouse {version or '?'})"
    found = engineversion.release(version)
    if found is None or found < SINCE:
        raise ParserUnavailableError(
            f"neither has {engine}: install chdb-core {SINCE[0]}.{SINCE[1]} or later here "
            f"(pip install -U 'chdb-core>={SINCE[0]}.{SINCE[1]}')"
        )
    try:
        backend = ChdbBackend(Path(_MEMORY), "default", readonly=True, locked={})
    except StoreError as exc:
        raise ParserUnavailableError(f"{engine} cannot open a session to parse in ({exc})") from exc
    return Store(backend, role="reader", location=f"{engine}, parsing only")


def is_parse_path(path: Path) -> bool:
    return str(path) == _MEMORY


def release() -> None:
    """Close the session if it is open, so that an embedded store can open in this process."""
    global _session
    with _lock:
        if _session is not None:
            _session.close()
            _session = None
