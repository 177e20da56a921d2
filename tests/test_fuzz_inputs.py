"""Hostile input, fuzzed: every input ends in a clear error or a dead letter, never a traceback or a hang.

Five targets, each through the library functions behind its command (in process, for speed): the
single-object decoder (``schemas.codec.decode``, the live loader's reader), the Avro container loader
(``consume load``'s header, block and schema checks and its block-by-block fallback, and ``publish --check``'s
reader), the JSON Lines paths (``consume load``'s line reader and ``publish --check``), the importer
(``produce import`` of CSV, JSON and JSON Lines) and the catalogue loaders (``consume load-catalogue``'s and
the importer's ``--catalogue``). Seeds are real: a container and its JSON Lines from the simulator, the
QuaTrinhXuLy samples of ``tests/data``. Inputs are byte mutations of the seeds and structure-aware hostile
values put into one field (deep nesting, 5,000-digit integers, lone surrogates, years 0001 and 9999, NaN, …).

Each example runs under ``signal.alarm``: a hang fails it. ``DOSSIER_FUZZ_EXAMPLES`` sets the examples per
target (CI: 200); ``DOSSIER_FUZZ_STORE_EXAMPLES`` those of the one target that loads into a real chDB store
(CI: 12; about 0.25 s each). RELIABILITY.md records the long runs::

    DOSSIER_FUZZ_EXAMPLES=100000 .venv/bin/pytest tests/test_fuzz_inputs.py -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import fastavro
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers import bulk
from consumers.catalogue import TABLES, CatalogueError, read_catalogue_file
from consumers.jsonlfile import _parse as parse_event_line
from producers.importer import ImportResult, import_files
from producers.importmapping import DossierDefaults, ImportMapping
from producers.importrows import ProcedureCatalogueError, read_procedures
from producers.inputs import write_event_file
from producers.validation import check_paths
from schemas.codec import decode, encode
from schemas.errors import ContractError
from schemas.registry import current_schema

ROOT: Final = Path(__file__).resolve().parent.parent
DATA: Final = ROOT / "tests" / "data"
EXAMPLES: Final = int(os.environ.get("DOSSIER_FUZZ_EXAMPLES", "200"))
STORE_EXAMPLES: Final = int(os.environ.get("DOSSIER_FUZZ_STORE_EXAMPLES", "12"))
#: Seconds one example may take before it counts as a hang (the slowest legitimate one takes ~0.3 s).
HANG_SECONDS: Final = int(os.environ.get("DOSSIER_FUZZ_HANG_SECONDS", "10"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class HangError(AssertionError):
    """An example ran longer than HANG_SECONDS."""


@contextlib.contextmanager
def time_limit(seconds: int = HANG_SECONDS) -> Iterator[None]:
    def expired(_signum: int, _frame: Any) -> None:
        raise HangError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- seeds -------------------------------------------------------------------------------------------------


@functools.cache
def seeds() -> dict[str, Any]:
    """Five dossiers from the simulator: events, a container of several blocks (null and deflate), catalogues.

    A cached function, not a fixture: Hypothesis prints a failing example's arguments, and these are big.
    """
    out = Path(tempfile.mkdtemp(prefix="fuzz-seed-"))
    done = subprocess.run(
        [sys.executable, "-m", "dossier_audit", "produce", "simulate", "--dossiers", "5", "--out", str(out), "--jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = (out / "events-00000.jsonl").read_text(encoding="utf-8").splitlines()[:24]
    with (out / "events-00000.avro").open("rb") as handle:
        records = list(fastavro.reader(handle))[:24]
    containers = {}
    for codec in ("null", "deflate"):
        buf = io.BytesIO()
        fastavro.writer(buf, current_schema().parsed, records, codec=codec, sync_interval=2000)
        containers[codec] = buf.getvalue()
    catalogue = {name: (out / name).read_text(encoding="utf-8").splitlines()[:4] for name in TABLES}
    shutil.rmtree(out)
    return {"lines": lines, "containers": containers, "catalogue": catalogue}


# --- strategies --------------------------------------------------------------------------------------------

#: Values that broke a reader once (issue #18) and their relatives.
HOSTILE_SCALARS: Final = [
    "\ud800",
    "a\udfffb",
    "9" * 5000,
    "-" + "9" * 4400,
    "0001-01-01T00:00:00+07:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-07:00",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01",
    "9999-12-31",
    "00010101000000",
    "00010101065959",
    "99991231235959",
    "20991231120000",
    "19000101080000",
    "",
    " ",
    "\x00",
    "\u202e",
    "NaN",
    "Infinity",
    "x" * 70_000,
    "' OR '1'='1",
    "{v:String}",
]
#: Raw JSON texts put in place of a value (what ``json.dumps`` cannot write).
HOSTILE_JSON: Final = [
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "[" * 200 + "]" * 200,
    "9" * 5000,
    "-" + "9" * 5000,
    "1e999999",
    "NaN",
    "-Infinity",
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\ud83d\\ude00"',
    "18446744073709551616",
    "-9223372036854775809",
    "2147483648",
    "1.5",
    "true",
    "null",
    "{}",
    "[]",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def replaced(text: str, key: str, raw: str) -> str:
    """``text`` (one JSON object) with the value of ``key`` written as ``raw`` (any text, JSON or not)."""
    obj = json.loads(text)
    marker = "\x00MARK\x00"
    obj[key] = marker
    return json.dumps(obj, ensure_ascii=False).replace(json.dumps(marker), raw, 1)


@st.composite
def hostile_value(draw: st.DrawFn) -> str:
    """A value as raw JSON text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(HOSTILE_JSON))
    if kind == 1:
        return json.dumps(draw(st.sampled_from(HOSTILE_SCALARS)))
    if kind == 2:
        return json.dumps(draw(json_values))
    return draw(st.sampled_from(HOSTILE_JSON[:4])) if draw(st.booleans()) else draw(st.text(max_size=20))


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, *, head: int | None = None) -> bytes:
    """``seed`` with a few byte-level edits (set, insert, delete, truncate, repeat), within ``head`` bytes if given."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        limit = min(len(data), head) if head else len(data)
        at = draw(st.integers(0, max(0, limit - 1)))
        op = draw(st.integers(0, 5))
        if op <= 1 and data:
            data[at] = draw(st.integers(0, 255))
        elif op == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif op == 3:
            del data[at : at + draw(st.integers(1, 64))]
        elif op == 4:
            data = data[:at]
        else:  # an interesting varint in place: negative, huge, or zero
            varint = draw(st.sampled_from([b"\x01", b"\x03", b"\xff\xff\xff\xff\x0f", b"\x80" * 11, b"\x00", b"\x7f"]))
            data[at : at + len(varint)] = varint
    return bytes(data)


def _line_with_hostile(lines: list[str], draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(lines))
    return replaced(line, draw(st.sampled_from(sorted(json.loads(line)))), draw(hostile_value()))


# --- 1. the single-object decoder --------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_the_single_object_decoder_raises_only_contract_errors(data: st.DataObject) -> None:
    from schemas.jsonform import from_json_line

    message = encode(from_json_line(data.draw(st.sampled_from(seeds()["lines"]))), validate=False)
    hostile = data.draw(st.one_of(mutated(message), st.binary(max_size=400).map(lambda b: message[:10] + b)))
    with time_limit():
        try:
            decode(hostile)
        except ContractError as exc:
            assert str(exc)


# --- 2. the Avro container loader --------------------------------------------------------------------------


def _load_without_store(path: Path) -> None:
    """What ``consume load`` does before ClickHouse parses the blocks, and its block-by-block fallback."""
    try:
        with bulk._opened(path) as (buf, header_end, blocks):
            bulk._isolate_bad_blocks(buf, header_end, blocks, bulk.file_topic(path), "(fuzz)")
    except bulk.InputFileError as exc:
        assert str(exc).startswith(str(path)), exc
    except bulk.StoreError as exc:  # no block is bad: ClickHouse would have been the one to refuse
        assert "ClickHouse refused" in str(exc)


@FUZZ
@given(data=st.data())
def test_the_container_loader_refuses_corrupt_files_in_one_sentence(data: st.DataObject, tmp_path: Path) -> None:
    seed = seeds()["containers"][data.draw(st.sampled_from(["null", "deflate"]))]
    # half the edits in the header (schema, metadata, sync marker), where the loops were
    content = data.draw(
        st.one_of(mutated(seed, head=2200), mutated(seed), st.binary(max_size=64).map(b"Obj\x01".__add__))
    )
    path = tmp_path / "fuzz.avro"
    path.write_bytes(content)
    with time_limit():
        _load_without_store(path)
        checked = check_paths([path])  # publish --check's reader: problems, never an exception
    assert checked.problems or checked.accepted or not content


# --- 3. the JSON Lines paths -------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_json_lines_become_dead_letters_or_problems(data: st.DataObject, tmp_path: Path) -> None:
    lines = list(seeds()["lines"][:6])
    at = data.draw(st.integers(0, len(lines) - 1))
    if data.draw(st.booleans()):
        lines[at] = _line_with_hostile(lines, data.draw)
        raw = [line.encode("utf-8", "surrogatepass") for line in lines]
    else:
        raw = [line.encode("utf-8") for line in lines]
        raw[at] = data.draw(mutated(raw[at]))
    schema = current_schema().parsed
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(raw) + b"\n")
    with time_limit():
        for line in raw:  # consume load: the Avro body, or why the line is a dead letter
            body = parse_event_line(line, schema)
            assert isinstance(body, bytes) or body
        checked = check_paths([path])  # publish --check
    assert len(checked.accepted) + sum(1 for _ in checked.problems) >= 1


# --- 4. the importer ---------------------------------------------------------------------------------------

_ROWS: Final = [dict(r) for r in csv.DictReader((DATA / "qtxl_phuong.csv").open(encoding="utf-8"))]
_MAPPING: Final = ImportMapping(defaults=DossierDefaults(procedure_code="2.000635"))


def _rows_text(rows: list[dict[str, str]], hostile: tuple[int, str, str], fmt: str) -> bytes:
    index, column, raw = hostile
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines[index] = replaced(lines[index], column, raw)
    if fmt == "jsonl":
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if fmt == "json":
        return ("[" + ",\n".join(lines) + "]").encode("utf-8", "surrogatepass")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    text = out.getvalue().splitlines()
    cells = text[index + 1].split(",")
    cells[list(rows[0]).index(column) % len(cells)] = raw.strip('"')
    text[index + 1] = ",".join(cells)
    return "\n".join(text).encode("utf-8", "surrogatepass")


@FUZZ
@given(data=st.data())
def test_the_importer_lists_problems_and_never_raises(data: st.DataObject, tmp_path: Path) -> None:
    fmt = data.draw(st.sampled_from(["jsonl", "json", "csv"]))
    index = data.draw(st.integers(0, len(_ROWS) - 1))
    column = data.draw(st.sampled_from(sorted(_ROWS[0])))
    content = _rows_text(_ROWS, (index, column, data.draw(hostile_value())), fmt)
    if data.draw(st.integers(0, 3)) == 0:
        content = data.draw(mutated(content))
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(content)
    with time_limit():
        result = import_files([path], _MAPPING, pseudonym_key=b"fuzz" * 8)
        assert isinstance(result, ImportResult)
        assert all(p.reason for p in result.problems)
        if result.events:
            write_event_file(result.events, tmp_path / "out.jsonl")
            write_event_file(result.events, tmp_path / "out.avro")


# --- 5. the catalogue loaders ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_the_catalogue_loaders_refuse_a_bad_line_naming_it(data: st.DataObject, tmp_path: Path) -> None:
    name = data.draw(st.sampled_from(sorted(TABLES)))
    lines = list(seeds()["catalogue"][name])
    at = data.draw(st.integers(0, len(lines) - 1))
    lines[at] = _line_with_hostile(lines, data.draw)
    content = "\n".join(lines).encode("utf-8", "surrogatepass")
    if data.draw(st.integers(0, 3)) == 0:
        content = data.draw(mutated(content))
    path = tmp_path / name
    path.write_bytes(content)
    convert = TABLES[name][2]
    with time_limit():
        try:
            rows = read_catalogue_file(path, convert)
        except CatalogueError as exc:
            assert str(exc).startswith(f"{path}:"), exc
        else:  # what the store's insert_rows builds: a value of the wrong type would fail there, unnamed
            for column in zip(*rows, strict=True):
                pa.array(list(column))
        if name == "procedures.jsonl":
            try:
                read_procedures(tmp_path)
            except ProcedureCatalogueError as exc:
                assert str(exc)


# --- the store: mutated containers loaded into real chDB ---------------------------------------------------


@settings(FUZZ, max_examples=STORE_EXAMPLES)
@given(data=st.data())
def test_mutated_containers_load_into_a_real_store_or_are_refused(data: st.DataObject, fuzz_store: Any) -> None:
    from dossier_runtime.errors import RuntimeSetupError

    sink, work = fuzz_store
    seed = seeds()["containers"][data.draw(st.sampled_from(["null", "deflate"]))]
    handle, name = tempfile.mkstemp(dir=work, suffix=".avro")
    os.close(handle)
    path = Path(name)
    path.write_bytes(data.draw(mutated(seed)))
    from consumers.jsonlfile import load_paths

    with time_limit(60):
        try:
            for loaded in load_paths(sink, [path], work):
                assert loaded.result.received >= 0
        except (bulk.InputFileError, RuntimeSetupError) as exc:
            assert str(path) in str(exc) or "ClickHouse" in str(exc), exc
    path.unlink()
    if _OPEN_AT_START:  # a load leaves no file open (a leak ends a long run in EMFILE)
        # Against what the worker had open when the store was opened (other tests of the worker ran before).
        assert _open_files() < _OPEN_AT_START[0] + 1000  # chDB levels off near 300 (its threads, libraries)


_OPEN_AT_START: list[int] = []  # the process's open files once fuzz_store is open (empty without /proc)


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    from consumers.migrations import migrate
    from consumers.sink import Sink
    from dossier_runtime.settings import Settings
    from dossier_runtime.store import opened_store

    work = tmp_path_factory.mktemp("store")
    with opened_store(Settings(data_dir=work), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store, engine="MergeTree")
        if Path("/proc/self/fd").is_dir():
            _OPEN_AT_START[:] = [_open_files()]
        try:
            yield sink, work
        finally:
            sink.close()


# --- end to end: the commands, in a subprocess, on inputs that once gave a traceback or a hang ------------


def _negative_metadata_length(container: bytes) -> bytes:
    """The header's first key length made -1: the reader once stepped back and read the same bytes forever."""
    assert container[4:5] == b"\x04"  # two metadata entries
    return container[:5] + b"\x01" + container[6:]


