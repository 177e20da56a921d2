"""The store layer against real chDB: queries, read-only readers, the owner's loopback endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dossier_runtime.errors import StoreError
from dossier_runtime.settings import Settings
from dossier_runtime.store import StoreBusyError, StoreQueryError, open_store, opened_store


def test_query_binds_parameters_and_returns_python_types(tmp_path: Path) -> None:
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        store.command(
            "CREATE TABLE t (a Int64, b String, c DateTime64(6, 'UTC'), h FixedString(2)) ENGINE = MergeTree ORDER BY a"
        )
        at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        store.insert_rows("t", ["a", "b", "c", "h"], [(1, "x", at, b"ab"), (2, "y' OR '1'='1", at, b"cd")])
        result = store.query("SELECT a, b, c, h FROM t WHERE b = {b:String}", {"b": "y' OR '1'='1"})
        assert result.column_names == ("a", "b", "c", "h")
        assert result.rows == [(2, "y' OR '1'='1", at, b"cd")]
        assert store.query("SELECT count() FROM t WHERE b = {b:String}", {"b": "x' OR '1'='1"}).scalar() == 0
        assert store.query_arrow("SELECT a FROM t ORDER BY a").column("a").to_pylist() == [1, 2]
        assert sum(b.num_rows for b in store.query_batches("SELECT number FROM numbers(200000)")) == 200000


@pytest.mark.parametrize(
    ("failing", "settings"),
    [
        ("SELECT throwIf(number = 5) FROM numbers(10)", None),  # fails on the first block
        ("SELECT throwIf(number = 50000000) FROM numbers(100000000)", None),  # fails after blocks were made
        ("SELECT number % 99991, groupArray(number) FROM numbers(3e6) GROUP BY 1", {"max_memory_usage": "5000000"}),
        ("SELEC 1", None),  # refused before it runs
    ],
)
def test_the_statement_after_a_failed_one_gets_its_own_result(
    tmp_path: Path, failing: str, settings: dict[str, str] | None
) -> None:
    """chDB 4.4 hands the statement after a failed one the failed one's leftovers (an empty result, or its rows);
    the store sends a sentinel after every failure so that a count read next is the count, not 0 or garbage."""
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        store.command("CREATE TABLE t (a Int64) ENGINE = MergeTree ORDER BY a")
        store.command("INSERT INTO t SELECT number FROM numbers(1234)")
        for read in (store.query, store.query_batches):
            with pytest.raises(StoreQueryError):
                list(read(failing, settings=settings))  # type: ignore[operator]
            assert store.query("SELECT count() FROM t").rows == [(1234,)]
            assert store.query("SELECT 7").rows == [(7,)]
        with pytest.raises(StoreQueryError):
            store.query(failing, settings=settings)
        store.command("INSERT INTO t VALUES (-1)")  # the write after a failure is done, not swallowed
        assert store.query("SELECT count(), min(a) FROM t").rows == [(1235, -1)]


def test_reader_cannot_write(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with opened_store(settings, role="writer", serve=False) as store:
        store.command("CREATE TABLE t (a Int64) ENGINE = MergeTree ORDER BY a")
    with opened_store(settings, serve=False) as reader:
        with pytest.raises(StoreQueryError, match=r"READONLY|readonly"):
            reader.command("INSERT INTO t VALUES (1)")
        with pytest.raises(StoreError):
            reader.insert_rows("t", ["a"], [(1,)])


READER = """
import json, sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store, StoreBusyError
store = open_store(Settings(data_dir=Path(sys.argv[1])))
out = {"kind": store.kind, "count": store.query("SELECT count() FROM t").scalar()}
try:
    store.command("DROP TABLE t")
    out["drop"] = "allowed"
except Exception as exc:
    out["drop"] = type(exc).__name__
try:
    open_store(Settings(data_dir=Path(sys.argv[1])), role="writer")
except StoreBusyError as exc:
    out["writer"] = str(exc)
print(json.dumps(out))
"""


def test_other_process_reads_fresh_data_through_the_owner(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with opened_store(settings, role="writer") as store:
        store.command("CREATE TABLE t (a Int64) ENGINE = MergeTree ORDER BY a")
        store.insert_rows("t", ["a"], [(i,) for i in range(5)])
        done = subprocess.run(
            [sys.executable, "-c", READER, str(tmp_path)], capture_output=True, text=True, timeout=60, check=True
        )
        seen = json.loads(done.stdout)
        assert seen["kind"] == "endpoint"
        assert seen["count"] == 5
        assert seen["drop"] != "allowed"
        assert "in use by process" in seen["writer"] and "stop it" in seen["writer"]
        assert "EmbeddedServer" not in done.stdout + done.stderr
        assert store.query("SELECT count() FROM t").scalar() == 5
    assert not (tmp_path / "store.endpoint.json").exists()


def test_one_embedded_directory_per_process(tmp_path: Path) -> None:
    (tmp_path / "b" / "store").mkdir(parents=True)
    with opened_store(Settings(data_dir=tmp_path / "a"), role="writer", serve=False):
        with pytest.raises(StoreBusyError, match="one directory per process"):
            open_store(Settings(data_dir=tmp_path / "b"))


HOLDER = """
import sys, time
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])))
print(store.kind, flush=True)
time.sleep(1.5)
store.close()
"""


def test_a_writer_waits_for_a_reader_that_owns_the_store_briefly(tmp_path: Path) -> None:
    """A status probe that found the directory free must not make a starting loader give up."""
    settings = Settings(data_dir=tmp_path)
    with opened_store(settings, role="writer", serve=False) as store:
        store.command("CREATE TABLE t (a Int64) ENGINE = MergeTree ORDER BY a")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "embedded"
        with opened_store(settings, role="writer", serve=False) as store:
            store.insert_rows("t", ["a"], [(1,)])
            assert store.query("SELECT count() FROM t").scalar() == 1
    finally:
        holder.wait(timeout=30)


CONTENDER = """
import os, sys
from pathlib import Path
from dossier_runtime.errors import StoreError
from dossier_runtime.storebackends import ChdbBackend, _native_errors_held
with _native_errors_held():
    os.write(2, b"a line of our own, written meanwhile\\n")
