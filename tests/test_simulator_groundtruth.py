"""The manifest is the whole truth: an independent checker of the rulebook agrees with it exactly.

The checker below is written from ``schemas/rulebook.py`` alone, over contract
events decoded from the Avro files with fastavro, using the reference
working calendar (datetimes), not the simulator's integer clock or its judge.
"""

from __future__ import annotations

import collections
import itertools
import json
from datetime import datetime, time, timedelta
from pathlib import Path

import fastavro
import pytest

from producers.simulator.kinds import ALL_RATE, INJECTED
from producers.simulator.run import SimulationSettings, simulate
from schemas.catalogue import Procedure
from schemas.events import ZERO_HASH, DossierEvent, EventType
from schemas.hashchain import compute_hash
from schemas.lifecycle import replay
from schemas.rulebook import RULE_IDS, default_params
from schemas.textnorm import is_blank
from schemas.workingtime import HCMC_TZ, default_calendar

E = EventType
CAL = default_calendar()
HANDOVERS = {E.DOSSIER_TRANSFERRED, E.STEP_HANDED_OVER, E.STEP_RETURNED, E.INTER_AGENCY_TRANSFERRED}
CLOSERS = HANDOVERS | {
    E.RESULT_APPROVED,
    E.RESULT_ISSUED,
    E.SUPPLEMENT_REQUESTED,
    E.FINANCIAL_OBLIGATION_REQUESTED,
    E.WITHDRAWAL_REQUESTED,
    E.PROCESSING_STOPPED,
    E.RECEPTION_REFUSED,
}
WD = timedelta(minutes=480)
KEY = b"k" * 32


def load(out: Path) -> tuple[dict[str, list[DossierEvent]], dict[tuple[str, str], list[int]], dict[str, Procedure]]:
    dossiers: dict[str, list[DossierEvent]] = collections.defaultdict(list)
    for path in sorted(out.glob("events-*.avro")):
        with path.open("rb") as fo:
            for record in fastavro.reader(fo):
                record["event_id"] = str(record["event_id"])
                event = DossierEvent.from_record(record)
                dossiers[event.dossier_id].append(event)
    manifest = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        obj = json.loads(line)
        manifest[(obj["dossier_id"], obj["rule"])] = obj["evidence_seqs"]
    procs = {}
    for line in (out / "procedures.jsonl").read_text().splitlines():
        p = Procedure.from_json(json.loads(line))
        procs[p.procedure_code] = p
    return dossiers, manifest, procs


def wt(a: datetime, b: datetime) -> timedelta:
    return CAL.working_time_between(a, b)


def working_instant(t: datetime) -> bool:
    local = t.astimezone(HCMC_TZ)
    tod = local.time()
    return CAL.is_working_day(local.date()) and (time(7) <= tod < time(11, 30) or time(13, 30) <= tod < time(17))


