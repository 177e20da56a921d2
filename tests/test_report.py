"""``dossier inspect report --html`` opened in a real browser, and ``flow --format dot|svg``.

The page is opened in headless Chromium (Debian's package, installed by the test set-up where it is missing:
tests/browser.py) with the network switched off; it must render with no console error, fetch nothing, and
show the numbers the commands give in JSON. The screenshot stays as a test artefact (its path is printed and
recorded as the test's ``screenshot`` property; DOSSIER_TEST_ARTEFACTS=DIR copies it there too).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inspection.cli_audit import audit_cmd
from inspection.cli_process import flow_cmd
from inspection.cli_replay import replay_cmd
from inspection.cli_report import report_cmd
from inspection.cli_scorecard import scorecard_cmd
from tests import browser
from tests.test_scorecard_support import invoke, json_out, simulated

EXTRACT = """JSON.stringify({
  tables: Object.fromEntries([...document.querySelectorAll('table[data-table]')].map(t => [t.dataset.table,
    [...t.tBodies[0].rows].map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.col,
      JSON.parse(c.dataset.value)])))])),
  tiles: Object.fromEntries([...document.querySelectorAll('[data-tile]')].map(t => [t.dataset.tile,
    JSON.parse(t.dataset.value)])),
  figures: [...document.querySelectorAll('figure')].map(f => ({id: f.id,
    computed_on: JSON.parse(f.querySelector(':scope > figcaption').dataset.computedOn),
    caption: f.querySelector(':scope > figcaption').innerText,
    drawn: [...f.querySelectorAll('svg')].map(s => s.getBoundingClientRect().height),
    notes: [...f.querySelectorAll('.note')].map(n => n.innerText)})),
  edges: Object.fromEntries([...document.querySelectorAll('svg.process-map g.edge')].map(g => [g.id,
    g.textContent])),
  scripts: document.scripts.length,
})"""


@pytest.fixture(scope="module")
def tools() -> None:
    reason = browser.missing_tools()
    if reason is not None:
        pytest.skip(reason)


def _same_provenance(shown: dict[str, Any], cli: dict[str, Any], *extra: str) -> None:
    assert set(shown) <= set(cli) | set(extra), set(shown) - set(cli)
    assert {k: v for k, v in shown.items() if k in cli} == {k: v for k, v in cli.items() if k in shown}


def test_report_renders_in_chromium_with_the_commands_numbers(
    tools: None, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, record_property: Any
) -> None:
    data, _ = simulated(tmp_path_factory, violations="all", dossiers=3000)  # late dossiers, apologies, pauses
    page_file = tmp_path / "report.html"
    result = invoke(report_cmd, data, "--html", str(page_file), "-q")
    assert result.exit_code == 0, result.output
    assert not result.stdout and "warning" not in result.stderr
    size = page_file.stat().st_size
    assert size < 600_000, f"the report is {size:,} bytes"
    text = page_file.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/", "")

    city = json_out(invoke(scorecard_cmd, data, "--format", "json", "-q"))
    units = json_out(invoke(scorecard_cmd, data, "--level", "district", "--format", "json", "-q"))
    findings = json_out(invoke(audit_cmd, data, "--format", "json", "-q", "--no-fail"))
    flow = json_out(invoke(flow_cmd, data, "--format", "json", "-q"))

    started = time.monotonic()
    with browser.headless(tmp_path / "profile") as page:
        page.open(page_file.as_uri())
        shown = json.loads(page.evaluate(EXTRACT))
        shot = page.screenshot(tmp_path / "report.png")
        errors, requests = page.errors(), page.requests()
    seconds = time.monotonic() - started
    record_property("screenshot", str(shot))
    print(f"screenshot of the report: {shot} ({shot.stat().st_size:,} bytes; browser {seconds:.1f} s)")
    if os.environ.get("DOSSIER_TEST_ARTEFACTS"):
        shutil.copy(shot, Path(os.environ["DOSSIER_TEST_ARTEFACTS"]) / "report.png")
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "about:"))] == []
    assert shot.stat().st_size > 50_000 and shown["scripts"] == 0

    figures = {f["id"]: f for f in shown["figures"]}
    assert set(figures) == {"city", "units-on-time", "units-late", "units-apologies", "findings-by-rule",
                            "findings-by-unit", "flow", "sheet"}  # fmt: skip
    for f in figures.values():  # every figure drawn, and saying what it was computed on
        assert f["caption"].startswith(f"Computed on {f['computed_on']['events']:,} events of "), f["caption"]
        if f["id"] != "city":  # a chart of some height, or a sentence saying why there is none
            assert (f["drawn"] and min(f["drawn"]) > 100) or f["notes"] == ["No unit has a late dossier."], f

    row = city["units"][0]
    assert shown["tiles"] == {k: row[k] for k in shown["tiles"]}
    _same_provenance(figures["city"]["computed_on"], city["computed_on"])
    by_code = {u["unit_code"]: u for u in units["units"]}
    assert len(shown["tables"]["units"]) == len(by_code)
    for u in shown["tables"]["units"]:
        assert u == {k: by_code[u["unit_code"]][k] for k in u}
    _same_provenance(figures["units-late"]["computed_on"], units["computed_on"])

    per_rule = Counter(f["rule"] for f in findings["findings"])
    assert {r["rule"]: r["findings"] for r in shown["tables"]["findings_by_rule"]} == {
        rule: per_rule[rule] for rule in findings["computed_on"]["rules"]
    }
    per_unit = Counter(f["unit_code"] for f in findings["findings"])
    assert {r["unit_code"]: r["findings"] for r in shown["tables"]["findings_by_unit"]} == per_unit
    _same_provenance(figures["findings-by-rule"]["computed_on"], findings["computed_on"])

    assert shown["tables"]["flow"] == flow["edges"]
    _same_provenance(figures["flow"]["computed_on"], flow["computed_on"])
    assert len(shown["edges"]) == len(flow["edges"])
    for e in flow["edges"]:
        label = shown["edges"][f"edge-{e['from_type']}-{e['to_type']}"]
        assert f"{e['count']:,}" in label and f"{e['median_wh']:g} wh" in label, (e, label)

    dossier = figures["sheet"]["computed_on"]["dossier_id"]
    sheet = json_out(invoke(replay_cmd, data, dossier, "--format", "json"))
    assert shown["tables"]["sheet_steps"] == [
        {k: s[k] for k in shown["tables"]["sheet_steps"][0]} for s in sheet["steps"]
    ]
    verdict = shown["tables"]["sheet_verdict"][0]
    assert verdict == {k: sheet["verdict"][k] for k in verdict}
    assert verdict["outcome"] == "late" and sheet["apologies"]
    # The report states the store's dossiers above every figure; `replay` alone leaves them out.
    _same_provenance(figures["sheet"]["computed_on"], sheet["computed_on"], "dossier_id", "dossiers")


def test_flow_draws_the_process_map_as_dot_and_svg(tools: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _ = simulated(tmp_path_factory)
    edges = json_out(invoke(flow_cmd, data, "--format", "json", "-q"))["edges"]
    dot = invoke(flow_cmd, data, "--format", "dot", "-q")
    assert dot.exit_code == 0 and dot.stdout.startswith("// computed on ")
    assert dot.stdout.count(" -> ") == len(edges)
    svg = invoke(flow_cmd, data, "--format", "svg", "-q")
    assert svg.exit_code == 0 and "<svg" in svg.stdout and svg.stdout.count('class="edge"') == len(edges)
    refused = invoke(flow_cmd, data, "--view", "handovers", "--format", "svg")
    assert refused.exit_code == 2 and "draws the edges" in refused.output


def test_flow_svg_without_graphviz_says_how_to_install_it(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = simulated(tmp_path_factory)
    monkeypatch.setenv("PATH", "/nonexistent")
    result = invoke(flow_cmd, data, "--format", "svg", "-q")
    assert result.exit_code == 1
    assert "needs Graphviz's `dot` program" in result.output and "apt-get install graphviz" in result.output
    assert invoke(flow_cmd, data, "--format", "dot", "-q").exit_code == 0  # DOT needs no program
