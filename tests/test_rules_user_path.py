"""Every rule's hand-written boundary cases, the way an inspector would run them: JSON Lines → seal → load → audit.

tests/test_rules_boundaries.py judges its CASES in-process (events put straight into a store). Here the
same cases are written as a person writes a history by hand (the contract's JSON form without what
`dossier produce seal` fills in: seq, prev_hash, hash, event_id, and recorded_at unless it differs from
occurred_at; fields at their default left out), all in one file, and go through the real commands in
subprocesses: `dossier produce seal`, `dossier consume load`, `dossier consume load-catalogue` (the
boundary store's procedures, written as procedures.jsonl) and `dossier inspect audit --format json
--no-fail`, once per parameter set. Every case's evidence must come back exactly.

Not here, and why: the INTEGRITY-SEQ and INTEGRITY-HASH cases need broken chains, and the R1 cases in
``ILLEGAL`` break the lifecycle on purpose. Seal exists to refuse both (a person cannot seal a gap, a
tampered hash or an illegal move), so they stay in-process; test_seal_refuses_the_illegal_cases checks that
it does refuse them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dossier_audit.cli import main
from schemas.events import DossierEvent
from schemas.jsonform import to_json
from schemas.rulebook import BOUNDARIES, RULE_IDS
from tests.test_audit_store import Findings, procedure_row
from tests.test_rules_boundaries import CASES, IDS, ILLEGAL, PROCEDURES, _dossier

#: What seal fills in, so a person leaves it out.
SEALED_FIELDS = frozenset({"seq", "prev_hash", "hash", "event_id"})
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DossierEvent) if f.default is not dataclasses.MISSING}

USER_CASES = [name for name in CASES if name not in ILLEGAL]

#: Cases judged again under other parameters: (NAME=VALUE, ...) -> {case: expected evidence}.
WITH_PARAMS: dict[tuple[str, ...], dict[str, tuple[int, ...] | None]] = {
    ("apology_lead_wd=0",): {  # the HCMC rule (QĐ 5157): an apology on the due date is timely
        "r1-apology-a-microsecond-too-late": None,
        "r1-late-by-a-microsecond": (1, 2),  # no apology at all
        "r1-ends-at-next-working-start": None,
    },
}


def hand_written(event: DossierEvent) -> dict[str, Any]:
    """The event as a person writes it: no sealed fields, no defaults, recorded_at only when it differs."""
    line = {
        name: value
        for name, value in to_json(event).items()
        if name not in SEALED_FIELDS and value is not None and value != [] and _DEFAULTS.get(name, ...) != value
    }
    if line.get("recorded_at") == line["occurred_at"]:
        del line["recorded_at"]
    return {k: v.replace(".000000+07:00", "+07:00") if isinstance(v, str) else v for k, v in line.items()}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def dossier(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real `dossier` command in its own process, free of the caller's DOSSIER_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    where = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "dossier_audit", *where, *args], capture_output=True, text=True, timeout=120, env=env
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[tuple[str, ...]], Findings]]:
    """One seal, one load, one catalogue; then one audit run per parameter set (cached)."""
    tmp = tmp_path_factory.mktemp("user-path")
    written = write_jsonl(tmp / "cases.jsonl", [hand_written(e) for name in USER_CASES for e in _dossier(name)])
    sealed = tmp / "sealed.jsonl"
    summary = json.loads(ok(dossier("produce", "seal", str(written), "--out", str(sealed), "--format", "json", "-q")))
    events = sum(len(CASES[name][1]) for name in USER_CASES)
    assert (summary["dossiers"], summary["events"], summary["numbered"]) == (len(USER_CASES), events, events)
    data = tmp / "data"
    (loaded,) = json.loads(ok(dossier("consume", "load", str(sealed), "--format", "json", "-q", data_dir=data)))
    assert loaded["stored"] == events
    catalogue = tmp / "catalogue"
    catalogue.mkdir()
    write_jsonl(catalogue / "procedures.jsonl", [procedure_row(**fields) for fields in PROCEDURES])
    ok(dossier("consume", "load-catalogue", str(catalogue), "-q", data_dir=data))
    runs: dict[tuple[str, ...], Findings] = {}

    def run(params: tuple[str, ...]) -> Findings:
        if params not in runs:
            flags = [arg for p in params for arg in ("--param", p)]
            out = ok(dossier("inspect", "audit", *flags, "--format", "json", "--no-fail", "-q", data_dir=data))
            findings = json.loads(out)["findings"]
            runs[params] = {(f["dossier_id"], f["rule"]): tuple(f["evidence_seqs"]) for f in findings}
        return runs[params]

    yield run


@pytest.mark.parametrize("name", USER_CASES)
def test_boundary_through_seal_load_audit(audited: Callable[[tuple[str, ...]], Findings], name: str) -> None:
    rule, _, expected = CASES[name]
    assert audited(()).get((IDS[name], rule)) == expected


@pytest.mark.parametrize(("params", "name"), [(p, name) for p, cases in WITH_PARAMS.items() for name in cases])
def test_boundary_under_params(
    audited: Callable[[tuple[str, ...]], Findings], params: tuple[str, ...], name: str
) -> None:
    rule = CASES[name][0]
    assert audited(params).get((IDS[name], rule)) == WITH_PARAMS[params][name]


def test_every_rule_fires_and_misses_through_the_user_path() -> None:
    for rule in (r for r in RULE_IDS if not r.startswith("INTEGRITY-")):
        outcomes = {CASES[name][2] is None for name in USER_CASES if CASES[name][0] == rule}
        assert outcomes == {True, False}, f"{rule} needs a case that fires and a near miss that does not"


def _instants(name: str) -> list[datetime]:
    """Every local time a case names: when its events happened and the dates they set."""
    fields = [step[2] for step in CASES[name][1]]
    return [f[key] for f in fields for key in ("at", "due_at", "new_due_at") if f.get(key) is not None]


def _spans(name: str, first_off: date, last_off: date) -> bool:
    days = [t.date() for t in _instants(name)]
    return any(d < first_off for d in days) and any(d > last_off for d in days)


def _received(name: str, when: Callable[[time], bool]) -> bool:
    """An R9 case whose reception's local time passes ``when``."""
    times = [f["at"].time() for _kind, _status, f in CASES[name][1] if "form_code" in f]
    return CASES[name][0] == "R9" and bool(times) and when(times[0])