def check(events: list[DossierEvent], procs: dict[str, Procedure], p: dict[str, object]) -> dict[str, list[int]]:
    """Every rule of the rulebook, literally, for one dossier."""
    found: dict[str, set[int]] = collections.defaultdict(set)
    first = lambda pred: next((e for e in events if pred(e)), None)  # noqa: E731
    r = first(lambda e: e.event_type is E.DOSSIER_RECEIVED)
    due0 = r.due_at if r else None
    d = first(lambda e: e.status == 9)
    t = first(lambda e: e.status == 10)
    end = None
    if r is not None:
        end = d or t or first(lambda e: e.seq > r.seq and e.status in (3, 7, 8))
    pause = timedelta(0)
    opened: tuple[datetime, int] | None = None
    for e in events:
        if opened and e.status != opened[1]:
            pause += wt(opened[0], e.occurred_at)
            opened = None
        if e.event_type is E.SUPPLEMENT_REQUESTED and e.status == 5:
            opened = (e.occurred_at, 5)
        if e.event_type is E.FINANCIAL_OBLIGATION_REQUESTED and e.clock_stopped and e.status == 6:
            opened = (e.occurred_at, 6)
    late = end is not None and due0 is not None and wt(due0, end.occurred_at) - pause > timedelta(0)
    apologies = [e for e in events if e.event_type is E.APOLOGY_ISSUED]
    supplements = [e for e in events if e.event_type is E.SUPPLEMENT_REQUESTED and r and e.seq > r.seq]
    proc = procs.get(events[0].procedure_code)
    # R1-R3
    if late and not any(e.seq > r.seq and wt(e.occurred_at, due0) >= p["apology_lead_wd"] * WD for e in apologies):
        found["R1"] |= {r.seq, end.seq}
    if len(apologies) > p["max_apologies"] or len({a.new_due_at for a in apologies}) > 1:
        found["R2"] |= {a.seq for a in apologies}
    if apologies and end and wt(apologies[-1].new_due_at, end.occurred_at) - pause > timedelta(0):
        found["R3"] |= {apologies[-1].seq, end.seq}
    # R4-R8
    if len(supplements) > p["max_supplement_requests"]:
        found["R4"] |= {s.seq for s in supplements}
    if supplements and wt(r.occurred_at, supplements[0].occurred_at) > p["supplement_deadline_wd"] * WD:
        found["R5"] |= {r.seq, supplements[0].seq}
    for s in supplements:
        if due0 and wt(s.occurred_at, due0) < timedelta(minutes=p["last_day_minutes"]):
            found["R6"].add(s.seq)
    for x in events:
        if x.event_type in (E.SUPPLEMENT_REQUESTED, E.RECEPTION_GUIDANCE_ISSUED):
            if proc and set(x.requested_documents) - set(proc.component_codes):
                found["R7"].add(x.seq)
            for g in events:
                if (
                    g.event_type is E.DOSSIER_DIGITIZED
                    and g.seq < x.seq
                    and set(g.documents) & set(x.requested_documents)
                ):
                    found["R8"] |= {x.seq, g.seq}
    # R9
    x = first(lambda e: e.event_type is E.DOSSIER_TRANSFERRED and r is not None and e.seq > r.seq)
    if x is not None:
        local = r.occurred_at.astimezone(HCMC_TZ)
        if CAL.is_working_day(local.date()) and local.time() <= time(15):
            limit = CAL.day_end(local.date())
        else:
            nxt = CAL.next_working_day(local.date(), include_self=False)
            limit = datetime.combine(nxt, time(7), HCMC_TZ) + timedelta(minutes=p["transfer_grace_minutes"])
        if x.occurred_at > limit:
            found["R9"] |= {r.seq, x.seq}
    # R10
    for i, o in enumerate(events):
        if o.step_budget_minutes is None:
            continue
        c = next((e for e in events[i + 1 :] if e.event_type in CLOSERS), None)
        if c and wt(o.occurred_at, c.occurred_at) > timedelta(minutes=o.step_budget_minutes):
            found["R10"] |= {o.seq, c.seq}
    # R11
    if d is not None:
        if t is not None and due0 is not None and d.occurred_at <= due0 < t.occurred_at:
            found["R11"] |= {d.seq, t.seq}
        if not any(
            e.event_type in (E.APPLICANT_NOTIFIED, E.RESULT_RETURNED)
            and e.seq > d.seq
            and wt(d.occurred_at, e.occurred_at) <= p["notify_max_wd"] * WD
            for e in events
        ):
            found["R11"].add(d.seq)
    # R12
    for prev, e in zip([None, *events], events, strict=False):
        if e.recorded_at - e.occurred_at > timedelta(minutes=p["backdate_threshold_minutes"]):
            found["R12"].add(e.seq)
        if prev is not None and e.occurred_at < prev.occurred_at:
            found["R12"] |= {prev.seq, e.seq}
    if end is not None:
        if end.occurred_at == due0:
            found["R12"] |= {r.seq, end.seq}
        if end.actor_role.value not in ("SYSTEM", "APPLICANT") and not working_instant(end.occurred_at):
            found["R12"].add(end.seq)
    # R13-R16
    found["R13"] |= {e.seq for e in events if e.event_type in (E.ADMIN_OVERRIDE, E.RESULT_RECALLED)}
    if r and d and r.actor_id == d.actor_id and r.n_attachments == 0:
        if not any(r.seq < e.seq < d.seq and e.event_type in HANDOVERS for e in events):
            if wt(r.occurred_at, d.occurred_at) < timedelta(minutes=p["phantom_max_minutes"]):
                found["R14"] |= {r.seq, d.seq}
    if (
        r
        and d
        and d.seq > r.seq
        and not any(e.event_type is E.RESULT_APPROVED and r.seq < e.seq < d.seq for e in events)
    ):
        found["R15"] |= {r.seq, d.seq}
    if r and proc and not proc.same_day and (r.form_code is None or r.due_at is None):
        found["R16"].add(r.seq)
    # R17
    for x in events:
        if x.event_type in (E.RECEPTION_REFUSED, E.PROCESSING_STOPPED):
            if is_blank(x.reason) or x.n_attachments == 0:
                found["R17"].add(x.seq)
        if x.event_type is E.PROCESSING_STOPPED and due0 and x.occurred_at > due0:
            if not any(
                e.event_type is E.WITHDRAWAL_REQUESTED and e.actor_role.value == "APPLICANT" and e.seq < x.seq
                for e in events
            ):
                found["R17"].add(x.seq)
    # R18
    s0 = events[0]
    if s0.event_type is E.DOSSIER_SUBMITTED and s0.status == 1:
        left = first(lambda e: e.status != 1)
        if left and wt(s0.occurred_at, left.occurred_at) > timedelta(hours=p["unreceived_max_wh"]):
            found["R18"] |= {s0.seq, left.seq}
    # R19
    syncs = [e for e in events if e.event_type is E.SYNCED_TO_NATIONAL]
    for prev, x in zip([None, *events], events, strict=False):
        if (prev is not None and prev.status == x.status) or x.event_type is E.SYNCED_TO_NATIONAL:
            continue
        limit = timedelta(hours=p["sync_max_hours"])
        if not any(y.seq > x.seq and y.ref_seq >= x.seq and y.occurred_at - x.occurred_at <= limit for y in syncs):
            found["R19"].add(x.seq)
    # R20, R21
    if r and r.channel.value in ("DIRECT", "POSTAL"):
        if not any(e.event_type is E.DOSSIER_DIGITIZED and e.seq > r.seq for e in events):
            found["R20"].add(r.seq)
    issued = [e for e in events if e.event_type is E.RESULT_ISSUED]
    if proc and proc.paper_result and issued and issued[0].result_electronic is False:
        if not any(
            e.event_type is E.DOSSIER_DIGITIZED and e.seq > issued[0].seq and e.result_electronic for e in events
        ):
            found["R20"].add(issued[0].seq)
    if r:
        proc_ev = first(
            lambda e: (
                (
                    e.seq > r.seq
                    and e.actor_id == r.actor_id
                    and e.event_type
                    in (E.STEP_HANDED_OVER, E.STEP_RETURNED, E.INTER_AGENCY_TRANSFERRED, E.SUPPLEMENT_REQUESTED)
                )
                or (e.event_type is E.FINANCIAL_OBLIGATION_REQUESTED and e.actor_id == r.actor_id and e.seq > r.seq)
            )
        )
        approval = first(lambda e: e.event_type is E.RESULT_APPROVED and e.actor_id == r.actor_id)
        if proc_ev and approval:
            found["R21"] |= {r.seq, proc_ev.seq, approval.seq}
    # integrity
    seqs = [e.seq for e in events]
    distinct = sorted(set(seqs))
    found["INTEGRITY-SEQ"] |= {s for s in seqs if seqs.count(s) > 1}
    if distinct[0] > 1:
        found["INTEGRITY-SEQ"].add(distinct[0])
    for a, b in itertools.pairwise(distinct):
        if b > a + 1:
            found["INTEGRITY-SEQ"] |= {a, b}
    by_seq = {e.seq: e for e in events}
    for e in events:
        if compute_hash(e) != e.hash:
            found["INTEGRITY-HASH"].add(e.seq)
        expected = ZERO_HASH if e.seq == 1 else (by_seq[e.seq - 1].hash if e.seq - 1 in by_seq else None)
        if expected is not None and e.prev_hash != expected:
            found["INTEGRITY-HASH"].add(e.seq)
    return {rule: sorted(v) for rule, v in found.items() if v}


