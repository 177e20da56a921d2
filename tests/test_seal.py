"""``dossier produce seal``: a hand-written history numbered, chained and checked; then loaded and inspected."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from dossier_audit.cli import main
from producers.validation import check_paths

EXAMPLE = Path(__file__).resolve().parent / "data" / "hand_history.jsonl"
DOSSIER = "000.00.31.H29-240207-0001"


def _dossier(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_seal_load_verify_replay(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed.jsonl"
    done = _dossier("produce", "seal", str(EXAMPLE), "--out", str(sealed), "--format", "json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["events"], summary["numbered"], summary["problems"]) == (3, 3, 0)
    events = _lines(sealed)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["prev_hash"] == "0" * 64 and events[1]["prev_hash"] == events[0]["hash"]
    assert events[0]["recorded_at"] == events[0]["occurred_at"]
    assert check_paths([sealed]).ok  # what publish --check says
    again = tmp_path / "again.jsonl"
    assert _dossier("produce", "seal", str(EXAMPLE), "--out", str(again)).exit_code == 0
    assert again.read_bytes() == sealed.read_bytes()  # derived event ids: the same file seals to the same bytes
    resealed = tmp_path / "resealed.jsonl"
    done = _dossier("produce", "seal", str(sealed), "--out", str(resealed), "--format", "json")
    assert json.loads(done.stdout)["hashes_intact"] == 3 and resealed.read_bytes() == sealed.read_bytes()

    data = str(tmp_path / "data")
    loaded = _dossier("--data-dir", data, "consume", "load", str(sealed), "--format", "json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)[0]["stored"] == 3
    verified = _dossier("--data-dir", data, "inspect", "verify")
    assert verified.exit_code == 0 and "Integrity: OK" in verified.stdout
    replayed = _dossier("--data-dir", data, "inspect", "replay", DOSSIER, "--format", "json")
    assert replayed.exit_code == 0, replayed.output
    sheet = json.loads(replayed.stdout)
    assert (sheet["status"], sheet["computed_on"]["events"]) == (4, 3)
    assert [(s["seq"], s["action"]) for s in sheet["steps"]] == [(2, "DossierReceived"), (3, "DossierTransferred")]


def test_a_tampered_sealed_file_is_refused_unless_resealed(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed.jsonl"
    assert _dossier("produce", "seal", str(EXAMPLE), "--out", str(sealed)).exit_code == 0
    events = _lines(sealed)
    events[1]["actor_id"] = "tn-02"
    tampered = _write(tmp_path / "tampered.jsonl", events)
    out = tmp_path / "out.jsonl"
    refused = _dossier("produce", "seal", str(tampered), "--out", str(out))
    assert refused.exit_code == 3
    assert f"{tampered}:2: {DOSSIER} seq 2: hash" in refused.stderr and "changed after sealing" in refused.stderr
    assert f"{tampered}:3" not in refused.stderr  # the changed line only, not every line after it
    assert not out.exists()
    done = _dossier("produce", "seal", str(tampered), "--out", str(out), "--reseal", "--format", "json")
    assert done.exit_code == 0, done.output
    assert (json.loads(done.stdout)["hashes_intact"], json.loads(done.stdout)["resealed"]) == (1, 2)
    fixed = _lines(out)
    assert check_paths([out]).ok
    assert fixed[0] == events[0] and fixed[1]["actor_id"] == "tn-02"
    assert [fixed[i]["event_id"] != events[i]["event_id"] for i in (1, 2)] == [True, True]  # new events, new ids


def test_problems_name_their_lines_and_nothing_is_written(tmp_path: Path) -> None:
    written = _lines(EXAMPLE)
    written[0]["seq"] = 2  # out of place
    del written[2]["to_unit"]  # DossierTransferred requires it
    source = _write(tmp_path / "h.jsonl", [*written, {"dossier_id": 7}])
    out = tmp_path / "out.jsonl"
    refused = _dossier("produce", "seal", str(source), "--out", str(out))
    assert refused.exit_code == 3
    stderr = refused.stderr
    assert f"{source}:1: {DOSSIER}: seq 2 is written on its event 1 in file order" in stderr
    assert f"{source}:3: {DOSSIER} seq 3: invalid DossierTransferred event: DossierTransferred requires to_unit" in (
        stderr
    )
    assert f"{source}:4: dossier_id is missing or not a string" in stderr
    assert "Traceback" not in stderr and not out.exists()


def test_seal_refuses_to_overwrite_its_input_and_an_empty_file(tmp_path: Path) -> None:
    source = tmp_path / "h.jsonl"
    source.write_bytes(EXAMPLE.read_bytes())
    refused = _dossier("produce", "seal", str(source), "--out", str(source))
    assert refused.exit_code == 2 and "is the input FILE" in refused.stderr
    assert source.read_bytes() == EXAMPLE.read_bytes()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    refused = _dossier("produce", "seal", str(empty), "--out", str(tmp_path / "o.jsonl"))
    assert refused.exit_code == 1 and "no events" in refused.stderr