#: The calendar facts the user-path cases must cross, each a test over a case.
CALENDAR_FACTS: dict[str, Callable[[str], bool]] = {
    "Tết 2024 (Thu 8 - Wed 14 Feb off)": lambda n: _spans(n, date(2024, 2, 8), date(2024, 2, 14)),
    "30/4-1/5/2024 (Mon 29 Apr off)": lambda n: _spans(n, date(2024, 4, 29), date(2024, 5, 1)),
    "its make-up Saturday 4/5/2024": lambda n: date(2024, 5, 4) in {t.date() for t in _instants(n)},
    "2/9/2026 (Mon 31 Aug swapped off - Wed 2 Sep)": lambda n: _spans(n, date(2026, 8, 31), date(2026, 9, 2)),
    "its make-up Saturday 22/8/2026": lambda n: date(2026, 8, 22) in {t.date() for t in _instants(n)},
    "received at the 15:00 cut-off": lambda n: _received(n, lambda t: t == time(15)),
    "received just after it": lambda n: _received(n, lambda t: t > time(15)),
    "lunch inside a working-minute limit": lambda n: (
        CASES[n][0] in ("R10", "R14")
        and any(t.time() <= time(11, 30) for t in _instants(n))
        and any(t.time() >= time(13, 30) for t in _instants(n))
    ),
}


@pytest.mark.parametrize("fact", list(CALENDAR_FACTS))
def test_the_cases_cross_real_calendar_facts(fact: str) -> None:
    crossing = [name for name in USER_CASES if CALENDAR_FACTS[fact](name)]
    outcomes = {CASES[name][2] is None for name in crossing}
    assert outcomes == {True, False}, f"{fact}: cases {crossing} need one that fires and one that does not"


def test_seal_refuses_the_illegal_cases(tmp_path: Path) -> None:
    written = write_jsonl(tmp_path / "illegal.jsonl", [hand_written(e) for n in sorted(ILLEGAL) for e in _dossier(n)])
    out = tmp_path / "sealed.jsonl"
    refused = dossier("produce", "seal", str(written), "--out", str(out))
    assert refused.returncode == 3 and not out.exists()
    for name in ILLEGAL:
        assert f"{IDS[name]} seq 2: illegal transition" in refused.stderr


def test_rules_full_shows_each_boundary_reading() -> None:
    assert set(BOUNDARIES) <= set(RULE_IDS)
    listed = CliRunner().invoke(main, ["inspect", "rules", "--format", "json"])
    assert {r["id"]: r["boundaries"] for r in json.loads(listed.stdout) if r["boundaries"]} == dict(BOUNDARIES)
    table = CliRunner().invoke(main, ["inspect", "rules", "R9", "--full"]).stdout
    assert "boundaries" in table and "07:00 + transfer_grace_minutes" in table
    assert "boundaries" not in CliRunner().invoke(main, ["inspect", "rules", "R9"]).stdout
