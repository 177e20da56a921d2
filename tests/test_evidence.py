"""Signed digests and proofs (issue 18 §1): RFC 9162 hashing, keys, digest, verify --against, prove, verify-proof.

The store tests use a real embedded store (chDB) with the released migrations; each tampering test works on its
own copy of one store, digested once.
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from consumers.migrations import migrate
from dossier_audit.keys import keys_group
from dossier_audit.verifyproof import verify_proof_cmd
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from inspection.cli_digest import digest_cmd, prove_cmd
from inspection.cli_verify import verify_cmd
from inspection.digest import heads_path
from schemas.events import DossierEvent, EventType
from schemas.hashchain import seal, seal_chain
from schemas.merkle import (
    EMPTY_ROOT,
    RootBuilder,
    inclusion_path,
    leaf_bytes,
    leaf_hash,
    levels,
    root,
    root_from_path,
    split_leaves,
)
from tests.eventfactory import T0, history
from tests.test_audit_store import insert_events

E = EventType

# The Certificate Transparency reference tree (RFC 6962's reference code and every CT library's tests).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = {
    0: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    5: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip


def _ct_hashes(n: int) -> bytes:
    return b"".join(leaf_hash(bytes.fromhex(h)) for h in CT_LEAVES[:n])


def test_roots_and_paths_are_the_certificate_transparency_ones() -> None:
    assert root(b"").hex() == EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for n in range(1, 9):
        assert root(_ct_hashes(n)).hex() == CT_ROOTS[n - 1], n
    tree = levels(_ct_hashes(8))
    for index, path in CT_PATHS.items():
        assert [p.hex() for p in inclusion_path(tree, index)] == path
        leaf = _ct_hashes(8)[32 * index : 32 * index + 32]
        assert root_from_path(index, 8, leaf, [bytes.fromhex(p) for p in path]).hex() == CT_ROOTS[7]  # type: ignore[union-attr]


def test_every_inclusion_path_verifies_and_a_wrong_one_does_not() -> None:
    for size in range(1, 40):
        hashes = b"".join(leaf_hash(bytes([i, size])) for i in range(size))
        tree, top = levels(hashes), root(hashes)
        builder = RootBuilder()
        for index in range(size):
            leaf = hashes[32 * index : 32 * index + 32]
            builder.add(leaf)
            path = inclusion_path(tree, index)
            assert root_from_path(index, size, leaf, path) == top
            assert root_from_path(index, size, leaf_hash(b"other"), path) != top
            assert root_from_path(size, size, leaf, path) is None
            if path:
                assert root_from_path(index, size, leaf, path[:-1]) != top
                assert root_from_path(index, size, leaf, [bytes(32), *path[1:]]) != top
        assert builder.root() == top


def test_leaf_bytes_are_the_documented_encoding_and_split_back() -> None:
    head = bytes(range(32))
    leaf = leaf_bytes("000.00.31.H29-240115-0001", 7, head)
    assert leaf == b"\x00\x19" + b"000.00.31.H29-240115-0001" + b"\x00" * 7 + b"\x07" + head
    both = leaf + leaf_bytes("Hồ sơ", 2**40, head)
    assert [(d, s) for d, s, _, _ in split_leaves(both)] == [("000.00.31.H29-240115-0001", 7), ("Hồ sơ", 2**40)]


# ---------------------------------------------------------------------------------------------------- keys


def test_keys_new_writes_a_private_key_of_mode_0600_never_prints_it_and_never_overwrites(tmp_path: Path) -> None:
    made = CliRunner().invoke(keys_group, ["new", str(tmp_path / "k")])
    assert made.exit_code == 0, made.output
    private, public = tmp_path / "k" / "signing.key", tmp_path / "k" / "signing.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in private.read_text() and "PUBLIC KEY" in public.read_text()
    body = private.read_text().splitlines()[1]
    assert body not in made.output and "PRIVATE" not in made.output
    before = private.read_bytes()
    again = CliRunner().invoke(keys_group, ["new", str(tmp_path / "k")])
    assert again.exit_code == 1 and "never overwritten" in again.output
    assert private.read_bytes() == before


# ---------------------------------------------------------------------------------------------------- store

DOSSIERS = [f"000.00.31.H29-240115-{n:04d}" for n in range(1, 6)]


def _history(dossier: str) -> list[DossierEvent]:
    return history(
        (E.DOSSIER_SUBMITTED, 1),
        (E.DOSSIER_RECEIVED, 2),
        (E.DOSSIER_TRANSFERRED, 4),
        (E.STEP_HANDED_OVER, 4),
        dossier_id=dossier,
    )


def _insert(store: Store, events: list[DossierEvent]) -> None:
    insert_events(store, events)


def _mutate(store: Store, sql: str) -> None:
    store.command(sql, settings={"mutations_sync": "2"})


@pytest.fixture(scope="module")
def signed_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A store of 5 dossiers, its digest and the signer's keys: (data dir, digest, public key)."""
    base = tmp_path_factory.mktemp("evidence")
    with opened_store(Settings(data_dir=base / "data"), role="writer", serve=False) as store:
        migrate(store)
        _insert(store, [e for d in DOSSIERS for e in _history(d)])
    assert CliRunner().invoke(keys_group, ["new", str(base / "keys")]).exit_code == 0
    made = _run(digest_cmd, base / "data", "--out", str(base / "digest.json"), "--key", str(base / "keys/signing.key"))
    assert made.exit_code == 0, made.output
    return base / "data", base / "digest.json", base / "keys/signing.pub"


