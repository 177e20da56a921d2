"""The per-dossier derived table (migration 0006) gives exactly the facts of a scan of the events, on real chDB."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from consumers.migrations import migrate
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store
from inspection import dossier_facts as facts
from inspection.scorecard import ScorecardQuery, params
from tests.test_scorecard_support import reading, simulated

_COLUMNS = (
    "dossier_id, r_grp, r_day, late, has_e, completed, handling_us, apologised, apology_timely, online, "
    "online_full, online_partial, digitised_ok, fee_bearing, paid_online, complained, rating_n, rating_sum, "
    "due_unknown, result_unknown"
)


def _migration(name: str = "0006_dossier_facts") -> str:
    return (resources.files("schemas") / "clickhouse" / f"{name}.sql").read_text(encoding="utf-8")


def _params(store: Any, **extra: Any) -> dict[str, Any]:
    _as_of, as_of_pos = facts.as_of_position(store, None)
    out = params(ScorecardQuery(), as_of_pos)
    out.update(grp_units=[], grp_ids=[], grp_default_id=1, **extra)
    return out


def _rows(store: Any, sql: str, p: dict[str, Any]) -> set[tuple[Any, ...]]:
    return set(store.query(f"SELECT {_COLUMNS} FROM ({sql})", p).rows)


@pytest.mark.parametrize("procedure", [False, True])
def test_derived_facts_equal_the_scan_of_the_events(tmp_path_factory: pytest.TempPathFactory, procedure: bool) -> None:
    data, _summary = simulated(tmp_path_factory, violations="all", dossiers=3000)
    with reading(data) as store:
        extra = {}
        if procedure:
            extra["procedure"] = store.query(
                "SELECT procedure_code FROM events WHERE event_type = 'DossierReceived' "
                "GROUP BY procedure_code ORDER BY count() DESC, procedure_code LIMIT 1"
            ).scalar()
        p = _params(store, **extra)
        derived = _rows(store, facts.facts_sql(procedure), p)
        scanned = _rows(store, facts.facts_scan_sql(procedure), p)
    assert derived == scanned
    assert len(derived) > (20 if procedure else 2500)
    assert procedure or any(row[3] for row in derived)  # late dossiers: the pause and end terms were exercised


def _merged(source: str) -> str:
    """What ``FROM dossier_facts FINAL`` reads, for rows given by ``source``: each column's aggregate merged."""
    arrays = ", ".join(
        f"groupUniqArrayArray({c}) AS {c}" for c in ("stops", "supplements", "apologies", "pause_events", "ratings")
    )
    return (
        "(SELECT dossier_id, min(reception) AS reception, min(done) AS done, min(returned) AS returned, "
        f"{arrays}, groupBitOr(flags) AS flags, groupBitOr(unknown) AS unknown, "
        f"sipHash64(dossier_id) AS key_hash FROM ({source}) GROUP BY dossier_id)"
    )


