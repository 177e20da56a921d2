"""Simulator: determinism, byte-exact encoders, the integer clock, the CLI, the catalogues."""

from __future__ import annotations

import io
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from click.testing import CliRunner

from producers.cli_simulate import simulate_cmd
from producers.simulator import fastcodec as fc
from producers.simulator.canonform import CANON_RUNS
from producers.simulator.clock import FastClock, from_datetime, to_datetime
from producers.simulator.paths import event_id
from producers.simulator.rawevents import to_record
from producers.simulator.run import SimulationSettings, simulate
from schemas.catalogue import Official, Procedure, Unit
from schemas.codec import encode_record
from schemas.events import EventType
from schemas.golden import sample_event
from schemas.hashchain import canonical
from schemas.registry import current_schema
from schemas.workingtime import HCMC_TZ, default_calendar

KEY = b"k" * 32


def _raw(event_type: EventType) -> dict:
    record = sample_event(event_type).to_record()
    raw = {k: v for k, v in record.items() if v is not None and v != []}
    for name in ("occurred_at", "recorded_at", "due_at", "step_due_at", "new_due_at"):
        if name in raw:
            raw[name] = from_datetime(raw[name])
    return fc.prepare(raw)


@pytest.mark.parametrize("event_type", [t for t in EventType if t is not EventType.UNKNOWN])
def test_fast_encoders_match_the_reference_byte_for_byte(event_type: EventType) -> None:
    event = sample_event(event_type)
    raw = _raw(event_type)
    assert fc.SINGLE_OBJECT_HEADER + fc.encode_body(raw) == encode_record(event.to_record())
    assert fc.canonical(raw) == canonical(event)


def test_ocf_writer_matches_fastavro_writer() -> None:
    raws = [_raw(t) for t in EventType if t is not EventType.UNKNOWN] * 40
    marker = bytes(range(16))
    mine = io.BytesIO()
    writer = fc.OcfWriter(mine, marker, sync_interval=4000)
    for raw in raws:
        writer.write_body(fc.encode_body(raw))
    writer.flush()
    theirs = io.BytesIO()
    records = [to_record(r) for r in raws]
    fastavro.writer(theirs, current_schema().source, records, sync_marker=marker, sync_interval=4000)
    assert mine.getvalue() == theirs.getvalue()


def test_prepared_runs_are_the_canonical_form_of_the_dossier_fields() -> None:
    raw = _raw(EventType.DOSSIER_RECEIVED)
    for key, names in CANON_RUNS.values():
        assert raw[key] == "".join(f"{n}:{len(str(raw[n]).encode())}:{raw[n]}" for n in names if raw.get(n) is not None)


def test_event_ids_are_random_uuid4() -> None:
    rng = random.Random(1)
    ids = [event_id(rng.getrandbits(128)) for _ in range(2000)]
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_progress_moves_more_often_than_once_per_shard(tmp_path: Path) -> None:
    steps: list[int] = []
    settings = SimulationSettings(dossiers=12_000, days=20, out=tmp_path, pseudonym_key=KEY, workers=2)
    summary = simulate(settings, progress=steps.append)
    assert summary["counts"]["shards"] == 2
    assert sum(steps) == 12_000
    assert len(steps) > 2, steps


def test_integer_clock_agrees_with_the_reference_calendar() -> None:
    clock, cal, rng = FastClock(), default_calendar(), random.Random(3)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        a = base + timedelta(seconds=rng.randrange(0, 900 * 86400))
        b = a + timedelta(seconds=rng.randrange(-20 * 86400, 40 * 86400))
        ta, tb = from_datetime(a), from_datetime(b)
        assert timedelta(microseconds=clock.wt(ta, tb)) == cal.working_time_between(a, b)
        assert to_datetime(clock.instant(clock.pos(ta))) == cal.next_working_instant(a)
        assert to_datetime(clock.same_day_due(ta)) == cal.same_day_due(a)
        n = rng.randrange(1, 30)
        assert to_datetime(clock.due_end_of_day(ta, n)) == cal.add_working_days(a, n, cal_convention("END_OF_DAY"))
        local = a.astimezone(HCMC_TZ)
        assert clock.is_working_day(clock.local_day(ta)) == cal.is_working_day(local.date())


def cal_convention(name: str):
    from schemas.events import DeadlineConvention

    return DeadlineConvention(name)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def run(seed: int, name: str, workers: int) -> dict[str, bytes]:
        settings = SimulationSettings(
            dossiers=2500, seed=seed, out=tmp_path / name, rates={"R5": 0.01}, pseudonym_key=KEY, workers=workers
        )
        simulate(settings)
        return _files(tmp_path / name)

    a, b, c = run(4, "a", 1), run(4, "b", 2), run(5, "c", 2)
    assert a == b
    assert a["events-00000.avro"] != c["events-00000.avro"]


