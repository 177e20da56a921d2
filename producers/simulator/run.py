"""Run a simulation: arrivals over the window, shards in worker processes, output files.

Output directory:

* ``events-NNNNN.avro``: Avro object container files (released schema), one per
  shard, in dossier order; ``events-NNNNN.jsonl`` too with ``jsonl``;
* ``manifest.jsonl``: ground truth, one line per (dossier, rule) breach;
* ``summary.json``: the achieved calibration and counts;
* ``units.jsonl``, ``officials.jsonl``, ``procedures.jsonl``: the catalogues.

Same settings, same bytes: every random stream derives from the seed, the
Avro sync markers too, and nothing reads the clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from dossier_runtime.outfile import staged_directory
from producers.simulator.clock import FastClock
from producers.simulator.kinds import INJECTED
from producers.simulator.output import map_shards
from producers.simulator.shard import world
from schemas.catalogue import to_json_line
from schemas.rulebook import RULE_IDS, default_params
from schemas.workingtime import default_calendar

WINDOW_FROM: Final = date(2021, 1, 1)
WINDOW_TO: Final = date(2025, 6, 30)
SHARD_DOSSIERS: Final = 10_000


class SimulationError(ValueError):
    """Settings the simulator cannot honour; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    dossiers: int = 20_000
    start: date = date(2023, 1, 3)
    days: int = 365
    seed: int = 1
    out: Path = Path("sim")
    on_time: float = 0.9984
    online_share: float = 0.52
    rates: dict[str, float] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=default_params)
    pseudonym_key: bytes = dataclasses.field(default=b"", repr=False)
    codec: str = "null"
    jsonl: bool = False
    workers: int = 0  # 0: one per CPU
    #: (K, N): only the K-th of N runs of consecutive shards, byte for byte the files the whole run writes for them
    part: tuple[int, int] = (1, 1)

    def validate(self) -> None:
        if self.dossiers < 1:
            raise SimulationError("--dossiers must be at least 1")
        if self.days < 1:
            raise SimulationError("--days must be at least 1")
        end = self.start + timedelta(days=self.days - 1)
        if self.start < WINDOW_FROM or end > WINDOW_TO:
            raise SimulationError(
                f"the window {self.start}..{end} must lie within {WINDOW_FROM}..{WINDOW_TO}: the simulated city has "
                "its 2021-2025 structure (districts were abolished on 1/7/2025)"
            )
        k, n = self.part
        if not 1 <= k <= n:
            raise SimulationError(f"--part {k}/{n}: K must be between 1 and N")
        if not 0.9 <= self.on_time <= 1.0:
            raise SimulationError("--on-time must be between 0.9 and 1.0")
        if not 0.0 <= self.online_share <= 0.9:
            raise SimulationError("--online-share must be between 0 and 0.9")
        late_injected = sum(self.rates.get(k, 0.0) for k in ("R1", "R2", "R3", "R4"))
        if late_injected > 1 - self.on_time + 1e-12:
            raise SimulationError(
                f"R1-R4 are late dossiers: their rates ({late_injected:g}) cannot exceed the late rate "
                f"1 - on-time = {1 - self.on_time:g}"
            )
        if sum(self.rates.values()) - late_injected + (1 - self.on_time) > 0.5:
            raise SimulationError("the violation rates add up to more than half of all dossiers")


def day_plan(settings: SimulationSettings, clock: FastClock) -> list[tuple[int, int]]:
    """(local day number, dossiers received) for each working day of the window.

    Monday is busiest, Friday quietest; the weeks before Tết are quiet and the
    two after it busy; December and the summer are above average.
    """
    cal = default_calendar()
    first = (settings.start - date(1970, 1, 1)).days
    days = [d for d in range(first, first + settings.days) if clock.is_working_day(d)]
    if not days:
        raise SimulationError("the window holds no working day")
    tet = sorted(
        (d - date(1970, 1, 1)).days for d, name in cal.data.days_off.items() if "Tết" in name and "Dương" not in name
    )
    month = (1.05, 0.85, 1.0, 1.0, 1.0, 1.05, 1.1, 1.1, 1.0, 1.0, 1.05, 1.15)
    weights = []
    for d in days:
        dd = date(1970, 1, 1) + timedelta(days=d)
        w = (1.15, 1.05, 1.0, 1.0, 0.9, 0.8, 0.8)[dd.weekday()] * month[dd.month - 1]
        for t in tet:
            if 0 < t - d <= 10:
                w *= 0.6
                break
            if 0 < d - t <= 14:
                w *= 1.35
                break
        weights.append(w)
    total = sum(weights)
    exact = [settings.dossiers * w / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(days)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: settings.dossiers - sum(counts)]:
        counts[i] += 1
    return [(d, c) for d, c in zip(days, counts, strict=True) if c]


