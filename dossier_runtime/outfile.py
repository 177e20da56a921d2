"""Output files written whole or not at all, and a full or read-only disk said in one sentence.

Every command that writes a file the user named (``--out``, ``--rejected-out``, the simulator's directory)
writes it through :func:`atomic_output`: a temporary file in the same directory, flushed and fsynced, then
renamed over the target. A failure (a full disk, a file-size limit, an interruption) removes the temporary
file, so neither a half file nor a ``.tmp`` is left, and the target keeps what it held before. An
:class:`OSError` becomes an :class:`OutputFileError` whose message names the path and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, Literal, overload

from dossier_runtime.errors import RuntimeSetupError

TMP_SUFFIX: Final = ".tmp"


class OutputFileError(RuntimeSetupError):
    """An output file could not be written; nothing of it was left behind."""


def output_error(exc: OSError, path: Path, where: Path | None = None) -> OutputFileError:
    """One sentence for ``exc`` raised while writing ``path`` (in the directory ``where``, default its parent).

    ``where == path``: ``path`` is a directory of output files, none of which was written.
    """
    where = where or path.parent
    lost = "nothing was written to it" if where == path else f"{path} was not written"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        text = f"no space left on the device of {where}: {lost}; free some space or write elsewhere, then run again"
    elif code == errno.EFBIG:
        text = f"{'a file' if where == path else path} would be larger than this process may write (file-size limit, "
        text += f"ulimit -f): {lost}; raise the limit or write elsewhere"
    elif code == errno.EROFS:
        text = f"read-only file system: {path} cannot be written; write it to a writable disk"
    elif code in (errno.EACCES, errno.EPERM):
        text = f"read-only directory {where} (permission denied): {path} cannot be written; write it where you may"
    elif code == errno.ENOENT:
        text = f"{where} does not exist: {path} cannot be written; create the directory first"
    else:
        text = f"cannot write {path}: {exc.strerror or exc}; nothing of it was left behind"
    return OutputFileError(text)


def reason(exc: OSError) -> str:
    """What a failed write ran into, in a few words (for messages that are not about one output file)."""
    return {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "no space left on the device (quota)",
        errno.EFBIG: "the file-size limit (ulimit -f)",
        errno.EROFS: "read-only file system",
        errno.EACCES: "read-only directory (permission denied)",
        errno.EPERM: "read-only directory (operation not permitted)",
    }.get(exc.errno or 0, exc.strerror or str(exc))


@overload
def atomic_output(path: Path, *, binary: Literal[True]) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_output(
    path: Path, *, binary: Literal[False] = False, newline: str | None = None
) -> contextlib.AbstractContextManager[IO[str]]: ...
def atomic_output(path: Path, *, binary: bool = False, newline: str | None = None) -> Any:
    """A handle whose content replaces ``path`` only when the block ends without an exception."""
    return _atomic_output(path, binary, newline)


@contextlib.contextmanager
def _atomic_output(path: Path, binary: bool, newline: str | None) -> Iterator[IO[Any]]:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    except OSError as exc:
        raise output_error(exc, path) from None
    try:
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, RuntimeSetupError):
            raise output_error(exc, path) from None
        raise


def write_output(path: Path, content: str | bytes) -> None:
    """``path`` holds ``content``, whole, or is left as it was (see :func:`atomic_output`)."""
    if isinstance(content, bytes):
        with atomic_output(path, binary=True) as out:
            out.write(content)
    else:
        with atomic_output(path) as text:
            text.write(content)


def make_directory(path: Path) -> None:
    """``mkdir -p``, a failure said as :func:`output_error` says it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, path, path.parent) from None


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """A hidden directory inside ``out`` to write a set of files into, moved into ``out`` when the block ends.

    Each file arrives whole (a rename in the same file system); on a failure the staging directory and
    everything in it is removed, and ``out`` keeps what it held before.
    """
    created = not out.exists()
    make_directory(out)
    stage = out / f".staging-{secrets.token_hex(4)}{TMP_SUFFIX}"
    done = False
    try:
        stage.mkdir()
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, out / item.name)
        done = True
    except OSError as exc:
        raise output_error(exc, out, out) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not done:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty: the directory this call made