def test_a_part_writes_the_whole_runs_files_for_its_shards(tmp_path: Path) -> None:
    """A year simulated in parts (``--part K/N``) is the year: each part's files are the whole run's, byte for
    byte, its manifest is the whole manifest's lines for them, and the catalogues are the same."""

    def run(name: str, part: tuple[int, int]) -> dict[str, Any]:
        settings = SimulationSettings(dossiers=12_000, days=20, out=tmp_path / name, pseudonym_key=KEY, part=part)
        return simulate(settings)

    whole, first, second = run("whole", (1, 1)), run("first", (1, 2)), run("second", (2, 2))
    files = _files(tmp_path / "whole")
    for name, summary in (("first", first), ("second", second)):
        part = _files(tmp_path / name)
        assert [n for n in part if n.startswith("events-")] == [f"events-0000{name == 'second':d}.avro"]
        assert all(part[n] == files[n] for n in part if n != "manifest.jsonl" and n != "summary.json")
        assert summary["counts"]["shards_written"] == 1
    manifest = files["manifest.jsonl"].splitlines()
    assert (
        _files(tmp_path / "first")["manifest.jsonl"].splitlines()
        + (_files(tmp_path / "second")["manifest.jsonl"].splitlines())
        == manifest
    )
    assert first["counts"]["events"] + second["counts"]["events"] == whole["counts"]["events"]
    result = CliRunner().invoke(simulate_cmd, ["--dossiers", "100", "--out", str(tmp_path / "x"), "--part", "1/2"])
    assert result.exit_code == 2 and "only 1 shard(s)" in result.output and not (tmp_path / "x").exists()


def test_catalogues_have_the_documented_shapes(tmp_path: Path) -> None:
    simulate(SimulationSettings(dossiers=50, out=tmp_path, pseudonym_key=KEY))
    units = [Unit.from_json(json.loads(x)) for x in (tmp_path / "units.jsonl").read_text().splitlines()]
    procs = [Procedure.from_json(json.loads(x)) for x in (tmp_path / "procedures.jsonl").read_text().splitlines()]
    officials = (tmp_path / "officials.jsonl").read_text().splitlines()
    assert [Official.from_json(json.loads(x)) for x in officials]
    levels = [u.level for u in units]
    assert (levels.count("department"), levels.count("district"), levels.count("commune")) == (20, 22, 312)
    assert len(procs) == 1837
    levels_online = [p.service_level for p in procs]
    assert (levels_online.count("FULL_ONLINE"), levels_online.count("PARTIAL_ONLINE")) == (464, 276)


def test_cli_writes_outputs_and_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(simulate_cmd, ["--dossiers", "200", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert {"manifest.jsonl", "summary.json", "units.jsonl", "events-00000.avro"} <= set(_files(tmp_path))
    for bad in (["--rate", "R99=0.1"], ["--rate", "R5"], ["--param", "nope=1"], ["--start", "2026-01-01"]):
        result = runner.invoke(simulate_cmd, [*bad, "--out", str(tmp_path / "x"), "--quiet"])
        assert result.exit_code == 2, bad
        assert "Error" in result.output


def test_jsonl_output_equals_the_avro_events(tmp_path: Path) -> None:
    simulate(SimulationSettings(dossiers=100, out=tmp_path, pseudonym_key=KEY, jsonl=True))
    lines = (tmp_path / "events-00000.jsonl").read_text().splitlines()
    with (tmp_path / "events-00000.avro").open("rb") as fo:
        ids = [str(r["event_id"]) for r in fastavro.reader(fo)]
    assert [json.loads(x)["event_id"] for x in lines] == ids


@pytest.mark.slow
def test_default_calibration_on_a_large_run(tmp_path: Path) -> None:
    from producers.simulator.kinds import DEFAULT_RATES

    # 100,000 dossiers (~1.2M events): ~160 late ones, so the on-time rate's sampling noise is ~0.00013 and the
    # tolerance below is ~4 of it. A 300,000-dossier run took three times as long for a noise of ~0.00007.
    settings = SimulationSettings(dossiers=100_000, out=tmp_path, rates=dict(DEFAULT_RATES), pseudonym_key=KEY)
    achieved = simulate(settings)["achieved"]
    assert abs(achieved["on_time_rate"] - 0.9984) <= 0.0005
    assert abs(achieved["online_share"] - 0.52) <= 0.01
