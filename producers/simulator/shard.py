"""Generate one shard (a run of consecutive days) of the simulation.

A shard is independent of every other: its own random stream (from the seed
and the shard number), its own dossier-number counters (days never span
shards) and its own output file, so shards run in parallel processes and the
output does not depend on how many there are.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import hmac
import random
from collections import Counter
from typing import Any

from producers.simulator import procedures as P
from producers.simulator.city import City, build_city
from producers.simulator.clock import HOUR, MINUTE, US, FastClock, to_datetime
from producers.simulator.dossier import DossierBuilder
from producers.simulator.fastcodec import prepare, seal_raw
from producers.simulator.groundtruth import Judge
from producers.simulator.kinds import FOREIGN_DOCUMENT, INJECTED, eligible, plan_for
from producers.simulator.paths import REFUSAL_FORM, Cast, Plan, Raw, Timeline, finish, sync_events
from producers.simulator.procedures import CatalogueEntry
from schemas.jsonform import format_timestamp
from schemas.pseudonym import check_key

RULE_SET = "ND61-2018"
Settings = dict[str, Any]  # the picklable subset of SimulationSettings a worker needs


@dataclasses.dataclass
class World:
    """What every shard of one seed shares: city, catalogue, clock, judge."""

    city: City
    entries: list[CatalogueEntry]
    by_level: dict[str, tuple[list[float], list[CatalogueEntry]]]
    unit_cum: dict[str, tuple[list[float], tuple[str, ...]]]
    clock: FastClock
    judge: Judge


@functools.lru_cache(maxsize=4)
def world(seed: int, online_share: float, params_key: tuple[tuple[str, Any], ...]) -> World:
    city = build_city(seed)
    entries = P.calibrate_online(P.build_catalogue(seed, city.departments), online_share)
    by_level: dict[str, tuple[list[float], list[CatalogueEntry]]] = {}
    for level in P.BY_LEVEL:
        items = [e for e in entries if e.procedure.level == level]
        by_level[level] = (_cumulative([e.weight for e in items]), items)
    unit_cum = {
        "district": (_cumulative([city.staff[u].weight for u in city.districts]), city.districts),
        "commune": (_cumulative([city.staff[u].weight for u in city.communes]), city.communes),
    }
    clock = FastClock()
    judge = Judge(clock, {e.procedure.procedure_code: e.procedure for e in entries}, dict(params_key))
    return World(city, entries, by_level, unit_cum, clock, judge)


def _cumulative(weights: list[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


@dataclasses.dataclass
class DossierOut:
    events: list[Raw]
    kind: str
    findings: dict[str, list[int]]
    on_time: bool | None
    online: bool


class ShardGenerator:
    def __init__(self, settings: Settings, shard: int) -> None:
        self.s = settings
        self.w = world(settings["seed"], settings["online_share"], tuple(sorted(settings["params"].items())))
        self.rng = random.Random(f"shard/{settings['seed']}/{shard}")
        self.clock = self.w.clock
        self.key: bytes = check_key(settings["pseudonym_key"])
        self.ymd: dict[int, str] = {}
        self.kinds: list[tuple[float, str]] = []
        acc = 0.0
        for kind in ("late", *INJECTED):
            acc += settings["rates"].get(kind, 0.0)
            self.kinds.append((acc, kind))
        self.total_rate = acc
        self.counters: Counter[tuple[str, int]] = Counter()
        self.stats: Counter[str] = Counter()

    # -- choices ---------------------------------------------------------------------------------

    def _kind(self) -> str:
        u = self.rng.random()
        if u >= self.total_rate:
            return "normal"
        return next(kind for acc, kind in self.kinds if u < acc)

    def _procedure(self, kind: str) -> CatalogueEntry:
        r = self.rng.random
        for _ in range(1000):
            x = r()
            level = "commune" if x < 0.45 else "district" if x < 0.80 else "department"
            cum, items = self.w.by_level[level]
            entry = items[min(len(items) - 1, bisect.bisect(cum, r() * cum[-1]))]
            if kind == "normal" or eligible(kind, entry, entry.procedure.service_level != "OFFLINE"):
                return entry
        raise RuntimeError(f"no procedure is eligible for dossier kind {kind}")

    def _cast(self, entry: CatalogueEntry, one_official: bool) -> Cast:
        level, choice, r = entry.procedure.level, self.rng.choice, self.rng.random
        city = self.w.city
        if level == "department":
            unit = entry.department or city.departments[0]
            partner = choice([d for d in city.departments if d != unit])
        else:
            cum, units = self.w.unit_cum[level]
            unit = units[min(len(units) - 1, bisect.bisect(cum, r() * cum[-1]))]
            partner = city.commune_district[unit] if level == "commune" else choice(city.departments)
        st, ps = city.staff[unit], city.staff[partner]
        tn = choice(st.reception)
        cv, ld = (tn, tn) if one_official else (choice(st.case), choice(st.leaders))
        return Cast(unit, tn, cv, ld, choice(st.clerks), st.admin, partner, choice(ps.case))

    # -- one dossier -----------------------------------------------------------------------------

    def dossier(self, day: int) -> DossierOut:
        rng, u, clock = self.rng, self.rng.random, self.clock
        kind = self._kind()
        entry = self._procedure(kind)
        proc = entry.procedure
        online_capable = proc.service_level != "OFFLINE"
        channel = "ONLINE" if u() < entry.online_share else ("POSTAL" if u() < 0.04 else "DIRECT")
        plan, forced = plan_for(kind, entry, rng, channel == "ONLINE")
        channel = forced or channel
        if channel == "ONLINE" and not online_capable:
            channel = "DIRECT"
        cast = self._cast(entry, plan.one_official)
        self.counters[(cast.unit, day)] += 1
        number = self.counters[(cast.unit, day)]
        if number > 9999:
            raise RuntimeError(f"more than 9999 dossiers at {cast.unit} on one day: lower --dossiers or raise --days")
        ymd = self._ymd(day)
        applicant = self._applicant()
        base: Raw = {
            "dossier_id": f"{cast.unit}-{ymd}-{number:04d}",
            "procedure_code": proc.procedure_code,
            "procedure_version": proc.version,
            "rule_set": RULE_SET,
            "applicant_ref": applicant[0],
            "applicant_kind": applicant[1],
            "channel": channel,
            "n_attachments": 0,
        }
        prepare(base)
        tl = Timeline(clock, base, cast.unit, applicant[0])
        b = DossierBuilder(clock, rng, entry, cast, plan, tl)
        self._history(b, day, channel, kind)
        return self._seal(tl.events, kind, plan, channel)

    def _ymd(self, day: int) -> str:
        ymd = self.ymd.get(day)
        if ymd is None:
            ymd = self.ymd[day] = to_datetime(self.clock.day_at(day, 12 * HOUR)).strftime("%y%m%d")
        return ymd

    def _applicant(self) -> tuple[str, str]:
        """A pseudonymous applicant: :func:`schemas.pseudonym.applicant_ref` of a generated identity number.

        The numbers are digits only (already normalised), so the HMAC is computed directly, in one call.
        """
        r = self.rng.random
        if r() < 0.85:
            identity, kind = f"079{int(r() * 1e9):09d}", "INDIVIDUAL"
        else:
            identity, kind = f"03{int(r() * 1e8):08d}", "ORGANISATION"
        return hmac.digest(self.key, identity.encode(), "sha256")[:16].hex(), kind

    def _history(self, b: DossierBuilder, day: int, channel: str, kind: str) -> None:
        clock, u, plan, proc = self.clock, b.uniform, b.plan, b.proc
        k = clock.working_index(day)
        x = self.rng.random()
        share = 0.5625  # the morning's share of the working day
        frac = share * (0.02 + 0.96 * x**1.3) if self.rng.random() < 0.6 else share + (1 - share) * (0.02 + 0.96 * x)
        pr = k * clock.per_day + int(clock.per_day * frac)
        received = clock.instant(pr)
        docs = list(proc.component_codes)
        requested = self._requests(b, docs)
        if channel == "ONLINE":
            self._online_prefix(b, pr, day, docs)
        if plan.refuse:
            reason = "Hồ sơ không thuộc thẩm quyền giải quyết"
            b.ev("ReceptionRefused", 3, pr, b.cast.tn, "RECEPTION_OFFICER", reason=reason, form_code=REFUSAL_FORM)
            b.tl.events[-1]["n_attachments"] = plan.refuse_attachments
        else:
            b.receive(pr, self._due(received, proc, b.cast.unit), docs, self._convention(b.cast.unit))
            b.counter_extras(docs, channel != "ONLINE", proc.has_fee and channel != "ONLINE")
            if proc.same_day or plan.phantom:
                b.plan_same_day()
            else:
                b.plan_processing(requested)
            b.fit()
            b.emit_all(pr + 5 * MINUTE if b.tl.events[-1]["event_type"] == "DossierDigitized" else pr)
            b.apologise()
            b.after_done(channel, proc.paper_result)
            if plan.admin_override:
                b.admin_override(lambda t: format_timestamp(to_datetime(t)))
        delays = [int(u(2, 180) * MINUTE) for _ in range(3)]
        sync_events(b.tl, delays, plan.sync)
        if kind == "INTEGRITY-SEQ":
            self._spare_sync(b.tl)
        finish(b.tl, self.rng, seal=kind == "normal")

    def _requests(self, b: DossierBuilder, docs: list[str]) -> list[list[str]]:
        """Documents each supplement round asks for; removed from what the applicant submits."""
        plan = b.plan
        rounds = plan.supplement_rounds
        if not rounds:
            return []
        requested = [[docs.pop()] for _ in range(rounds)]
        if plan.foreign_document:
            requested[0].append(FOREIGN_DOCUMENT)
        if plan.digitised_document:
            requested[0] = [docs[0]]
        return requested

    def _online_prefix(self, b: DossierBuilder, pr: int, day: int, docs: list[str]) -> None:
        clock, u, plan, proc = self.clock, b.uniform, b.plan, b.proc
        cd = b._cd()
        if plan.unreceived_wh:
            s = clock.instant(pr - int(plan.unreceived_wh * 60 * MINUTE))
        elif self.rng.random() < 0.25:
            s = clock.day_at(day - 1, int((17.5 + 6 * self.rng.random()) * HOUR))
        else:
            s = clock.instant(pr - int(u(3, 360) * MINUTE))
        ps = clock.pos(s)
        b.tl.add(
            "DossierSubmitted", 1, s, cd, "APPLICANT", b.cast.unit, documents=docs, service_level=proc.service_level
        )
        if self.rng.random() < 0.03:
            b.ev("ReceptionGuidanceIssued", 1, ps + int((pr - ps) * u(0.2, 0.6)), b.cast.tn, "RECEPTION_OFFICER")
            b.tl.events[-1]["requested_documents"] = [docs[-1]]
            b.tl.events[-1]["reason"] = "Hướng dẫn bổ sung bản chụp rõ nét"
        if proc.has_fee and not plan.refuse:
            method = "NATIONAL_PORTAL" if self.rng.random() < 0.7 else "LOCAL_GATEWAY"
            b.ev("FeePaid", 1, ps + int((pr - ps) * u(0.65, 0.9)), cd, "APPLICANT", amount_vnd=proc.fee_vnd)
            b.tl.events[-1]["payment_channel"] = method

    def _due(self, received: int, proc: Any, unit: str) -> int:
        clock = self.clock
        if proc.same_day:
            return clock.same_day_due(received)
        if proc.time_limit_unit == "WORKING_HOURS":
            return clock.due_working_hours(received, proc.time_limit_value * 60)
        if self._convention(unit) == "END_OF_DAY":
            return clock.due_end_of_day(received, proc.time_limit_value)
        return clock.due_working_hours(received, proc.time_limit_value * 480)

    @staticmethod
    def _convention(unit: str) -> str:
        """Departments count days by the Civil Code; district and commune systems by working hours."""
        return "END_OF_DAY" if unit.startswith("000.00.") and int(unit[7:9]) <= 20 else "WORKING_HOURS"

    def _spare_sync(self, tl: Timeline) -> None:
        """A redundant sync right after another, removed after sealing: a pure seq gap."""
        i = next(i for i, e in enumerate(tl.events) if e["event_type"] == "SyncedToNational")
        spare = dict(tl.events[i])
        spare["occurred_at"] += US
        spare["_spare"] = True
        tl.events.insert(i + 1, spare)

    # -- sealing and faults ----------------------------------------------------------------------

    def _seal(self, events: list[Raw], kind: str, plan: Plan, channel: str) -> DossierOut:
        if kind == "normal":  # sealed by finish(); clean by construction: on time once received
            return DossierOut(events, kind, {}, None if plan.refuse else True, channel == "ONLINE")
        if plan.backdate in ("recorded", "earlier"):
            self._backdate(events, plan.backdate)
        seal_raw(events)
        if kind == "INTEGRITY-SEQ":
            events[:] = [e for e in events if not e.pop("_spare", False)]
        elif kind == "INTEGRITY-HASH":
            self._break_hash(events)
        findings = self.w.judge.findings(events)
        return DossierOut(events, kind, findings, self.w.judge.on_time(events), channel == "ONLINE")

    def _backdate(self, events: list[Raw], mode: str) -> None:
        """R12 (a) or (b) after numbering (the evening variant was placed while planning)."""
        issued = next((e for e in events if e["event_type"] == "ResultIssued"), None)
        if issued is None or not any(e["event_type"] == "ResultReturned" for e in events):
            return
        if mode == "recorded":
            issued["recorded_at"] = issued["occurred_at"] + int((2 + 70 * self.rng.random()) * HOUR)
            return
        ret = next(e for e in events if e["event_type"] == "ResultReturned")
        prev = events[ret["seq"] - 2]
        ret["occurred_at"] = prev["occurred_at"] - int((1 + 49 * self.rng.random()) * MINUTE)

    def _break_hash(self, events: list[Raw]) -> None:
        k = 1 + int(self.rng.random() * (len(events) - 1))  # index of an event with seq >= 2
        if self.rng.random() < 0.5:
            ref = events[k]["applicant_ref"]
            events[k]["applicant_ref"] = ref[:-1] + ("0" if ref[-1] != "0" else "1")
            prepare(events[k])
        else:
            seal_raw(events[k:], hashlib.sha256(b"rewritten history").digest())


__all__ = ["ShardGenerator", "World", "world"]
