"""Recording every ``dossier inspect`` command in the store's access log, and ``dossier inspect access-log``.

:class:`AccessLoggedGroup` (the ``inspect`` group's class) puts an :class:`AccessSession` on the click context
and hashes every byte the command writes to stdout. The first :func:`~inspection.cliutil.reader` of a command
asks the store whether its access can be recorded (refusing the command, exit 1, when it cannot) and hands
the store to the session, which appends the entry once the command has ended, whatever its exit code. A
command that never opens the store (``--help``, a usage error, ``inspect rules``) reads nothing and is not
recorded. docs/access-log.md has the whole design.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

import click

from dossier_runtime.accessrecord import Access, AccessLogError
from dossier_runtime.lazygroup import LazyGroup
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from inspection import accesslog
from inspection.cliutil import (
    ACCESS_KEY,
    emit,
    exit_with_findings,
    format_option,
    pass_settings,
    provenance,
    quiet_option,
    reader,
)

_TABLE_COLUMNS: Final = ("seq", "at", "inspector", "command", "params", "exit_code", "rows", "output_sha256")


def inspector_name(settings: Settings) -> str:
    """``DOSSIER_INSPECTOR`` when set, else the OS user (its uid when the system knows no name for it)."""
    if settings.inspector:
        return settings.inspector
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


class _HashingWriter(io.BufferedIOBase):
    """Pass bytes on to ``target`` and hash them; closing it leaves ``target`` open."""

    def __init__(self, target: Any, digest: Any) -> None:
        super().__init__()
        self._target, self._digest = target, digest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._digest.update(data)
        self._target.write(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(self._target.isatty())

    def fileno(self) -> int:
        return int(self._target.fileno())

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.flush()
        super().close()


@dataclasses.dataclass
class AccessSession:
    """One command's run: what goes in its access-log entry."""

    started: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    digest: Any = dataclasses.field(default_factory=hashlib.sha256)
    store: Store | None = None
    inspector: str = ""
    command: str = ""
    params: str = "{}"
    rows: int | None = None

    def attach(self, store: Store, settings: Settings) -> bool:
        """Keep ``store`` to record the access on (True), unless one is kept already (False)."""
        if self.store is not None:
            return False
        ctx = click.get_current_context()
        self.store, self.inspector = store, inspector_name(settings)
        # Named as the umbrella command is installed, whatever the program was called (python -m, a test runner).
        self.command = " ".join(["dossier", *ctx.command_path.split(" ")[1:]])
        self.params = accesslog.recorded_params(ctx.info_name or "", ctx.params)
        return True

    def returned(self, rows: int) -> None:
        self.rows = rows

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Hash what the command writes to stdout, byte for byte (text and binary alike)."""
        original = sys.stdout
        target = getattr(original, "buffer", None)
        if target is None:
            yield
            return
        original.flush()
        wrapper = io.TextIOWrapper(
            _HashingWriter(target, self.digest),  # type: ignore[type-var]
            encoding=original.encoding,
            errors=original.errors,
            line_buffering=bool(original.line_buffering),
        )
        sys.stdout = wrapper
        try:
            yield
        finally:
            with contextlib.suppress(ValueError, OSError):
                wrapper.flush()
            sys.stdout = original
            with contextlib.suppress(ValueError):
                wrapper.detach()

    def record(self, exit_code: int) -> None:
        """Append the entry (when a store was reached) and let the store go; AccessLogError when refused."""
        store, self.store = self.store, None
        if store is None:
            return
        try:
            output = self.digest.hexdigest()
            access = Access(self.started, self.inspector, self.command, self.params, exit_code, self.rows, output,
                            store.kind)  # fmt: skip
            store.record_access(access)
        finally:
            store.close()


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, click.exceptions.Exit | click.ClickException):
        return int(exc.exit_code)
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


class AccessLoggedGroup(LazyGroup):
    """A group whose every command that reads the store leaves an entry in its access log."""

    def invoke(self, ctx: click.Context) -> Any:
        session = AccessSession()
        ctx.meta[ACCESS_KEY] = session
        try:
            with session.capture():
                result = super().invoke(ctx)
        except BaseException as exc:
            code = _exit_code(exc)
            try:
                session.record(code)
            except AccessLogError as refused:
                click.echo(f"this command (exit {code}) is not on record: {refused}", err=True)
                if code == 0:
                    raise click.ClickException(f"its output is not on record: {refused}") from None
            raise
        try:
            session.record(0)
        except AccessLogError as refused:
            raise click.ClickException(f"the output above is not on record: {refused}") from None
        return result


@click.command("access-log")
@click.option("--verify", is_flag=True, help="Recompute the chain; exit 3 naming each entry it does not prove.")
@click.option("--last", type=click.IntRange(min=1), help="List only the last N entries.")
@format_option
@quiet_option
@pass_settings
def access_log_cmd(settings: Settings, verify: bool, last: int | None, fmt: str, quiet: bool) -> None:
    """List who ran which inspection against this store, or prove the list unaltered.

    Every `dossier inspect` command that reads the store is recorded after it ran
    (this one too): who (DOSSIER_INSPECTOR, else the OS user), when it started,
    the command and its parameters (secrets withheld, free text as SHA-256), the
    rows it returned (empty when unknown), the SHA-256 of its stdout and its exit
    code, hash-chained entry after entry. --verify recomputes every hash and
    link and names each entry missing, altered or forked (exit 3).

    \b
    Examples:
      dossier inspect access-log --last 20
      dossier inspect access-log --verify
    """
    with reader(settings) as store:
        rows = accesslog.entries(store)
        computed_on = provenance(store, dossiers=False)
    if verify:
        findings = [f.row() for f in accesslog.verify(rows)]
        head = f"head {rows[-1]['seq']} {rows[-1]['hash']}" if rows else "empty"
        title = f"Access log: {len(rows):,} entries ({head}), {len(findings)} problem(s)"
        emit(findings, fmt, columns=accesslog.FINDING_COLUMNS, computed_on=computed_on, key="findings",
             title=title, quiet=quiet)  # fmt: skip
        exit_with_findings(bool(findings), False)
        return
    shown = rows[-last:] if last else rows
    columns = _TABLE_COLUMNS if fmt == "table" else accesslog.ENTRY_COLUMNS
    title = f"Access log: {len(rows):,} entries"
    emit(shown, fmt, columns=columns, computed_on=computed_on, key="entries", title=title, quiet=quiet)