def test_backfill_and_live_view_agree_and_replays_change_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The store was loaded through events_feed (the view); the backfill over events must give the same facts."""
    data, _summary = simulated(tmp_path_factory, violations="all", dossiers=3000)
    backfill = _migration().split("INSERT INTO dossier_facts", 1)[1].split(";\n", 1)[0].strip()
    backfill = f"SELECT *, toUInt8(0) AS unknown FROM ({backfill})"  # a simulated city says every fact
    table = re.compile(r"\bdossier_facts( FINAL)?(?= )")  # every read of the table, merged or not
    assert len(table.findall(facts.facts_sql())) == 5

    def reading_from(source: str) -> str:
        return table.sub(lambda _m: _merged(source), facts.facts_sql())

    with reading(data) as store:
        p = _params(store)
        live = _rows(store, facts.facts_sql(), p)
        rebuilt = reading_from(backfill)
        # The view's rows plus the backfill's rows for every dossier: what a repeated migration leaves.
        kept = "kept_done, kept_returned, kept_stop"  # 0021's, which 0006's backfill does not write
        doubled = reading_from(f"SELECT * EXCEPT ({kept}) FROM dossier_facts UNION ALL {backfill}")
        assert _rows(store, rebuilt, p) == live
        assert _rows(store, doubled, p) == live


#: Rows of dossier_facts as loads leave them before their parts merge: A and D each in two rows (D's reception
#: only in the second), B in one, C in one without a reception.
_SPLIT_ROWS = """
INSERT INTO dossier_facts (dossier_id, reception, done, stops, pause_events, flags, ratings) VALUES
('A', (1, 100, 'U1', 'ONLINE', '', 'P1', -1), (9223372036854775807, 0), [], [], 1, []),
('B', (1, 300, 'U2', 'DIRECT', '', 'P2', 900), (7, 500), [(4, 450)], [(3, 5, 400, 1)], 2, [(8, 5)]),
('C', (9223372036854775807, 0, '', '', '', '', -1), (9223372036854775807, 0), [(2, 50)], [], 0, []),
('D', (9223372036854775807, 0, '', '', '', '', -1), (9223372036854775807, 0), [(6, 60)], [], 8, [(9, 1)])
"""
_SPLIT_MORE = """
INSERT INTO dossier_facts (dossier_id, reception, done, stops, pause_events, flags, ratings) VALUES
('A', (9223372036854775807, 0, '', '', '', '', -1), (5, 200), [(3, 150), (4, 160)], [(2, 5, 120, 1)], 4, [(6, 4)]),
('D', (1, 10, 'U3', 'ONLINE', '', 'P3', 70), (9223372036854775807, 0), [(6, 60), (7, 65)], [], 16, [])
"""
_READ = "reception, done, stops, pause_events, flags, ratings"
_SORTED = "reception, done, arraySort(stops), arraySort(pause_events), flags, arraySort(ratings)"


@pytest.mark.parametrize(("dossiers", "where"), [("1", "1"), ("dossier_id >= 'B'", "tupleElement(reception, 1) < 10")])
def test_merged_facts_read_what_final_reads(tmp_path: Path, dossiers: str, where: str) -> None:
    """Only the dossiers held in several rows are merged; a condition on the merged columns sees the merged row."""
    with opened_store(Settings(data_dir=tmp_path), role="writer", serve=False) as store:
        migrate(store)
        store.command("SYSTEM STOP MERGES dossier_facts")
        store.command(_SPLIT_ROWS)
        store.command(_SPLIT_MORE)
        parts = store.query("SELECT count() FROM system.parts WHERE active AND table = 'dossier_facts'").scalar()
        merged = store.query(
            f"SELECT dossier_id, {_SORTED} FROM ({facts.merged_facts(_READ, dossiers, where)}) ORDER BY dossier_id"
        ).rows
        final = store.query(
            f"SELECT dossier_id, {_SORTED} FROM dossier_facts FINAL WHERE ({dossiers}) AND ({where}) ORDER BY 1"
        ).rows
    assert parts == 2
    assert merged == final
    assert [row[0] for row in final] == (["A", "B", "C", "D"] if where == "1" else ["B", "D"])


@pytest.mark.parametrize(
    ("migration", "copies"), [("0006_dossier_facts", 2), ("0010_cheaper_views", 1), ("0015_facts_at_scale", 1)]
)
def test_the_migration_bakes_in_the_event_types_and_bits_of_the_code(migration: str, copies: int) -> None:
    """0006's view and backfill, and 0010's view, carry the lists and bits of inspection.dossier_facts."""
    sql = _migration(migration)
    keeping = ", ".join(f"'{t}'" for t in facts.STATUS_KEEPING)
    assert sql.count(f"event_type NOT IN ({keeping})") == copies
    pauses = re.sub(r"\s+", " ", ", ".join(f"'{t}'" for t in facts.PAUSE_TYPES))
    assert re.sub(r"\s+", " ", sql).count(f"event_type IN ({pauses})") == copies
    assert re.sub(r"\s+", " ", facts.opener_sql()).replace("toUInt8(", "") in re.sub(r"\s+", " ", sql)
    for bit, kind in (
        (facts.F_DIGITISED, "event_type = 'DossierDigitized', "),
        (facts.F_RESULT, "event_type = 'ResultIssued', "),
        (facts.F_PAID_ONLINE, "payment_channel IN ('NATIONAL_PORTAL', 'LOCAL_GATEWAY'), "),
        (facts.F_FEE_EVENT, "coalesce(amount_vnd, 0) > 0, "),
        (facts.F_COMPLAINED, "rating <= 2), "),
    ):
        assert sql.count(f"{kind}{bit}, 0)") == copies, kind
    assert facts.ONLINE_PAYMENT == ("NATIONAL_PORTAL", "LOCAL_GATEWAY")
    if migration >= "0015":  # the view and the backfill of the facts the sources did not say
        assert re.sub(r"\s+", " ", sql).count(re.sub(r"\s+", " ", facts.UNKNOWN_SQL)) == 2


def test_dossier_state_is_the_latest_event_of_each_dossier(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The view of 0010 (an argMax per column) keeps what 0004's argMax over one tuple kept."""
    data, _summary = simulated(tmp_path_factory, violations="all", dossiers=3000)
    columns = (
        "seq, event_type, status, occurred_at, recorded_at, unit_code, procedure_code, channel, applicant_kind, "
        "actor_id, actor_role, step_code, due_at"
    )
    with reading(data) as store:
        kept = set(store.query(f"SELECT dossier_id, {columns} FROM dossier_state FINAL").rows)
        latest = store.query(
            f"SELECT dossier_id, untuple(argMax(tuple({columns}), seq)) FROM events GROUP BY dossier_id"
        ).rows
    assert kept == set(latest)
    assert len(kept) == 3000


