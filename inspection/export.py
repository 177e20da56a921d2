"""``dossier inspect export``: the events of a selection, streamed to CSV, JSON Lines, Parquet, XES or OCEL 2.0.

The rows come out of ClickHouse batch by batch (:meth:`Store.query_batches`),
ordered by (dossier_id, seq), and each batch is written before the next is
read: memory stays bounded by one batch whatever the number of events
(OCEL keeps only the identities of the objects it has seen).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from dossier_runtime.outfile import atomic_output
from dossier_runtime.store import Store
from inspection import ocel, xes
from schemas.events import FIELD_NAMES

FORMATS: Final = ("csv", "jsonl", "parquet", "xes", "ocel")
BINARY: Final = frozenset({"parquet"})


@dataclasses.dataclass(frozen=True)
class ExportResult:
    events: int
    objects: int | None = None


def select_sql(columns: tuple[str, ...], condition: str) -> str:
    cols = ", ".join(f"`{c}`" for c in columns)
    # Columns come from the contract's field list; the condition has bound placeholders only.
    return f"SELECT {cols} FROM events WHERE {condition} ORDER BY dossier_id, seq, event_id"  # noqa: S608


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Hashes as hex text, so every format carries them readably."""
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_fixed_size_binary(column.type) or pa.types.is_binary(column.type):
            column = pa.array([v.hex() if v is not None else None for v in column.to_pylist()], pa.string())
        arrays.append(column)
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _rows(batches: Iterator[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    for batch in batches:
        yield from batch.to_pylist()


def export(
    store: Store,
    fmt: str,
    out: IO[Any],
    *,
    condition: str = "1",
    params: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the selected events to ``out`` (text for csv/jsonl/xes/ocel, binary for parquet)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    columns = {"xes": xes.COLUMNS, "ocel": ocel.COLUMNS}.get(fmt, FIELD_NAMES)
    batches = store.query_batches(select_sql(tuple(columns), condition), dict(params or {}))

    def counted() -> Iterator[pa.RecordBatch]:
        total = 0
        for batch in batches:
            total += batch.num_rows
            yield batch
            if on_batch is not None:
                on_batch(total)

    if fmt == "xes":
        return ExportResult(xes.write(out, _rows(counted()), source or {}))
    if fmt == "ocel":
        n, objects = ocel.write(out, _rows(counted()))
        return ExportResult(n, objects)
    if fmt == "jsonl":
        n = 0
        for row in _rows(counted()):
            out.write(json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False) + "\n")
            n += 1
        return ExportResult(n)
    if fmt == "csv":
        return _csv(out, counted())
    return _parquet(out, counted())


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return _json_value(value)


def _csv(out: IO[str], batches: Iterator[pa.RecordBatch]) -> ExportResult:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELD_NAMES)
    n = 0
    for batch in batches:
        for row in batch.to_pylist():
            writer.writerow([_csv_value(row[c]) for c in FIELD_NAMES])
            n += 1
    return ExportResult(n)


def _parquet(out: IO[bytes], batches: Iterator[pa.RecordBatch]) -> ExportResult:
    n = 0
    writer: pq.ParquetWriter | None = None
    try:
        for raw in batches:
            batch = _plain(raw)
            if writer is None:
                writer = pq.ParquetWriter(out, batch.schema)
            writer.write_table(pa.Table.from_batches([batch]))
            n += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return ExportResult(n)


@contextlib.contextmanager
def opened_output(path: Path | None, fmt: str) -> Iterator[IO[Any]]:
    """``--out FILE``, written whole or not at all (:func:`dossier_runtime.outfile.atomic_output`), or stdout;
    binary for Parquet. A failed export leaves neither a part of the file nor a temporary one."""
    import sys

    if path is None:
        stream: IO[Any] = sys.stdout.buffer if fmt in BINARY else sys.stdout
        try:
            yield stream
        finally:
            stream.flush()
    elif fmt in BINARY:
        with atomic_output(path, binary=True) as out:
            yield out
    else:
        with atomic_output(path, newline="") as text:
            yield text
