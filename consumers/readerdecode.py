"""Decoding a live batch in the Kafka reader process, so that the store's owner has no parsing left.

On the embedded store, the process that owns chDB runs every statement of a
batch one after the other, and it is the bound of ``dossier consume run``
(BENCHMARKS.md). Decoding the Avro containers is the one step that needs
nothing of the store, so the reader does it with a ClickHouse of its own
(chDB in memory: no data directory, so no conflict with the owner's lock) and
writes each group as a ClickHouse Native file beside its containers, with the
Kafka positions already computed. The owner then stages it at about a
seventh of the cost of parsing Avro (BENCHMARKS.md). Same decoder, same
column types (the owner's ``events`` columns, sent at start), same rows.

A container ClickHouse cannot decode makes :meth:`BatchDecoder.decode`
return None; the reader then isolates the poison message by message
(:func:`consumers.batch.store_through`) and decodes the rest again.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from consumers.batch import NativeGroup, StagedGroup
from consumers.sink import POSITION_COLUMNS, containers_select
from dossier_runtime.storebackends import bind_parameters, clean_error

_serial = itertools.count()


class BatchDecoder:
    """chDB in this process, in memory, decoding containers to Native files.

    Used from two threads of the reader (the store thread decodes a batch handed over before it was full,
    the main thread seals a full one), one query at a time.
    """

    def __init__(self, column_types: Mapping[str, str]) -> None:
        import chdb

        self.column_types = dict(column_types)
        self._conn: Any = chdb.connect(":memory:")  # type: ignore[no-untyped-call]
        self.error = ""  # ClickHouse's words for the last container it could not decode
        self._lock = threading.Lock()

    def decode(self, topic: str, staged: Sequence[StagedGroup]) -> list[NativeGroup] | None:
        """Each group's containers as one Native file in their directory; None when a container does not decode."""
        decoded = []
        for group in staged:
            if not group.parts:
                continue
            structure = ", ".join(f"`{name}` {self.column_types[name]}" for name in group.columns)
            cols = ", ".join(f"`{name}`" for name in group.columns)
            select, params = containers_select(topic, cols, group.parts, structure)
            out = Path(group.parts[0][2]).parent / f"decoded-{next(_serial)}.native"
            params["out"] = str(out)
            try:
                with self._lock:
                    self._conn.query(
                        f"INSERT INTO FUNCTION file({{out:String}}, 'Native') {select} "
                        "SETTINGS input_format_avro_allow_missing_fields = 1, engine_file_truncate_on_insert = 1, "
                        "max_threads = 1",
                        "TSV",
                        params=bind_parameters(params),
                    )
            except Exception as exc:  # chDB raises its own error types; the text says what failed
                self.error = clean_error(str(exc))
                return None
            decoded.append(NativeGroup([*group.columns, *POSITION_COLUMNS], str(out)))
        return decoded

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
