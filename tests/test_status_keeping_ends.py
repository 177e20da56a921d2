"""Migration 0021: the status-keeping events that claim an end status, kept per dossier in ``dossier_facts``.

R1 takes as candidates the dossiers whose D, T or first stop is a status-keeping event (an illegal history,
``tests.test_rules_boundaries``' ``-illegal-`` cases). It read them from the events; it now reads the facts'
``kept_*`` columns. A store loaded before 0021 gets them from its events (the migration's backfill), and then
finds what a store built with 0021 finds after the same loads, one facts row per dossier; running the
migration again changes nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumers.migrations import migrate, released_migrations
from dossier_audit.cli import main
from inspection.cliutil import EXIT_FINDINGS
from inspection.dossier_facts import NONE_SEQ, STATUS_KEEPING
from schemas.clusterddl import strip_comments
from tests.test_audit_store import AuditStore
from tests.test_rules_boundaries import CASES, IDS, _dossier
from tests.test_scorecard_support import simulate_city

R1_CASES = [name for name, (rule, _, _) in CASES.items() if rule == "R1"]
_KEPT = "SELECT dossier_id, kept_done, kept_returned, kept_stop FROM dossier_facts FINAL ORDER BY dossier_id"
_KEEPING = ", ".join(f"'{t}'" for t in STATUS_KEEPING)
#: The same minimums, computed from the events themselves (what the view and the backfill must keep).
_FROM_EVENTS = f"""
SELECT dossier_id, min(if(status = 9 AND kept, seq, {NONE_SEQ})), min(if(status = 10 AND kept, seq, {NONE_SEQ})),
       min(if(status IN (3, 7, 8) AND kept, seq, {NONE_SEQ}))
FROM (SELECT dossier_id, seq, status,
             event_type IN ({_KEEPING}) AS kept FROM events)
GROUP BY dossier_id
HAVING countIf(NOT kept OR status IN (3, 7, 8, 9, 10)) > 0
ORDER BY dossier_id
"""


def _snapshot(s: AuditStore) -> dict[str, Any]:
    return {
        "kept": s.query(_KEPT, {}),
        "r1": s.findings("R1"),
        "facts_rows": s.query("SELECT count(), uniqExact(dossier_id) FROM dossier_facts", {})[0],
    }


def _load(s: AuditStore, sim: Path) -> None:
    s.add([e for name in R1_CASES for e in _dossier(name)])
    s.add_avro_files(sim)


def test_a_store_loaded_before_0021_finds_what_one_built_with_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consumers.migrations as mig

    released = mig.released_migrations()
    sim = tmp_path / "sim"
    simulate_city(sim, dossiers=300, violations="all", seed=5)

    monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 21])
    old = AuditStore(tmp_path / "old")
    try:
        _load(old, sim)
        columns = {r[0] for r in old.query("SELECT name FROM system.columns WHERE table = 'dossier_facts'", {})}
        assert "kept_done" not in columns
        monkeypatch.setattr(mig, "released_migrations", lambda: released)
        assert {m.version: m.state for m in migrate(old.store)}[21] == "applied now"
        migrated = _snapshot(old)
        # A crash anywhere in the file: running all of it again changes nothing.
        for statement in next(m for m in released if m.version == 21).statements():
            old.store.command(statement)
        assert _snapshot(old) == migrated
        from_events = old.query(_FROM_EVENTS, {})
    finally:
        old.close()

    fresh = AuditStore(tmp_path / "new")
    try:
        _load(fresh, sim)
        fresh.store.command("OPTIMIZE TABLE dossier_facts FINAL")
        built = _snapshot(fresh)
        assert fresh.query(_FROM_EVENTS, {}) == from_events  # the same events in both stores
    finally:
        fresh.close()

    assert migrated == built
    assert migrated["kept"] == from_events  # the backfill, and the view, keep the minimums of the events
    rows, dossiers = migrated["facts_rows"]
    assert rows == dossiers  # one row per dossier again after the migration
    # Every illegal end the hand-written cases hold is found, and nothing on the legal ones.
    for name in R1_CASES:
        assert migrated["r1"].get((IDS[name], "R1")) == CASES[name][2], name
    # The simulated city's status-keeping events all follow the end they keep: many kept seqs, none before it.
    assert sum(1 for _, done, _, _ in migrated["kept"] if done != NONE_SEQ) > 100


def test_a_store_left_behind_is_told_to_migrate_not_shown_a_missing_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R1 reads 0021's columns: on a store without them the inspector is told what to run."""
    import consumers.migrations as mig

    released = mig.released_migrations()
    monkeypatch.setattr(mig, "released_migrations", lambda: [m for m in released if m.version < 21])
    old = AuditStore(tmp_path / "d")
    try:
        old.add([e for name in R1_CASES for e in _dossier(name)])
    finally:
        old.close()
    monkeypatch.setattr(mig, "released_migrations", lambda: released)

    done = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "inspect", "audit", "R1"])
    assert done.exit_code == 1, done.output
    assert "has not had migration(s) 0021_status_keeping_ends" in done.output, done.output
    assert "run `dossier consume migrate`" in done.output and "kept_done" not in done.output
    assert "Traceback" not in done.output

    migrated = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "consume", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    done = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "d"), "inspect", "audit", "R1", "--format", "json"])
    assert done.exit_code == EXIT_FINDINGS, done.output
    assert {IDS[name] for name in R1_CASES if CASES[name][2]} <= {row["dossier_id"] for row in _json_rows(done.output)}


def _json_rows(output: str) -> list[dict[str, Any]]:
    """The findings of ``--format json`` (the progress lines go to stderr, which CliRunner mixes in)."""
    rows: list[dict[str, Any]] = json.loads(output[output.index("{\n") :])["findings"]
    return rows


def _view(version: int) -> str:
    """The facts view's query as migration ``version`` sets it, whitespace normalised."""
    migration = next(m for m in released_migrations() if m.version == version)
    (statement,) = [s for s in migration.statements() if "ALTER TABLE dossier_facts_mv MODIFY QUERY" in s]
    return re.sub(r"\s+", " ", strip_comments(statement)).strip()


def test_the_view_is_0015s_with_the_status_keeping_events_let_in_and_kept_apart() -> None:
    """0021's view changes 0015's in these places only, with the code's list of status-keeping events."""
    before, after = _view(15), _view(21)
    expected = (
        before.replace("MODIFY QUERY SELECT", f"MODIFY QUERY WITH event_type IN ({_KEEPING}) AS kept SELECT")
        .replace("min(if(status = 9, (seq,", "min(if(status = 9 AND NOT kept, (seq,")
        .replace("min(if(status = 10, (seq,", "min(if(status = 10 AND NOT kept, (seq,")
        .replace("status IN (3, 7, 8)) AS stops", "status IN (3, 7, 8) AND NOT kept) AS stops")
        .replace(
            "AS unknown FROM",
            f"AS unknown, min(if(status = 9 AND kept, seq, toInt64({NONE_SEQ}))) AS kept_done, "
            f"min(if(status = 10 AND kept, seq, toInt64({NONE_SEQ}))) AS kept_returned, "
            f"min(if(status IN (3, 7, 8) AND kept, seq, toInt64({NONE_SEQ}))) AS kept_stop FROM",
        )
        .replace(f"WHERE event_type NOT IN ({_KEEPING})", "WHERE NOT kept OR status IN (3, 7, 8, 9, 10)")
    )
    assert after == expected
    backfill = next(m for m in released_migrations() if m.version == 21).sql
    assert f"AND event_type IN ({_KEEPING})\nGROUP BY dossier_id" in backfill
