"""A conflict is loud: a load that dead-letters events says so in its last line, lists a few examples, exits 3, and
`dossier consume dead-letters` lists every one."""

from __future__ import annotations

import json
from pathlib import Path

from dossier_runtime.progress import unstamped
from tests.test_consumers_support import dossier, events, write_container


def test_a_load_with_dead_letters_exits_3_and_says_how_to_list_them(tmp_path: Path) -> None:
    evs = events(12)
    broken = [
        e.replace(status=42) if i % 3 == 0 else e for i, e in enumerate(evs)
    ]  # every third one breaks the contract
    path = write_container(tmp_path / "bad.avro", broken)
    env = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    out = dossier("consume", "load", str(path), "--format", "json", env=env)
    assert out.returncode == 3, out.stderr
    bad = sum(1 for i in range(len(evs)) if i % 3 == 0)
    assert json.loads(out.stdout)[0]["dead_letters"] == bad
    lines = out.stderr.strip().splitlines()
    assert sum(1 for line in lines if unstamped(line).startswith("dead letter ")) == 5  # examples, not one per event
    assert lines[-1] == (
        f"{bad} event(s) not stored, dead-lettered (invalid {bad}); "
        "list them with `dossier consume dead-letters --source file:bad.avro`"
    )
    listed = dossier("consume", "dead-letters", "--source", "file:bad.avro", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == bad and {r["kind"] for r in rows} == {"invalid"}
    assert all("status 42" in r["error"] and r["topic"] == "file:bad.avro" for r in rows)
    assert f"{bad} dead letter(s) in the store (invalid {bad})" in listed.stderr
    some = dossier("consume", "dead-letters", "--limit", "2", "--kind", "invalid", env=env)
    assert "showing 2" in some.stderr


def test_a_clean_load_exits_0(tmp_path: Path) -> None:
    path = write_container(tmp_path / "good.avro", events(3))
    out = dossier("consume", "load", str(path), env={"DOSSIER_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr
    assert "dead-lettered" not in out.stderr