@pytest.fixture
def case(signed_store: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """A copy of the signed store this test may tamper with, with its digest and public key."""
    data, digest, pub = signed_store
    shutil.copytree(data, tmp_path / "data", symlinks=True)  # the store links its tables relatively
    for path in (digest, heads_path(digest)):
        shutil.copy(path, tmp_path / path.name)
    yield tmp_path / "data", tmp_path / digest.name, pub


def _run(command: click.Command, data: Path, *args: str) -> Result:
    return CliRunner().invoke(command, list(args), obj=Settings(data_dir=data), catch_exceptions=False)


def _against(data: Path, digest: Path, pub: Path) -> tuple[Result, list[dict[str, Any]]]:
    result = _run(verify_cmd, data, "--against", str(digest), "--public-key", str(pub), "--format", "json", "-q")
    rows = json.loads(result.stdout)["findings"] if result.stdout.startswith("{") else []
    return result, rows


def _writer(data: Path) -> Any:
    return opened_store(Settings(data_dir=data), role="writer", serve=False)


def test_the_digest_is_signed_small_and_the_untouched_store_verifies_against_it(case: tuple[Path, Path, Path]) -> None:
    data, digest, pub = case
    body = json.loads(digest.read_text())["digest"]
    assert (body["dossiers"], body["events"], body["tree"]["size"]) == (5, 20, 5)
    assert body["access_log"]["seq"] == 0  # the store's access log, empty: its head is covered too
    assert digest.stat().st_size < 2_000 and heads_path(digest).exists()
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 0, result.output
    assert rows == [] and json.loads(result.stdout)["computed_on"]["against_dossiers"] == 5
    table = _run(verify_cmd, data, "--against", str(digest), "--public-key", str(pub))
    assert table.exit_code == 0 and "all 5 dossiers hold the history it signed" in table.stdout


def test_a_chain_rewritten_consistently_passes_verify_and_fails_against_the_digest(
    case: tuple[Path, Path, Path],
) -> None:
    data, digest, pub = case
    victim = DOSSIERS[1]
    forged = [e.replace(actor_id="someone-else") if e.seq == 2 else e for e in _history(victim)]
    with _writer(data) as store:
        _mutate(store, f"ALTER TABLE events DELETE WHERE dossier_id = '{victim}'")
        _insert(store, list(seal_chain(forged)))  # every hash recomputed
    plain = _run(verify_cmd, data, "--format", "json", "-q")
    assert plain.exit_code == 0, plain.output  # the chain alone cannot tell
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 3
    assert [(r["kind"], r["dossier_id"], r["seq"]) for r in rows] == [("digest-history-rewritten", victim, 4)]
    assert json.loads(result.stdout)["computed_on"]["digest-history-rewritten"] == 1


def test_a_deleted_dossier_and_deleted_last_events_are_named(case: tuple[Path, Path, Path]) -> None:
    data, digest, pub = case
    with _writer(data) as store:
        _mutate(store, f"ALTER TABLE events DELETE WHERE dossier_id = '{DOSSIERS[0]}'")
        _mutate(store, f"ALTER TABLE events DELETE WHERE dossier_id = '{DOSSIERS[3]}' AND seq >= 3")
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 3
    assert [(r["kind"], r["dossier_id"], r["seq"]) for r in rows] == [
        ("digest-dossier-missing", DOSSIERS[0], 1),
        ("digest-events-missing", DOSSIERS[3], 3),
    ]


def test_a_past_event_changed_in_place_is_named_at_its_seq(case: tuple[Path, Path, Path]) -> None:
    data, digest, pub = case
    with _writer(data) as store:
        _mutate(store, f"ALTER TABLE events UPDATE actor_id = 'x' WHERE dossier_id = '{DOSSIERS[2]}' AND seq = 2")
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 3
    assert {(r["kind"], r["dossier_id"], r["first_divergent_seq"]) for r in rows} == {("hash-break", DOSSIERS[2], 2)}


def _appended(last: DossierEvent) -> DossierEvent:
    """The event after ``last``: its leader approves the result (a legal next step), sealed onto the chain."""
    step = last.replace(seq=last.seq + 1, event_id=f"{last.dossier_id}/{last.seq + 1}", event_type=E.RESULT_APPROVED,
                        occurred_at=T0 + timedelta(hours=2), recorded_at=T0 + timedelta(hours=2), actor_id="ld-01",
                        to_unit=None, to_actor=None, to_role=None)  # fmt: skip
    return seal(step, last.hash)


def test_events_appended_after_the_digest_pass(case: tuple[Path, Path, Path]) -> None:
    data, digest, pub = case
    with _writer(data) as store:
        _insert(store, [_appended(_history(DOSSIERS[0])[-1])])
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 0, result.output
    assert rows == []


def test_a_rewrite_hidden_under_appended_events_is_named(case: tuple[Path, Path, Path]) -> None:
    data, digest, pub = case
    rewritten = list(seal_chain([e.replace(actor_id="x") if e.seq == 1 else e for e in _history(DOSSIERS[4])]))
    with _writer(data) as store:
        _mutate(store, f"ALTER TABLE events DELETE WHERE dossier_id = '{DOSSIERS[4]}'")
        _insert(store, [*rewritten, _appended(rewritten[-1])])
    assert _run(verify_cmd, data, "-q").exit_code == 0
    result, rows = _against(data, digest, pub)
    assert result.exit_code == 3, result.output
    assert [(r["kind"], r["dossier_id"], r["seq"]) for r in rows] == [("digest-history-rewritten", DOSSIERS[4], 4)]


def test_a_forged_signature_an_altered_digest_and_an_altered_heads_file_are_refused(
    case: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, digest, pub = case
    signed = json.loads(digest.read_text())
    signed["digest"]["events"] += 1  # altered after signing
    digest.write_text(json.dumps(signed))
    result, _ = _against(data, digest, pub)
    assert result.exit_code == 3 and "signature is not valid" in result.output
    signed["digest"]["events"] -= 1
    signed["signature"]["value"] = base64.b64encode(bytes(64)).decode()  # forged
    digest.write_text(json.dumps(signed))
    result, _ = _against(data, digest, pub)
    assert result.exit_code == 3 and "signature is not valid" in result.output
    assert CliRunner().invoke(keys_group, ["new", str(tmp_path / "other")]).exit_code == 0
    result, _ = _against(data, digest, tmp_path / "other/signing.pub")
    assert result.exit_code == 3 and "not by the public key given" in result.output


def test_an_altered_heads_file_is_refused(case: tuple[Path, Path, Path]) -> None:
    import gzip

    data, digest, pub = case
    heads = bytearray(gzip.decompress(heads_path(digest).read_bytes()))
    heads[-1] ^= 1
    heads_path(digest).write_bytes(gzip.compress(bytes(heads)))
    result, _ = _against(data, digest, pub)
    assert result.exit_code == 3 and "does not hash to the digest's root" in result.output


# ---------------------------------------------------------------------------------------------------- proofs


def _prove(data: Path, digest: Path, dossier: str, out: Path) -> Result:
    return _run(prove_cmd, data, dossier, "--digest", str(digest), "--out", str(out), "-q")


def _check(proof: Path, pub: Path) -> Result:
    return CliRunner().invoke(verify_proof_cmd, [str(proof), "--public-key", str(pub)])


def test_a_proof_verifies_with_the_public_key_alone_and_any_tampering_is_caught(
    case: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, digest, pub = case
    out = tmp_path / "proof.json"
    made = _prove(data, digest, DOSSIERS[2], out)
    assert made.exit_code == 0, made.output
    shutil.rmtree(data)  # no store from here on
    valid = _check(out, pub)
    assert valid.exit_code == 0 and f"VALID proof {out}: dossier {DOSSIERS[2]}, events 1..4" in valid.output
    proof = json.loads(out.read_text())
    tampered: list[tuple[str, Any]] = [
        ("its content does not match its hash", lambda p: p["events"][1].update(actor_id="x")),
        ("prev_hash is not the hash", lambda p: p["events"][1].update(prev_hash="00" * 32)),
        ("does not lead to the digest's root", lambda p: p["events"].pop()),
        ("does not lead to the digest's root", lambda p: p.update(leaf_index=p["leaf_index"] + 1)),
        ("does not lead to the digest's root", lambda p: p["audit_path"].__setitem__(0, "00" * 32)),
        ("event 1 of the proof is", lambda p: p.update(dossier_id=DOSSIERS[3])),
        ("signature is not valid", lambda p: p["digest"]["digest"]["tree"].update(root="00" * 32)),
    ]
    for expected, change in tampered:
        copy = json.loads(json.dumps(proof))
        change(copy)
        out.write_text(json.dumps(copy))
        result = _check(out, pub)
        assert result.exit_code == 3 and expected in result.output, (expected, result.output)


def test_the_hand_check_of_docs_evidence_md_accepts_a_proof_and_refuses_a_tampered_one(
    case: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import re
    import subprocess
    import sys

    docs = (Path(__file__).resolve().parent.parent / "docs/evidence.md").read_text(encoding="utf-8")
    script = tmp_path / "check.py"
    script.write_text(re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)[-1])
    data, digest, pub = case
    out = tmp_path / "proof.json"
    assert _prove(data, digest, DOSSIERS[0], out).exit_code == 0
    run = [sys.executable, str(script), str(out), str(pub)]
    valid = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert valid.returncode == 0 and f"valid: {DOSSIERS[0]} seq 1 .. 4" in valid.stdout, valid.stderr
    proof = json.loads(out.read_text())
    proof["audit_path"][0] = "00" * 32
    out.write_text(json.dumps(proof))
    refused = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "does not lead to the signed root" in refused.stderr


def test_no_proof_of_a_history_the_store_no_longer_holds(case: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, digest, _pub = case
    with _writer(data) as store:
        _mutate(store, f"ALTER TABLE events DELETE WHERE dossier_id = '{DOSSIERS[1]}' AND seq = 4")
    refused = _prove(data, digest, DOSSIERS[1], tmp_path / "p.json")
    assert refused.exit_code == 3 and "no longer holds" in refused.output
    unknown = _prove(data, digest, "000.00.31.H29-240115-9999", tmp_path / "p.json")
    assert unknown.exit_code == 1 and "is not in the digest" in unknown.output


@pytest.mark.broker
def test_publish_sends_the_signed_digest_to_the_digests_topic(
    signed_store: tuple[Path, Path, Path], broker: Any, tmp_path: Path
) -> None:
    from dossier_runtime.kafka import make_consumer
    from inspection.digest import DIGEST_TOPIC
    from schemas.evidence import canonical_json

    data, digest, _pub = signed_store
    key = digest.parent / "keys/signing.key"
    settings = Settings(data_dir=data, kafka_bootstrap=broker.bootstrap)
    out = tmp_path / "published.json"
    result = CliRunner().invoke(
        digest_cmd,
        ["--out", str(out), "--key", str(key), "--publish", "--wide", "-q"],
        obj=settings,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"{DIGEST_TOPIC}/0@" in result.stdout
    consumer = make_consumer(broker.bootstrap)
    from kafka import TopicPartition

    consumer.assign([TopicPartition(DIGEST_TOPIC, 0)])
    consumer.seek_to_beginning()
    records = [r for batch in consumer.poll(timeout_ms=5000).values() for r in batch]
    consumer.close()
    assert [r.value for r in records][-1:] == [canonical_json(json.loads(out.read_text()))]