def _one_sentence(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_the_commands_answer_hostile_files_in_one_sentence(tmp_path: Path) -> None:
    from tests.test_consumers_support import dossier

    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    looping = tmp_path / "looping.avro"
    looping.write_bytes(_negative_metadata_length(seeds()["containers"]["null"]))
    done = dossier("consume", "load", str(looping), "-q", env=env, timeout=60)
    assert done.returncode == 1 and "looping.avro" in _one_sentence(done)

    lines = seeds()["lines"][:4]
    deep = tmp_path / "deep.jsonl"
    deep.write_text("\n".join([*lines[:3], replaced(lines[3], "reason", "[" * 5000 + "]" * 5000)]) + "\n")
    done = dossier("consume", "load", str(deep), "-q", env=env, timeout=60)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert "nested too deep" in dossier("consume", "dead-letters", "--format", "json", env=env).stdout

    digits = tmp_path / "digits.jsonl"
    digits.write_text(replaced(lines[0], "seq", "9" * 5000) + "\n")
    done = dossier("produce", "publish", "--check", str(digits), env=env, timeout=60)
    assert done.returncode == 3 and "number too long" in done.stderr and "Traceback" not in done.stderr

    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    (catalogue / "units.jsonl").write_text(replaced(seeds()["catalogue"]["units.jsonl"][0], "name", '"\\ud800"'))
    done = dossier("consume", "load-catalogue", str(catalogue), env=env, timeout=60)
    assert done.returncode == 1 and "units.jsonl:1: " in _one_sentence(done) and "surrogate" in done.stderr

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    later = tmp_path / "later.csv"
    later.write_text((DATA / "qtxl_phuong.csv").read_text(encoding="utf-8").replace(",2024", ",2099"))
    for export in (nested, later):
        done = dossier("produce", "import", str(export), "--procedure-code", "2.000635", "--check", env=env)
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert "working calendar has no holiday data for 2099" in done.stderr