def shards(plan: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = [[]]
    size = 0
    for day, count in plan:
        if size >= SHARD_DOSSIERS:
            out.append([])
            size = 0
        out[-1].append((day, count))
        size += count
    return out


def _worker_settings(s: SimulationSettings) -> dict[str, Any]:
    rates = dict(s.rates)
    rates["late"] = max(0.0, 1 - s.on_time - sum(rates.get(k, 0.0) for k in ("R1", "R2", "R3", "R4")))
    return {
        "seed": s.seed,
        "online_share": s.online_share,
        "params": dict(s.params),
        "rates": rates,
        "pseudonym_key": s.pseudonym_key,
        "codec": s.codec,
        "jsonl": s.jsonl,
        "out": str(s.out),
    }


def write_catalogues(settings: SimulationSettings) -> None:
    w = world(settings.seed, settings.online_share, tuple(sorted(settings.params.items())))
    out = settings.out
    for name, items in (
        ("units.jsonl", w.city.units),
        ("officials.jsonl", w.city.officials),
        ("procedures.jsonl", [e.procedure for e in w.entries]),
    ):
        (out / name).write_text("".join(to_json_line(i) + "\n" for i in items), encoding="utf-8")


def simulate(settings: SimulationSettings, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write the whole simulation to ``settings.out``; returns the summary (also in summary.json).

    Everything is written into a staging directory inside ``settings.out`` and moved into it once complete
    (:func:`dossier_runtime.outfile.staged_directory`): a run that fails (a full disk, a file-size limit, an
    interruption) leaves the directory as it was, without a part of a file or a temporary one, and says why
    in an :class:`~dossier_runtime.outfile.OutputFileError`.
    """
    settings.validate()
    with staged_directory(settings.out) as stage:
        summary = _simulate(dataclasses.replace(settings, out=stage), progress)
        for stale in settings.out.glob("events-*.*"):  # a run of more shards before: not this run's
            stale.unlink()
    return summary


def part_range(n_shards: int, part: tuple[int, int]) -> range:
    """The shard numbers of part ``K/N``: the K-th of N runs of consecutive shards, as even as whole shards allow.

    A part that would hold no shard (N above the shard count) is an error, not an empty success."""
    k, n = part
    if n > n_shards:
        raise SimulationError(f"--part {k}/{n}: this run has only {n_shards} shard(s) of {SHARD_DOSSIERS:,} dossiers")
    return range((k - 1) * n_shards // n, k * n_shards // n)


def part_dossiers(settings: SimulationSettings) -> int:
    """How many dossiers ``settings.part`` of the run holds (all of them for the default 1/1)."""
    parts = shards(day_plan(settings, FastClock()))
    return sum(count for i in part_range(len(parts), settings.part) for _day, count in parts[i])


def _simulate(settings: SimulationSettings, progress: Callable[[int], None] | None) -> dict[str, Any]:
    plan = day_plan(settings, FastClock())
    parts = shards(plan)
    write_catalogues(settings)
    ws = _worker_settings(settings)
    jobs = [(ws, i, parts[i]) for i in part_range(len(parts), settings.part)]
    workers = min(len(jobs), settings.workers or os.cpu_count() or 1)
    results = sorted(map_shards(jobs, workers, progress), key=lambda r: r["shard"])
    with (settings.out / "manifest.jsonl").open("w", encoding="utf-8") as fo:
        for r in results:
            fo.writelines(line + "\n" for line in r["manifest"])
    stats: Counter[str] = Counter()
    for r in results:
        stats.update(r["stats"])
    summary = _summary(settings, stats, len(parts), plan)
    summary["counts"]["shards_written"] = len(jobs)
    (settings.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _summary(
    settings: SimulationSettings, stats: Counter[str], n_shards: int, plan: list[tuple[int, int]]
) -> dict[str, Any]:
    received = stats["received"] or 1
    late = stats["late"]
    return {
        "settings": {
            "dossiers": settings.dossiers,
            "start": settings.start.isoformat(),
            "days": settings.days,
            "seed": settings.seed,
            "on_time_target": settings.on_time,
            "online_share_target": settings.online_share,
            "rates": {k: settings.rates.get(k, 0.0) for k in INJECTED},
            "params": settings.params,
            "codec": settings.codec,
            "part": list(settings.part),
        },
        "achieved": {
            "on_time_rate": round(stats["on_time"] / received, 6),
            "late_rate": round(late / received, 6),
            "late_dossiers": late,
            "late_with_timely_apology": stats["late_with_timely_apology"],
            "apology_coverage": round(stats["late_with_timely_apology"] / late, 6) if late else None,
            "online_share": round(stats["online"] / max(1, stats["dossiers"]), 6),
        },
        "counts": {
            "dossiers": stats["dossiers"],
            "received": stats["received"],
            "events": stats["events"],
            "working_days": len(plan),
            "shards": n_shards,
            "final_status": {k.split(":")[1]: v for k, v in sorted(stats.items()) if k.startswith("final_status:")},
            "kinds": {k.split(":", 1)[1]: v for k, v in sorted(stats.items()) if k.startswith("kind:")},
            "findings_by_rule": {r: stats.get(f"rule:{r}", 0) for r in RULE_IDS},
        },
    }
