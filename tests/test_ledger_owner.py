"""Through the owner's endpoint, the integrity ledger holds only what the owner found.

A reader holds the endpoint's token (it runs as the same OS user), so it can
send anything: rows for the ledger the old way, a claim about parts that do
not exist, a wrong checksum, another table, a part holding an altered event.
None of it may hide that event from ``verify --use-ledger`` or the audit's
INTEGRITY-HASH. The owner here is this test process (it opened the store and
serves it); the reader speaks HTTP to it, or is a ``dossier inspect verify``
in another process.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dossier_runtime.errors import StoreError
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from dossier_runtime.storebackends import EndpointBackend
from inspection import ledger
from inspection.audit import audit, select_rules
from inspection.verify import verify
from schemas.events import DossierEvent
from tests.test_audit_store import AuditStore
from tests.test_verify import _clean

LEDGER = ("integrity_runs", "integrity_parts", "integrity_breaks")


def _dossier(n: int) -> list[DossierEvent]:
    return _clean(f"000.00.31.H29-240115-{n:04d}")


def _tampered() -> list[DossierEvent]:
    events = _dossier(2)
    events[2] = events[2].replace(actor_id="someone-else")  # content no longer matches its hash
    return events


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Store]:
    """A store with a clean dossier and a tampered one (one part each), held and served by this process."""
    s = AuditStore(tmp_path / "data")
    s.add(_dossier(1))
    s.add(_tampered())
    s.close()
    with opened_store(Settings(data_dir=tmp_path / "data"), role="writer") as store:
        yield store


def _data_dir(owner: Store) -> Path:
    return Path(owner.location.removeprefix("embedded chDB in ")).parent  # the store is <data dir>/store


def _endpoint(owner: Store) -> dict[str, Any]:
    return dict(json.loads((_data_dir(owner) / "store.endpoint.json").read_text()))


def _post(owner: Store, path: str, body: object) -> tuple[int, dict[str, Any]]:
    """What a token holder can send, byte for byte."""
    endpoint = _endpoint(owner)
    conn = http.client.HTTPConnection("127.0.0.1", endpoint["port"], timeout=60)
    try:
        conn.request("POST", path, json.dumps(body), {"X-Dossier-Token": endpoint["token"]})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _ledger(owner: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: owner.query(f"SELECT * EXCEPT run_id FROM {t} ORDER BY ALL").rows for t in LEDGER}


def _query(owner: Store) -> ledger.QueryFn:
    return lambda sql, params: owner.query(sql, params).rows


def _forged(owner: Store) -> ledger.Entry:
    """A run that says every active part is clean: the ledger a forger wants."""
    table_uuid = ledger.recordable(_query(owner))
    assert table_uuid is not None
    return ledger.Entry(table_uuid, tuple(ledger.active_parts(_query(owner))), (), 12)


def _hash_breaks(owner: Store) -> tuple[set[tuple[str, int]], set[tuple[str, tuple[int, ...]]], str]:
    """(verify --use-ledger's hash breaks, INTEGRITY-HASH's findings, how much the ledger covered)."""
    coverage = ledger.coverage(_query(owner))
    found = verify(_query(owner), coverage=coverage).findings
    report = audit(_query(owner), select_rules(["INTEGRITY-HASH"]))
    assert report.integrity is not None
    return (
        {(f.dossier_id, f.seq) for f in found if f.kind == "hash-break"},
        {(f.dossier_id, f.evidence_seqs) for f in report.findings},
        report.integrity["hashes"],
    )


def test_ledger_rows_posted_the_old_way_are_refused(owner: Store) -> None:
    rows = _forged(owner).rows()
    for table in (*LEDGER, "events"):
        status, answer = _post(owner, "/append", {"table": table, "rows": ledger.jsonl(rows.get(table, [{}])).decode()})
        assert status == 403 and "takes no rows for the integrity ledger" in answer["error"], (table, answer)
    # the claim may not carry what the owner finds itself
    claim = _forged(owner).claim().to_json()
    for extra in ({"breaks": []}, {"rows": rows["integrity_parts"]}, {"table": "integrity_parts"}, {"events": 1}):
        status, answer = _post(owner, "/record-verify", {**claim, **extra})
        assert status == 400 and "records only what it finds itself" in answer["error"], (extra, answer)
    endpoint = _endpoint(owner)
    reader = EndpointBackend(endpoint["port"], endpoint["token"], endpoint["pid"], owner.database)
    with pytest.raises(StoreError, match="writes the integrity ledger itself"):
        reader.append("integrity_parts", ledger.jsonl(rows["integrity_parts"]))
    assert _ledger(owner) == {t: [] for t in LEDGER}
    assert _hash_breaks(owner)[0] == {(_tampered()[0].dossier_id, 3)}


def test_a_claim_the_store_contradicts_is_refused(owner: Store) -> None:
    claim = _forged(owner).claim()
    name, rows, checksum = claim.parts[1]
    wrong_checksum = ledger.Claim(claim.table_uuid, (claim.parts[0], (name, rows, "0" * 32)))
    wrong_rows = ledger.Claim(claim.table_uuid, ((name, rows + 1, checksum),))
    other_table = ledger.Claim(uuid.uuid4(), claim.parts)
    ledger_table = owner.query("SELECT uuid FROM system.tables WHERE name = 'integrity_parts'").scalar()
    for forged, why in [
        (wrong_checksum, f"part {name} of events holds {rows} rows with checksum {checksum}, not the"),
        (wrong_rows, f"not the {rows + 1} rows"),
        (other_table, "the claim is about table"),
        (ledger.Claim(uuid.UUID(str(ledger_table)), claim.parts), "the claim is about table"),
    ]:
        status, answer = _post(owner, "/record-verify", forged.to_json())
        assert status == 409 and why in answer["error"], answer
    assert _ledger(owner) == {t: [] for t in LEDGER}


def test_a_part_with_an_altered_event_goes_on_record_with_the_break_the_owner_found(owner: Store) -> None:
    victim = _tampered()[0].dossier_id
    assert _hash_breaks(owner)[:2] == ({(victim, 3)}, {(victim, (3,))})
    claim = _forged(owner).claim()
    ghost = ("202401_999_999_0", 6, "f" * 32)  # a part that does not exist
    status, answer = _post(owner, "/record-verify", ledger.Claim(claim.table_uuid, (*claim.parts, ghost)).to_json())
    assert status == 200, answer
    assert (answer["parts"], answer["breaks"], answer["events"], answer["left_out"]) == (2, 1, 12, 1)
    recorded = _ledger(owner)
    assert [r[1:] for r in recorded["integrity_breaks"]] == [(victim, 3, "hash-break")]
    assert sorted(r[2] for r in recorded["integrity_parts"]) == sorted(n for n, _, _ in claim.parts)
    # both parts covered, the tampered dossier re-examined: the altered event is still found by both
    breaks, findings, hashes = _hash_breaks(owner)
    assert (breaks, findings) == ({(victim, 3)}, {(victim, (3,))})
    assert hashes == "recomputed for 0 of 12 events (0 of 2 parts)", hashes

    owner.command("OPTIMIZE TABLE events FINAL")  # the claimed parts merged away: left out, nothing made up
    status, answer = _post(owner, "/record-verify", claim.to_json())
    assert status == 200 and (answer["parts"], answer["breaks"], answer["left_out"]) == (0, 0, 2), answer


def test_a_verify_through_the_endpoint_is_recorded_and_used(owner: Store) -> None:
    env = {**os.environ, "DOSSIER_DATA_DIR": str(_data_dir(owner))}
    victim = _tampered()[0].dossier_id

    def run(*args: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "dossier_audit", "inspect", "verify", "--format", "json", "-q", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 3, done.stderr  # the altered event, found every time
        out = json.loads(done.stdout)
        assert [(f["kind"], f["dossier_id"], f["seq"]) for f in out["findings"]] == [("hash-break", victim, 3)]
        return dict(out["computed_on"])

    full = run()
    assert full["ledger"].startswith("recorded run ") and ": 2 parts, 1 hash break(s)" in full["ledger"], full
    assert [r[1:] for r in _ledger(owner)["integrity_breaks"]] == [(victim, 3, "hash-break")]
    cheap = run("--use-ledger")
    assert cheap["integrity"]["hashes"] == "recomputed for 0 of 12 events (0 of 2 parts)", cheap
    assert cheap["ledger"].startswith("recorded run ") and ": 0 parts, 0 hash break(s)" in cheap["ledger"], cheap
    assert owner.query("SELECT count() FROM integrity_runs").scalar() == 2