def test_the_migration_bakes_in_the_step_boundaries_of_the_accountability_report() -> None:
    from inspection.accountability import STEP_BOUNDARY_SQL
    from inspection.controlsheet import OPENS_STEP_SQL

    sql = re.sub(r"\s+", " ", _migration().split("CREATE TABLE IF NOT EXISTS dossier_steps", 1)[1])
    opens = re.sub(r"\s+", " ", OPENS_STEP_SQL)[1:-1]  # without its outer parentheses
    ends = STEP_BOUNDARY_SQL.split(f"{OPENS_STEP_SQL} OR ", 1)[1]
    assert sql.count(f"WHERE {opens} OR {ends}") == 2  # the view and the backfill
    assert sql.count(f"{opens} AS is_start") == 2


def test_step_boundaries_of_the_view_equal_the_backfill(tmp_path_factory: pytest.TempPathFactory) -> None:
    data, _summary = simulated(tmp_path_factory, violations="all", dossiers=3000)
    backfill = _migration().split("INSERT INTO dossier_steps", 1)[1].split(";\n", 1)[0].strip()
    with reading(data) as store:
        live = set(store.query("SELECT * FROM dossier_steps FINAL").rows)
        rebuilt = set(store.query(backfill).rows)
        events = store.query("SELECT count() FROM events").scalar()
    assert live == rebuilt
    assert events / 5 < len(live) < events / 2  # the boundaries only, about a third of the events


def test_the_migration_finds_what_events_stored_before_it_did_not_say(tmp_path: Path) -> None:
    """0015 adds the unknown facts of events no view fed it to the facts 0006's backfill made of them."""
    from consumers.migrations import released_migrations
    from inspection.scorecard import ScorecardQuery, compute_scorecard
    from tests.test_audit_store import AuditStore, insert_events
    from tests.test_unknown_facts import _events

    before = AuditStore(tmp_path)
    try:
        insert_events(before.store, _events())  # into events only: as a store loaded before 0015
        before.add_procedure()
        backfills = [
            statement
            for migration in released_migrations()
            if migration.version in (6, 15)
            for statement in migration.statements()
            if "INSERT INTO dossier_facts" in statement
        ]
        assert len(backfills) == 2
        columns = "dossier_id, reception, done, returned, stops, supplements, apologies, pause_events, flags, ratings"
        for statement in backfills:  # 0006's names no columns: the table had only those then
            before.store.command(
                statement.replace("INSERT INTO dossier_facts\n", f"INSERT INTO dossier_facts ({columns})\n")
            )
        card = compute_scorecard(before.store, ScorecardQuery())
    finally:
        before.close()
    assert card.coverage()["2.1"] == {"assessed": 7, "not_assessable": {"due_at unknown": 1}}
    (row,) = card.rows
    assert row["received"] == 8 and row["on_time_of"] == 7
