"""A real embedded store for the audit tests: hand-written histories and simulator output in, findings out."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fastavro

from consumers.migrations import migrate
from consumers.sink import FEED_COLUMNS, stored_columns
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, open_store
from inspection.audit import audit, parse_params, select_rules
from schemas.events import FIELD_NAMES, DossierEvent
from schemas.registry import current_schema
from tests.eventfactory import history
from tests.test_consumers_support import AVRO_SETTINGS, avro_source

PROCEDURE_COLUMNS = (
    "procedure_code", "version", "name", "level", "time_limit_value", "time_limit_unit", "service_level", "has_fee",
    "fee_vnd", "paper_result", "same_day", "inter_agency", "clock_stops_for_financial", "component_codes",
    "step_budgets", "valid_from", "valid_to",
)  # fmt: skip

Findings = dict[tuple[str, str], tuple[int, ...]]


def insert_avro(store: Store, path: Path) -> None:
    """A container's events into ``events`` as the loaders store them (hash and prev_hash as ``chain``, 0014),
    without the loader's checks or derived tables."""
    source, params = avro_source(store, path)
    into, cols = stored_columns(FIELD_NAMES)
    store.command(f"INSERT INTO events ({into}) SELECT {cols} {source}", params, settings=AVRO_SETTINGS)


def insert_events(store: Store, events: Iterable[DossierEvent]) -> None:
    """:func:`insert_avro` of these events."""
    with tempfile.NamedTemporaryFile(suffix=".avro") as handle:
        fastavro.writer(handle, current_schema().parsed, [e.to_record() for e in events])
        handle.flush()
        insert_avro(store, Path(handle.name))


class AuditStore:
    """A fresh embedded store (its own data dir) with the released DDL applied."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir)
        self.store: Store = open_store(self.settings, role="writer", serve=False)
        migrate(self.store)

    def close(self) -> None:
        self.store.close()

    def query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return list(self.store.query(sql, params).rows)

    def add(self, events: Iterable[DossierEvent]) -> None:
        events = list(events)
        insert_events(self.store, events)
        self._feed([e.event_id for e in events])

    def add_avro_files(self, directory: Path) -> None:
        for path in sorted(directory.glob("events-*.avro")):
            insert_avro(self.store, path)
        self._feed(None)

    def _feed(self, event_ids: list[str] | None) -> None:
        """What the loader does with every batch it stores: feed the derived tables' views (0004, 0006)."""
        feed = ", ".join(FEED_COLUMNS)
        only = "WHERE event_id IN {ids:Array(String)}" if event_ids is not None else ""
        sql = f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM events {only}"
        self.store.command(sql, {"ids": event_ids} if event_ids is not None else None)

    def add_catalogue(self, directory: Path) -> None:
        for table in ("units", "officials", "procedures"):
            path = directory / f"{table}.jsonl"
            if path.exists():
                self.store.insert_bytes(f"INSERT INTO {table}", "JSONEachRow", [path.read_bytes()])

    def add_procedure(self, **fields: Any) -> None:
        row = procedure_row(**fields)
        self.store.insert_bytes("INSERT INTO procedures", "JSONEachRow", [json.dumps(row).encode()])

    def findings(self, *rule_ids: str, params: Mapping[str, str] | None = None, **kw: Any) -> Findings:
        pairs = [f"{k}={v}" for k, v in (params or {}).items()]
        report = audit(self.query, select_rules(rule_ids), params=parse_params(pairs), **kw)
        return {(f.dossier_id, f.rule): f.evidence_seqs for f in report.findings}


def procedure_row(**fields: Any) -> dict[str, Any]:
    """A procedures.jsonl row: a 3-working-day commune procedure (1.001612), ``fields`` changed."""
    return {
        "procedure_code": "1.001612", "version": "2023.1", "name": "Test procedure", "level": "commune",
        "time_limit_value": 3, "time_limit_unit": "WORKING_DAYS", "service_level": "FULL_ONLINE", "has_fee": False,
        "fee_vnd": 0, "paper_result": False, "same_day": False, "inter_agency": False,
        "clock_stops_for_financial": False, "component_codes": ["Giấy xác nhận cư trú"], "step_budgets": [],
        "valid_from": "2018-01-01", "valid_to": None, **fields,
    }  # fmt: skip


def manifest(directory: Path) -> Findings:
    out = {}
    for line in (directory / "manifest.jsonl").read_text().splitlines():
        obj = json.loads(line)
        out[(obj["dossier_id"], obj["rule"])] = tuple(obj["evidence_seqs"])
    return out


def test_loaded_histories_come_back_whole(tmp_path: Path) -> None:
    from schemas.events import EventType as E

    s = AuditStore(tmp_path)
    try:
        s.add(history((E.DOSSIER_SUBMITTED, 1), (E.DOSSIER_RECEIVED, 2)))
        rows = s.query("SELECT seq, event_type, status FROM events ORDER BY seq", {})
        assert rows == [(1, "DossierSubmitted", 1), (2, "DossierReceived", 2)]
    finally:
        s.close()
