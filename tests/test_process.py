"""Path variants and the directly-follows graph over a simulated store."""

from __future__ import annotations

import pytest

from inspection.cli_process import flow_cmd, variants_cmd
from tests.test_scorecard_support import invoke, json_out, reading, simulated


def test_variants_count_every_dossier_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, summary = simulated(tmp_path_factory)
    doc = json_out(invoke(variants_cmd, data, "--by", "all", "--top", "10000", "--format", "json", "-q"))
    rows = doc["variants"]
    assert sum(r["dossiers"] for r in rows) == summary["counts"]["dossiers"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all("SyncedToNational" not in r["variant"] for r in rows)
    assert rows[0]["dossiers"] >= rows[-1]["dossiers"]
    per_group = json_out(invoke(variants_cmd, data, "--top", "1", "--format", "json", "-q"))["variants"]
    keys = [(r["procedure_code"], r["unit_code"]) for r in per_group]
    assert len(keys) == len(set(keys)) and all(r["rank"] == 1 for r in per_group)


def test_flow_edges_cover_every_consecutive_pair(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    with reading(data) as store:
        events, dossiers = store.query(
            "SELECT count(), uniqExact(dossier_id) FROM events WHERE event_type != 'SyncedToNational'"
        ).rows[0]
    edges = json_out(invoke(flow_cmd, data, "--format", "json", "-q"))["edges"]
    assert sum(e["count"] for e in edges) == events - dossiers
    assert all(0 <= e["median_wh"] <= e["p90_wh"] for e in edges)
    assert any(e["from_type"] == "DossierTransferred" for e in edges)


def test_slowest_handovers_per_unit(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    rows = json_out(invoke(flow_cmd, data, "--view", "handovers", "--top", "2", "--format", "json", "-q"))["handovers"]
    assert rows and all(r["rank"] <= 2 for r in rows)
    by_unit: dict[str, list[float]] = {}
    for r in rows:
        by_unit.setdefault(r["unit_code"], []).append(r["waited_wh"])
        assert r["evidence"] == f"dossier inspect replay {r['dossier_id']}"
    assert all(w == sorted(w, reverse=True) for w in by_unit.values())
