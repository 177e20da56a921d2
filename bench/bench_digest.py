"""Signed digest of a big store: ``dossier inspect digest``'s work, timed by phase.

Target (issue 18 §1): a digest of the 10M-event store in ≤ 30 s on this machine.

Run (from the repository root)::

    .venv/bin/python -m bench.bench_digest --events 1000000
    .venv/bin/python -m bench.bench_digest --events 10000000 --runs 2

The store is generated in ClickHouse (``INSERT … SELECT`` from ``numbers()``,
8 events a dossier: 1.25M dossiers for 10M events, each with its own hash),
in a temporary data directory removed afterwards; generating it is not timed.
A digest only reads each dossier's head, so the events need not chain.
Phases: ``heads`` (the one query: heads, leaf bytes and leaf hashes in
ClickHouse, into two flat buffers), ``coverage`` (counts, offsets, times),
``tree`` (the levels above the leaves, hashlib in Python), ``sign``,
``write`` (gzip of the heads file, the digest); then, untimed against the
target, ``against`` (the heads file read back, its root rechecked, and merged
with the store's current heads: ``verify --against`` without the full verify
it also runs). Wall and process CPU seconds, and the one-minute load average:
the machine is shared, and other work moves wall times a lot.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.benchdata import fresh_store
from dossier_runtime.store import Store
from inspection import digest
from inspection.against import compare
from schemas.evidence import DIGEST_FORMAT, TREE_ALGORITHM, load_private_key, new_key_pair, sign_digest
from schemas.merkle import LEAF_ENCODING, levels

_GENERATE = """
INSERT INTO events (event_id, dossier_id, seq, event_type, occurred_at, recorded_at, unit_code, actor_id,
                    actor_role, procedure_code, rule_set, applicant_ref, applicant_kind, channel, status,
                    chain, _topic, _partition, _offset)
SELECT toString(generateUUIDv4()),
       concat('000.00.', toString(31 + intDiv(number, 8) % 40), '.H29-2401', leftPad(toString(intDiv(number, 8)
              % 28 + 1), 2, '0'), '-', leftPad(toString(intDiv(number, 8)), 7, '0')),
       number % 8 + 1, 'DossierSubmitted',
       toDateTime64('2024-01-15 01:00:00', 6, 'UTC') + toIntervalMinute(number % 100000),
       toDateTime64('2024-01-15 01:00:00', 6, 'UTC') + toIntervalMinute(number % 100000),
       '000.00.31.H29', 'cv-01', 'CASE_OFFICER', '1.001612', 'ND61-2018', repeat('a', 64), 'INDIVIDUAL', 'ONLINE',
       1, [unhex(repeat('00', 32)), SHA256(toString(number))], 'dossier-events', number % 6, intDiv(number, 6)
FROM numbers({n:UInt64})
"""


def run_once(store: Store, key_pem: bytes, out_dir: Path) -> dict[str, tuple[float, float]]:
    times: dict[str, tuple[float, float]] = {}
    key = load_private_key(key_pem)

    def lap(label: str, started: tuple[float, float]) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        times[label] = (now[0] - started[0], now[1] - started[1])
        return now

    mark = (time.perf_counter(), time.process_time())
    up_to = digest.cutoff(store)
    assert up_to is not None
    heads = digest.read_heads(store, up_to)
    mark = lap("heads", mark)
    covered = digest.coverage(store, up_to)
    mark = lap("coverage", mark)
    root = levels(heads.hashes)[-1]
    mark = lap("tree", mark)
    tree = {"algorithm": TREE_ALGORITHM, "leaf": LEAF_ENCODING, "size": heads.count, "root": root.hex()}
    body = {
        "format": DIGEST_FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "cutoff": up_to.isoformat(),
        "events": covered["events"],
        "dossiers": heads.count,
        "covers": covered["covers"],
        "tree": tree,
        "heads_file": "digest.heads.gz",
        "access_log": None,
    }
    signed = sign_digest(body, key)
    mark = lap("sign", mark)
    path = out_dir / f"digest-{time.monotonic_ns()}.json"
    digest.write(path, signed, heads)
    mark = lap("write", mark)
    times["total"] = (sum(t[0] for t in times.values()), sum(t[1] for t in times.values()))
    signed["digest"]["heads_file"] = digest.heads_path(path).name
    found, compared = compare(store, digest.stored_heads(path, signed["digest"]))
    assert not found and compared == heads.count, (len(found), compared)
    lap("against", mark)
    times["heads_file_mb"] = (digest.heads_path(path).stat().st_size / 1e6, 0.0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    private, _public = new_key_pair()
    with fresh_store() as store, tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        store.command(_GENERATE, {"n": args.events})
        events, dossiers = store.query("SELECT count(), uniqExact(dossier_id) FROM events").rows[0]
        print(f"generated {events:,} events of {dossiers:,} dossiers in {time.perf_counter() - started:.0f} s")
        for run in range(1, args.runs + 1):
            times = run_once(store, private, Path(out))
            load = Path("/proc/loadavg").read_text().split()[:3]
            figures = "  ".join(f"{k} {w:.2f}/{c:.2f}" for k, (w, c) in times.items() if k != "heads_file_mb")
            print(f"run {run}: {figures}  (wall/cpu s)  heads file {times['heads_file_mb'][0]:.1f} MB  load {load}")
            os.sync()


if __name__ == "__main__":
    main()