def checked(dossiers: dict[str, list[DossierEvent]], procs: dict[str, Procedure]) -> dict[tuple[str, str], list[int]]:
    params = default_params()
    out = {}
    for dossier_id, events in dossiers.items():
        for rule, evidence in check(events, procs, params).items():
            out[(dossier_id, rule)] = evidence
    return out


@pytest.fixture(scope="module")
def run_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim-all")
    rates = dict.fromkeys(INJECTED, ALL_RATE)
    rates.update(dict.fromkeys(("R1", "R2", "R3", "R4"), 0.002))
    settings = SimulationSettings(
        dossiers=6000, seed=11, out=out, rates=rates, on_time=0.99, pseudonym_key=KEY, workers=2
    )
    simulate(settings)
    return out


def test_checker_equals_manifest_for_every_rule(run_all: Path) -> None:
    dossiers, manifest, procs = load(run_all)
    found = checked(dossiers, procs)
    problems = []
    for rule in RULE_IDS:
        mine = {k: tuple(v) for k, v in found.items() if k[1] == rule}
        theirs = {k: tuple(v) for k, v in manifest.items() if k[1] == rule}
        if mine != theirs:
            only_checker = sorted(set(mine.items()) - set(theirs.items()))[:3]
            only_manifest = sorted(set(theirs.items()) - set(mine.items()))[:3]
            problems.append(f"{rule}: checker only {only_checker}; manifest only {only_manifest}")
        if not theirs:
            problems.append(f"no {rule} finding in a run with every violation switched on")
    assert not problems, "\n".join(problems)


def test_every_history_replays_except_integrity_faults(run_all: Path) -> None:
    dossiers, manifest, _ = load(run_all)
    faulty = {d for d, rule in manifest if rule.startswith("INTEGRITY")}
    for dossier_id, events in dossiers.items():
        if dossier_id not in faulty:
            replay(events)


def test_clean_run_has_no_breach_and_no_late_dossier(tmp_path: Path) -> None:
    settings = SimulationSettings(dossiers=3000, seed=5, out=tmp_path, rates={}, on_time=1.0, pseudonym_key=KEY)
    summary = simulate(settings)
    dossiers, manifest, procs = load(tmp_path)
    assert manifest == {}
    assert checked(dossiers, procs) == {}
    assert summary["achieved"]["on_time_rate"] == 1.0
    for events in dossiers.values():
        replay(events)
