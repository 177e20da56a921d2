"""Exports parsed back: CSV, JSON Lines, Parquet, XES (IEEE 1849 structure), OCEL 2.0 (JSON structure)."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from inspection.cli_export import export_cmd
from schemas.events import FIELD_NAMES
from tests.test_scorecard_support import invoke, reading, simulated

XES = "{http://www.xes-standard.org/}"
UNIT = "000.00.31.H29"


def _selection(data: Path) -> tuple[int, int]:
    with reading(data) as store:
        sql = (
            "SELECT count(), uniqExact(dossier_id) FROM events WHERE dossier_id IN "
            "(SELECT dossier_id FROM events WHERE event_type = 'DossierReceived' AND unit_code = {u:String})"
        )
        events, dossiers = store.query(sql, {"u": UNIT}).rows[0]
    return int(events), int(dossiers)


def _export(data: Path, tmp_path: Path, fmt: str) -> Path:
    out = tmp_path / f"out.{fmt}"
    result = invoke(export_cmd, data, "--format", fmt, "--unit", UNIT, "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    return out


def test_tabular_formats_round_trip(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    data, _ = simulated(tmp_path_factory)
    events, _ = _selection(data)
    assert events > 0
    with _export(data, tmp_path, "csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == events and list(rows[0]) == list(FIELD_NAMES)
    keys = [(r["dossier_id"], int(r["seq"])) for r in rows]
    assert keys == sorted(keys)
    lines = _export(data, tmp_path, "jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == events and len(json.loads(lines[0])["hash"]) == 64
    table = pq.read_table(_export(data, tmp_path, "parquet"))
    assert table.num_rows == events and table.column_names == list(FIELD_NAMES)


def test_xes_follows_ieee_1849(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    data, _ = simulated(tmp_path_factory)
    events, dossiers = _selection(data)
    root = ET.parse(_export(data, tmp_path, "xes")).getroot()
    assert root.tag == f"{XES}log" and root.get("xes.version")
    prefixes = {e.get("prefix") for e in root.findall(f"{XES}extension")}
    assert prefixes == {"concept", "time", "org", "lifecycle"}
    assert {c.get("keys") for c in root.findall(f"{XES}classifier")} >= {"concept:name"}
    traces = root.findall(f"{XES}trace")
    assert len(traces) == dossiers
    n = 0
    for trace in traces:
        assert trace.find(f"{XES}string[@key='concept:name']") is not None
        stamps = []
        for event in trace.findall(f"{XES}event"):
            keys = {a.get("key"): a for a in event}
            assert {"concept:name", "time:timestamp", "org:resource", "org:role", "lifecycle:transition"} <= set(keys)
            assert keys["time:timestamp"].tag == f"{XES}date"
            stamps.append(datetime.fromisoformat(str(keys["time:timestamp"].get("value"))))
            assert keys["seq"].tag == f"{XES}int"
            n += 1
        assert stamps
    assert n == events


def test_xes_opens_in_pm4py_when_available(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    data, _ = simulated(tmp_path_factory)
    events, dossiers = _selection(data)
    log = pm4py.read_xes(str(_export(data, tmp_path, "xes")))
    assert len(log) == events and log["case:concept:name"].nunique() == dossiers


def test_ocel_follows_the_ocel2_json_structure(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    data, _ = simulated(tmp_path_factory)
    events, dossiers = _selection(data)
    doc = json.loads(_export(data, tmp_path, "ocel").read_text(encoding="utf-8"))
    assert set(doc) == {"objectTypes", "eventTypes", "objects", "events"}
    object_types = {t["name"]: t for t in doc["objectTypes"]}
    assert set(object_types) == {"dossier", "unit", "official"}
    event_types = {t["name"] for t in doc["eventTypes"]}
    for t in doc["objectTypes"] + doc["eventTypes"]:
        assert all(set(a) == {"name", "type"} for a in t["attributes"])
        assert all(a["type"] in {"string", "integer", "float", "boolean", "time"} for a in t["attributes"])
    ids = {o["id"] for o in doc["objects"]}
    assert len(ids) == len(doc["objects"])
    assert sum(o["type"] == "dossier" for o in doc["objects"]) == dossiers
    for obj in doc["objects"]:
        assert obj["type"] in object_types
        for attr in obj["attributes"]:
            assert set(attr) == {"name", "time", "value"}
            datetime.fromisoformat(attr["time"])
        assert all(r["objectId"] in ids for r in obj["relationships"])
    assert len(doc["events"]) == events
    for event in doc["events"]:
        assert set(event) == {"id", "type", "time", "attributes", "relationships"}
        assert event["type"] in event_types
        datetime.fromisoformat(event["time"])
        assert all(set(a) == {"name", "value"} for a in event["attributes"])
        assert {r["qualifier"] for r in event["relationships"]} >= {"dossier", "acting unit"}
        assert all(r["objectId"] in ids for r in event["relationships"])


def test_export_streams_in_batches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """query_batches hands over bounded blocks, so the writers never hold the whole selection."""
    data, summary = simulated(tmp_path_factory)
    with reading(data) as store:
        sizes = [b.num_rows for b in store.query_batches("SELECT * FROM events", settings={"max_block_size": 1000})]
    assert sum(sizes) == summary["counts"]["events"] and len(sizes) > 5 and max(sizes) < sum(sizes) // 4
