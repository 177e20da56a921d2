"""The access log: every inspect command that reads the store leaves a hash-chained entry, and --verify proves it.

Real chDB throughout: a hand-written history sealed and loaded into a fresh store per test, the CLI through
click's runner (in this process) or as a subprocess reading through the loader's endpoint.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dossier_audit.cli import main
from dossier_runtime.accessrecord import GENESIS, Access, AccessLogError, canonical
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection import accesslog

EXAMPLE = Path(__file__).resolve().parent / "data" / "hand_history.jsonl"
DOSSIER = "000.00.31.H29-240207-0001"
MARKER = "SECRET-MARKER-7f3a9c"


def _dossier(data: Path, *args: str, inspector: str | None = None, **env: str) -> Result:
    environ = {"DOSSIER_INSPECTOR": inspector, **env} if inspector else dict(env)
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], env=environ)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    sealed = tmp_path / "sealed.jsonl"
    assert CliRunner().invoke(main, ["produce", "seal", str(EXAMPLE), "--out", str(sealed)]).exit_code == 0
    loaded = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "consume", "load", str(sealed)])
    assert loaded.exit_code == 0, loaded.output
    return tmp_path / "data"


def _entries(data: Path) -> list[dict[str, Any]]:
    with opened_store(Settings(data_dir=data)) as store:
        return accesslog.entries(store)


def _writer(data: Path) -> Any:
    return opened_store(Settings(data_dir=data), role="writer", serve=False)


def test_each_command_is_recorded_with_who_when_params_rows_and_output_hash(data: Path) -> None:
    before = datetime.now(UTC)
    replay = _dossier(data, "inspect", "replay", DOSSIER, "--format", "json", inspector="thanh.tra.01")
    assert replay.exit_code == 0, replay.output
    sql = _dossier(data, "inspect", "sql", "SELECT seq FROM events WHERE dossier_id = {d:String} ORDER BY seq",
                   "--param", f"d={DOSSIER}", "--format", "csv", "-q")  # fmt: skip
    assert sql.exit_code == 0, sql.output
    first, second = _entries(data)
    assert (first["seq"], first["prev_hash"], second["prev_hash"]) == (1, GENESIS, first["hash"])
    assert (first["inspector"], first["command"], first["exit_code"], first["via"]) == (
        "thanh.tra.01", "dossier inspect replay", 0, "embedded")  # fmt: skip
    assert json.loads(first["params"]) == {"dossier_id": DOSSIER, "fmt": "json"}
    assert first["rows"] is None  # replay does not count rows: unknown, not zero
    assert first["output_sha256"] == hashlib.sha256(replay.stdout_bytes).hexdigest()
    assert before <= first["at"] <= second["at"] <= datetime.now(UTC)
    assert second["inspector"] not in ("", "thanh.tra.01")  # the OS user when DOSSIER_INSPECTOR is unset
    assert second["rows"] == 3 and second["output_sha256"] == hashlib.sha256(sql.stdout_bytes).hexdigest()
    params = json.loads(second["params"])
    assert params["query"].startswith("sha256:") and params["param_pairs"][0].startswith("sha256:")
    assert DOSSIER not in second["params"]  # the console's free text is kept only as its hash


def test_the_chain_verifies_and_access_log_records_itself(data: Path) -> None:
    for _ in range(3):
        assert _dossier(data, "inspect", "verify", "-q").exit_code == 0
    listed = _dossier(data, "inspect", "access-log", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [e["command"] for e in json.loads(listed.stdout)["entries"]] == ["dossier inspect verify"] * 3
    proved = _dossier(data, "inspect", "access-log", "--verify")
    assert proved.exit_code == 0, proved.output
    said = " ".join(proved.stdout.split())  # the title is wrapped to the terminal
    assert "Access log: 4 entries" in said and "0 problem(s)" in said
    entries = _entries(data)
    assert entries[-1]["command"] == "dossier inspect access-log" and len(entries) == 5
    with opened_store(Settings(data_dir=data)) as store:
        assert accesslog.head(store) == (5, bytes.fromhex(entries[-1]["hash"]))
    assert not accesslog.verify(entries)


def _tamper(data: Path, statement: str) -> Result:
    for _ in range(3):
        assert _dossier(data, "inspect", "replay", DOSSIER).exit_code == 0
    with _writer(data) as store:
        store.command(statement, settings={"mutations_sync": 2})
    return _dossier(data, "inspect", "access-log", "--verify", "--format", "json")


def test_an_entry_altered_in_place_is_named(data: Path) -> None:
    result = _tamper(data, "ALTER TABLE access_log UPDATE inspector = 'someone else' WHERE seq = 2")
    assert result.exit_code == 3, result.output
    assert [(f["kind"], f["seq"]) for f in json.loads(result.stdout)["findings"]] == [("altered", 2)]


def test_an_entry_rewritten_with_its_hash_recomputed_breaks_the_next_link(data: Path) -> None:
    for _ in range(3):
        assert _dossier(data, "inspect", "replay", DOSSIER).exit_code == 0
    second = _entries(data)[1]
    forged = Access(second["at"], "someone else", second["command"], second["params"], second["exit_code"],
                    second["rows"], second["output_sha256"], second["via"])  # fmt: skip
    new_hash = hashlib.sha256(canonical(2, second["prev_hash"], forged)).hexdigest()
    with _writer(data) as store:
        store.command(
            "ALTER TABLE access_log UPDATE inspector = 'someone else', hash = {h:String} WHERE seq = 2",
            {"h": new_hash},
            settings={"mutations_sync": 2},
        )
    result = _dossier(data, "inspect", "access-log", "--verify", "--format", "json")
    assert result.exit_code == 3, result.output
    assert [(f["kind"], f["seq"]) for f in json.loads(result.stdout)["findings"]] == [("link", 3)]


def test_a_deleted_entry_is_a_gap(data: Path) -> None:
    result = _tamper(data, "ALTER TABLE access_log DELETE WHERE seq = 2")
    assert result.exit_code == 3, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [(f["kind"], f["seq"]) for f in findings] == [("missing", 2)]
    assert "entries 2 are missing" in findings[0]["detail"]


def test_a_deleted_last_entry_stops_the_next_inspection(data: Path) -> None:
    result = _tamper(data, "ALTER TABLE access_log DELETE WHERE seq = 3")
    assert result.exit_code == 1
    assert "entry 3 of the access log was recorded once and is gone" in result.output


def test_a_failing_command_is_recorded_with_its_exit_code(data: Path) -> None:
    result = _dossier(data, "inspect", "replay", "000.00.31.H29-000000-9999")
    assert result.exit_code == 1
    (entry,) = _entries(data)
    assert entry["exit_code"] == 1 and entry["output_sha256"] == hashlib.sha256(b"").hexdigest()
    findings = _dossier(data, "inspect", "audit", "R1", "--format", "json")
    assert _entries(data)[-1]["exit_code"] == findings.exit_code


def test_usage_errors_help_and_a_missing_store_are_not_recorded_and_create_nothing(data: Path, tmp_path: Path) -> None:
    assert _dossier(data, "inspect", "replay", "--help").exit_code == 0
    assert _dossier(data, "inspect", "replay", "--colour").exit_code == 2
    assert _entries(data) == []
    missing = tmp_path / "nowhere"
    assert _dossier(missing, "inspect", "replay", DOSSIER).exit_code == 1
    assert not missing.exists()


def test_a_store_without_the_access_log_refuses_to_be_inspected(data: Path) -> None:
    with _writer(data) as store:
        store.command("DROP TABLE access_log")
    result = _dossier(data, "inspect", "replay", DOSSIER)
    assert result.exit_code == 1
    assert "could not be recorded" in result.output and "dossier consume migrate" in result.output
    assert DOSSIER not in result.stdout  # nothing of the dossier was shown
    with opened_store(Settings(data_dir=data)) as store:
        assert accesslog.head(store) is None
        with pytest.raises(AccessLogError, match="migration 0013"):
            store.record_access(Access(datetime.now(UTC), "x", "c", "{}", 0, None, GENESIS, "embedded"))


def test_secrets_are_never_recorded(data: Path) -> None:
    env = {"DOSSIER_PSEUDONYM_KEY": MARKER * 2}
    assert _dossier(data, "inspect", "verify", "-q", **env).exit_code == 0
    citizen = "Nguyễn Văn An"
    _dossier(data, "inspect", "sql", f"SELECT count() FROM events WHERE applicant_ref = '{citizen}'", **env)
    text = json.dumps(_entries(data), default=str, ensure_ascii=False)
    assert MARKER not in text and citizen not in text
    recorded = json.loads(accesslog.recorded_params("digest", {"signing_key": MARKER, "password": MARKER, "out": "d"}))
    assert recorded == {"signing_key": accesslog.WITHHELD, "password": accesslog.WITHHELD, "out": "d"}


def _inspect(data: Path, *args: str, inspector: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOSSIER_INSPECTOR": inspector}
    return subprocess.run(
        [sys.executable, "-m", "dossier_audit", "--data-dir", str(data), "inspect", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_through_the_loaders_endpoint_the_owner_appends_and_two_inspectors_do_not_fork(data: Path) -> None:
    with opened_store(Settings(data_dir=data), role="writer") as owner:  # serves its endpoint, as a loader does
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            runs = list(pool.map(lambda i: _inspect(data, "replay", DOSSIER, "--format", "json",
                                                    inspector=f"inspector-{i}"), range(4)))  # fmt: skip
        assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
        entries = accesslog.entries(owner)
    assert sorted(e["inspector"] for e in entries) == [f"inspector-{i}" for i in range(4)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4] and {e["via"] for e in entries} == {"endpoint"}
    assert not accesslog.verify(entries)
    by_who = {e["inspector"]: e["output_sha256"] for e in entries}
    for i, run in enumerate(runs):
        assert by_who[f"inspector-{i}"] == hashlib.sha256(run.stdout.encode()).hexdigest()


def test_racing_appends_each_take_a_seq_of_their_own(data: Path) -> None:
    """Sessions of their own appending at once: the deduplication token turns a race for a seq into a retry."""
    settings = Settings(data_dir=data)

    def appends(store: Store, who: str) -> list[int]:
        at = datetime.now(UTC)
        return [store.record_access(Access(at, who, "test", "{}", 0, None, GENESIS, "embedded")).seq for _ in range(8)]

    with opened_store(settings, role="writer", serve=False) as first, opened_store(settings, serve=False) as second:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            racing = [pool.submit(appends, first, "a"), pool.submit(appends, second, "b")]
            seqs = [seq for future in racing for seq in future.result()]
        entries = accesslog.entries(first)
    assert sorted(seqs) == list(range(1, 17)) and not accesslog.verify(entries)


def test_a_declaration_through_the_endpoint_is_checked_for_form() -> None:
    with pytest.raises(ValueError, match="an access is exactly"):
        Access.from_json({"at": "2024-01-01T00:00:00Z", "inspector": "x"})
    good = Access(datetime.now(UTC), "x", "c", "{}", 0, None, GENESIS, "endpoint")
    assert Access.from_json(good.to_json()) == good
    with pytest.raises(TypeError):
        Access.from_json({**good.to_json(), "params": "[]"})
