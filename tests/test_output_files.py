"""Commands write their files whole or not at all, and say a full or read-only disk in one sentence.

A file-size limit (``RLIMIT_FSIZE``, set in the child process only) makes writes fail with EFBIG the way a full
disk fails them with ENOSPC, without root; a read-only directory is ``chmod 0o500``, or for root (whom
permissions do not stop) a tmpfs mounted read-only. After a failure the target holds what it held before, and
no temporary file is left."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dossier_runtime.outfile import OutputFileError, atomic_output, output_error, staged_directory, write_output

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
AS_ROOT = os.geteuid() == 0


def _limit(size: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    return apply


def dossier(*args: str, data: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dossier_audit", *args],
        env={**os.environ, "DOSSIER_DATA_DIR": str(data), "DOSSIER_PSEUDONYM_KEY": "k" * 32},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit(limit) if limit else None,  # the child only, before exec
        check=False,
    )


def one_sentence(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp") or ".staging-" in str(p))


# --- the helper -------------------------------------------------------------------------------------------


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("before\n")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write("half of it")
        raise RuntimeError("interrupted")
    assert target.read_text() == "before\n" and os.listdir(tmp_path) == ["out.jsonl"]
    write_output(target, "after\n")
    assert target.read_text() == "after\n" and os.listdir(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "no space left on the device of /x/dir: /x/dir/out.csv was not written"),
        (errno.EDQUOT, "no space left on the device of /x/dir"),
        (errno.EROFS, "read-only file system: /x/dir/out.csv cannot be written"),
        (errno.EACCES, "read-only directory /x/dir (permission denied): /x/dir/out.csv cannot be written"),
        (errno.EFBIG, "/x/dir/out.csv would be larger than this process may write (file-size limit, ulimit -f)"),
    ],
)
def test_each_disk_failure_is_one_sentence_naming_the_path(code: int, said: str) -> None:
    message = str(output_error(OSError(code, os.strerror(code)), Path("/x/dir/out.csv")))
    assert message.startswith(said) and "\n" not in message


def test_a_staged_directory_moves_in_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    out.mkdir()
    (out / "summary.json").write_text("old")
    with pytest.raises(OutputFileError, match="no space left on the device of"), staged_directory(out) as stage:
        (stage / "summary.json").write_text("new")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in out.iterdir()] == ["summary.json"] and (out / "summary.json").read_text() == "old"
    with staged_directory(out) as stage:
        (stage / "summary.json").write_text("new")
    assert [p.name for p in out.iterdir()] == ["summary.json"] and (out / "summary.json").read_text() == "new"


# --- the commands, at a file-size limit (EFBIG) -----------------------------------------------------------


def test_simulate_at_a_file_size_limit_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    first = dossier("produce", "simulate", "--dossiers", "20", "--out", str(out), "-q", data=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    done = dossier(
        "produce", "simulate", "--dossiers", "500", "--seed", "2", "--out", str(out), "-q", data=tmp_path / "d",
        limit=1_500_000,
    )  # fmt: skip
    sentence = one_sentence(done)
    assert "nothing was simulated" in sentence and "file-size limit" in sentence, sentence
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []
    fresh = tmp_path / "fresh"
    done = dossier("produce", "simulate", "--dossiers", "500", "--out", str(fresh), data=tmp_path, limit=1_500_000)
    assert "file-size limit" in one_sentence(done) and not fresh.exists()


def test_import_and_seal_at_a_file_size_limit_keep_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "imported.jsonl"
    out.write_text("old\n")
    csv = str(DATA / "qtxl_phuong.csv")
    done = dossier(
        "produce", "import", csv, "--procedure-code", "2.000635", "--out", str(out), data=tmp_path, limit=3000
    )
    assert f"{out} would be larger than this process may write" in one_sentence(done)
    assert out.read_text() == "old\n" and leftovers(tmp_path) == []
    good = tmp_path / "good.jsonl"
    done = dossier("produce", "import", csv, "--procedure-code", "2.000635", "--out", str(good), data=tmp_path)
    assert done.returncode == 0, done.stderr
    sealed = tmp_path / "sealed.jsonl"
    done = dossier("produce", "seal", str(good), "--out", str(sealed), data=tmp_path, limit=3000)
    assert "file-size limit" in one_sentence(done) and not sealed.exists() and leftovers(tmp_path) == []


def test_export_at_a_file_size_limit_keeps_the_old_output(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    data = tmp_path / "data"
    assert dossier("produce", "simulate", "--dossiers", "40", "--out", str(sim), "-q", data=data).returncode == 0
    loaded = dossier("consume", "load", str(sim / "events-00000.avro"), "-q", data=data)
    assert loaded.returncode == 0, loaded.stderr
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"export.{fmt}"
        out.write_text("old")
        done = dossier("inspect", "export", "--format", fmt, "--out", str(out), "-q", data=data, limit=20_000)
        assert "file-size limit" in one_sentence(done), done.stderr
        assert out.read_text() == "old" and leftovers(tmp_path) == [], fmt
    done = dossier("inspect", "export", "--format", "csv", "--out", str(tmp_path / "whole.csv"), "-q", data=data)
    assert done.returncode == 0 and (tmp_path / "whole.csv").stat().st_size > 20_000


# --- read-only directories --------------------------------------------------------------------------------


def test_read_only_directories_are_said_in_one_sentence(lockable: tuple[Path, Callable[[], None]]) -> None:
    locked, lock = lockable
    lock()
    done = dossier("produce", "simulate", "--dossiers", "5", "--out", str(locked / "sim"), "-q", data=locked)
    assert "nothing was simulated: read-only" in one_sentence(done)
    out = locked / "x.jsonl"
    csv = str(DATA / "qtxl_phuong.csv")
    done = dossier("produce", "import", csv, "--procedure-code", "2.000635", "--out", str(out), data=locked)
    sentence = one_sentence(done)
    assert f"read-only file system: {out} cannot be written" in sentence or (
        f"read-only directory {locked} (permission denied): {out} cannot be written" in sentence
    )
    assert os.listdir(locked) == []


# --- a read-only data directory and a read-only store -----------------------------------------------------


@pytest.fixture
def lockable(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A directory and a function that makes it read-only: a read-only tmpfs as root, ``chmod 0o500`` otherwise."""
    place = tmp_path / "lockable"
    place.mkdir()

    def chmod(mode: int) -> None:
        for directory in [place, *(p for p in place.rglob("*") if p.is_dir())]:
            directory.chmod(mode)

    def remount() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(place)], check=True)

    if not AS_ROOT:
        yield place, lambda: chmod(0o500)
        chmod(0o700)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(place)], check=False).returncode:
        pytest.skip("root without mount: no way to make a directory read-only for root")
    try:
        yield place, remount
    finally:
        subprocess.run(["umount", str(place)], check=False)


def test_a_read_only_store_is_read_from_a_copy_and_refuses_writes_in_one_sentence(
    tmp_path: Path, lockable: tuple[Path, Callable[[], None]]
) -> None:
    data, lock = lockable
    empty = data / "empty"
    empty.mkdir()
    sim = tmp_path / "sim"
    assert dossier("produce", "simulate", "--dossiers", "10", "--out", str(sim), "-q", data=data).returncode == 0
    assert dossier("consume", "load", str(sim / "events-00000.avro"), "-q", data=data).returncode == 0
    lock()
    done = dossier("consume", "migrate", data=empty)
    assert f"cannot create the store in {empty / 'store'}: read-only" in one_sentence(done)
    done = dossier("consume", "load", str(sim / "events-00000.avro"), data=data)
    assert f"the store in {data / 'store'} is read-only" in one_sentence(done) and "Code:" not in done.stderr
    done = dossier("inspect", "verify", data=data)
    assert done.returncode == 0 and "Integrity: OK" in done.stdout, done.stderr
    assert "is read-only; reading a copy of it" in done.stderr and "Code:" not in done.stderr
