"""The Kafka reader decoding a live batch to Native files (consumers.readerdecode).

chDB admits one engine per process and the test process has its own store
open, so the decoder runs in a fresh interpreter, as in the reader process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.migrations import migrate
from consumers.sink import Sink
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from tests.test_consumers_support import ROOT


@pytest.fixture
def store_types(tmp_path: Path) -> dict[str, str]:
    """The types the columns of ``events`` are parsed as in a migrated store: what the owner sends the reader."""
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        sink = Sink(store)
        try:
            return dict(sink.read_columns)
        finally:
            sink.close()


_SCRIPT = r"""
import json, sys
import chdb
from consumers.batch import Gathered
from consumers.readerdecode import BatchDecoder
from schemas.codec import encode, current_schema
from schemas.events import EventType
from tests.eventfactory import history

types = json.loads(sys.argv[1])
steps = [(EventType.DOSSIER_SUBMITTED, 1), (EventType.DOSSIER_RECEIVED, 2), (EventType.DOSSIER_TRANSFERRED, 4)]
events = [e for d in range(4) for e in history(*steps, dossier_id=f"000.00.31.H29-240115-{d:04d}")]
m = [encode(e) for e in events]
batch = Gathered("events")
batch.add(0, [10, 11, 12], m[0:3])
batch.add(1, [0, 1], m[3:5])
batch.add(0, [20, 21], m[5:7])  # a gap: a second container for partition 0
decoder = BatchDecoder(types)
groups = decoder.decode("events", batch.staged())
rows = []
for group in groups:
    got = decoder._conn.query(
        "SELECT toString(event_id), _topic, _partition, _offset FROM file({p:String}, 'Native') FORMAT JSONCompact",
        "JSONCompact", params={"p": group.path}).bytes()
    rows += json.loads(got)["data"]
bad = Gathered("events")
bad.add(0, [0, 1], [m[0], current_schema().fingerprint_bytes.join([b"\xc3\x01", b"\xff\xff\xff\xff"])])
refused = decoder.decode("events", bad.staged())
print(json.dumps({"rows": rows, "columns": groups[0].columns[-3:], "refused": refused is None,
                  "error": decoder.error, "ids": [str(e.event_id) for e in events[:7]]}))
batch.close(); bad.close(); decoder.close()
"""


def test_a_batch_decodes_to_native_rows_with_their_kafka_positions(store_types: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(store_types)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing from chDB on the way out either
    out = json.loads(done.stdout)
    ids = out["ids"]
    expected = [[ids[i], "events", 0, 10 + i] for i in range(3)]
    expected += [[ids[3], "events", 1, 0], [ids[4], "events", 1, 1]]
    expected += [[ids[5], "events", 0, 20], [ids[6], "events", 0, 21]]
    assert sorted(out["rows"], key=lambda r: (r[2], r[3])) == sorted(expected, key=lambda r: (r[2], r[3]))
    assert out["columns"] == ["_topic", "_partition", "_offset"]
    assert out["refused"] and out["error"]  # a body that does not decode: the reader isolates it