try:
    ChdbBackend(Path(sys.argv[1]), "dossier", readonly=True)
except StoreError as exc:
    print("refused:", exc)
"""


#: Holds the store until its stdin closes (not for a fixed time: a loaded machine starts the contender slowly).
HOLDER_UNTIL_TOLD = """
import sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])))
print(store.kind, flush=True)
sys.stdin.read()
store.close()
"""


def test_a_lost_race_for_the_store_prints_no_raw_chdb_line(tmp_path: Path) -> None:
    """chDB writes its own `Code: 76. DB::Exception: Cannot lock file …` to stderr; the user gets our sentence."""
    open_store(Settings(data_dir=tmp_path), role="writer", serve=False).close()  # a store to read
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_UNTIL_TOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "embedded"
        done = subprocess.run(
            [sys.executable, "-c", CONTENDER, str(tmp_path / "store")], capture_output=True, text=True, timeout=60
        )
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.stdout.startswith("refused: cannot open the embedded store in"), done.stdout + done.stderr
    assert "DB::Exception" not in done.stderr
    assert "a line of our own, written meanwhile" in done.stderr


OVERLAPPING_SWAPS = """
import os, threading, time
from dossier_runtime.storebackends import _native_errors_held
inside, first_may_leave, second_may_leave = threading.Event(), threading.Event(), threading.Event()
def first() -> None:
    with _native_errors_held():
        inside.set()
        first_may_leave.wait(10)
def second() -> None:
    with _native_errors_held():
        os.write(2, b"held by the second\\n")
        second_may_leave.wait(10)
one, two = threading.Thread(target=first), threading.Thread(target=second)
one.start()
inside.wait(10)
two.start()
time.sleep(0.5)  # the second swaps in now, while the first is inside, unless the swaps take turns
first_may_leave.set()
one.join()
second_may_leave.set()
two.join()
os.write(2, b"the command's error sentence\\n")
"""


def test_stderr_swaps_of_sessions_connecting_at_once_take_turns(tmp_path: Path) -> None:
    """A sink's two index reads connect at once; the error the command prints afterwards still reaches stderr."""
    done = subprocess.run([sys.executable, "-c", OVERLAPPING_SWAPS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["held by the second", "the command's error sentence"]


def test_zoned_times_read_as_pyarrow_reads_them() -> None:
    """``_column_values`` converts zoned timestamps itself (pyarrow's path imports pandas): the same values,
    the same zones and offsets, the same failures, for UTC, a named zone and an offset, in every unit."""
    import pyarrow as pa

    from dossier_runtime.store import _column_values

    micros = [0, 1_700_000_000_123_456, None, -5_000_000, 253_402_300_799_000_000, -62_135_596_800_000_000]

    def outcome(convert: Any) -> Any:
        try:
            values = convert()
        except (OverflowError, ValueError) as exc:
            return type(exc)
        return [None if v is None else (v, str(v.tzinfo), v.utcoffset()) for v in values]

    for zone in ("UTC", "Asia/Ho_Chi_Minh", "+07:00", "America/New_York"):
        for unit, scale in (("us", 1), ("ms", 1_000), ("s", 1_000_000)):
            for value in micros:
                raw = pa.array([None if value is None else value // scale], pa.int64())
                column = pa.chunked_array([raw.cast(pa.timestamp(unit, tz=zone))])
                assert outcome(lambda c=column: _column_values(c)) == outcome(column.to_pylist), (zone, unit, value)


_NO_PANDAS = """
import sys
from pathlib import Path
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
with opened_store(Settings(data_dir=Path(sys.argv[1])), role="writer", serve=False) as store:
    rows = store.query("SELECT toDateTime64('2024-01-02 03:04:05.000006', 6, 'UTC') AS t, "
                       "toDateTime64('2024-01-02 03:04:05', 6, 'Asia/Ho_Chi_Minh') AS l").rows
    empty = store.query("SELECT number FROM numbers(3) WHERE number > 5")
    print(rows, empty.column_names, empty.rows, "pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""


def test_reading_times_and_empty_results_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas costs a quarter of a second to import, pyarrow.compute ~30 ms, in every command: a store read needs
    neither."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_PANDAS, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("('number',) [] False False"), done.stdout
    assert "datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=zoneinfo.ZoneInfo(key='UTC'))" in done.stdout
    assert "tzinfo=zoneinfo.ZoneInfo(key='Asia/Ho_Chi_Minh')" in done.stdout
