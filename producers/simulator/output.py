"""Shards into files, in worker processes, with progress finer than a shard.

A shard's dossiers are generated, encoded and written as one stream: each
dossier's event bodies go to the shard's Avro container file (and JSON Lines
with ``jsonl``), its breaches to the shard's manifest lines, its outcome to
the shard's counts. Workers report progress every :data:`PROGRESS_EVERY`
dossiers through a shared counter the parent polls, so a bar moves steadily
even though results arrive one shard (10,000 dossiers) at a time.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from producers.simulator.fastcodec import BODY, OcfWriter
from producers.simulator.shard import DossierOut, ShardGenerator

PROGRESS_EVERY: Final = 1_000
_POLL_S: Final = 0.1
Job = tuple[dict[str, Any], int, list[tuple[int, int]]]
Tick = Callable[[int], None]

_shared_done: Any = None  # a worker's handle on the parent's progress counter (set by _init_worker)


def run_shard(job: Job, tick: Tick | None = None) -> dict[str, Any]:
    """Generate one shard into its files; returns its manifest lines and counts."""
    settings, shard, days = job
    tick = tick or _shared_tick
    gen = ShardGenerator(settings, shard)
    out = Path(settings["out"])
    marker = hashlib.sha256(f"sync/{settings['seed']}/{shard}".encode()).digest()[:16]
    manifest: list[str] = []
    tally = _Tally()
    jsonl = (out / f"events-{shard:05d}.jsonl").open("w", encoding="utf-8") if settings["jsonl"] else None
    body, since = BODY, 0
    with (out / f"events-{shard:05d}.avro").open("wb") as fo:
        writer = OcfWriter(fo, marker, codec=settings["codec"])
        write = writer.write_bodies
        for day, count in days:
            for _ in range(count):
                d = gen.dossier(day)
                events = d.events
                write([body[e["event_type"]](e) for e in events])
                if jsonl is not None:
                    from producers.simulator.rawevents import json_line

                    jsonl.writelines(json_line(e) + "\n" for e in events)
                tally.add(d)
                if d.findings:
                    dossier_id = events[0]["dossier_id"]
                    for rule, evidence in d.findings.items():
                        line = {"dossier_id": dossier_id, "rule": rule, "evidence_seqs": evidence}
                        manifest.append(json.dumps(line))
                since += 1
                if since == PROGRESS_EVERY and tick is not None:
                    tick(since)
                    since = 0
        writer.flush()
    if jsonl is not None:
        jsonl.close()
    if since and tick is not None:
        tick(since)
    return {"shard": shard, "manifest": manifest, "stats": tally.stats()}


class _Tally:
    """A shard's counts (plain integers in the loop, a Counter at the end)."""

    def __init__(self) -> None:
        self.dossiers = self.events = self.online = 0
        self.received = self.on_time = self.late = self.late_apologised = 0
        self.other: Counter[str] = Counter()

    def add(self, d: DossierOut) -> None:
        self.dossiers += 1
        events = d.events
        self.events += len(events)
        self.online += d.online
        if d.on_time is not None:
            self.received += 1
            if d.on_time:
                self.on_time += 1
            else:
                self.late += 1
                self.late_apologised += "R1" not in d.findings
        last = events[-1]
        if last["event_type"] == "SyncedToNational":
            last = next((e for e in reversed(events) if e["event_type"] != "SyncedToNational"), last)
        other = self.other
        other[f"kind:{d.kind}"] += 1
        other[f"final_status:{last['status']}"] += 1
        for rule in d.findings:
            other[f"rule:{rule}"] += 1

    def stats(self) -> dict[str, int]:
        out = {
            "dossiers": self.dossiers,
            "events": self.events,
            "online": self.online,
            "received": self.received,
            "on_time": self.on_time,
            "late": self.late,
            "late_with_timely_apology": self.late_apologised,
        }
        out.update(self.other)
        return out


def _shared_tick(n: int) -> None:
    if _shared_done is not None:
        with _shared_done.get_lock():
            _shared_done.value += n


def _init_worker(done: Any) -> None:
    global _shared_done
    _shared_done = done


def map_shards(jobs: list[Job], workers: int, progress: Tick | None) -> Iterator[dict[str, Any]]:
    """Run the jobs (in ``workers`` processes when more than one), yielding results as shards finish.

    ``progress`` gets the number of dossiers newly done, every :data:`PROGRESS_EVERY` or so.
    """
    if workers <= 1:
        for job in jobs:
            yield run_shard(job, progress)
        return
    ctx = multiprocessing.get_context("fork")
    done = ctx.Value("q", 0)
    reported = 0
    with ctx.Pool(workers, initializer=_init_worker, initargs=(done,)) as pool:
        results = pool.imap_unordered(run_shard, jobs)
        remaining = len(jobs)
        while remaining:
            try:
                result = results.next(timeout=_POLL_S)
            except multiprocessing.TimeoutError:
                result = None
            if progress is not None and done.value > reported:
                current = done.value
                progress(current - reported)
                reported = current
            if result is not None:
                remaining -= 1
                yield result


__all__ = ["PROGRESS_EVERY", "map_shards", "run_shard"]
