"""The procedure catalogue: 1,837 procedures as HCMC published them in 2023.

464 are offered online full-process (toàn trình), 276 online partial (một
phần), the rest offline. Each has a time limit in working days or working
hours (same-day procedures, e.g. chứng thực, carry a nominal 4 working hours
and the 15:00 cut-off), per-step budgets summing to at most the limit, a fee
or none, the level that handles it, whether it needs an inter-agency step,
its component documents (thành phần hồ sơ), whether a paper result is
required and whether a financial obligation stops the clock.

Dossier volume is skewed (a few procedures make most dossiers, as civil
status and certification do), and online-capable procedures get more of it.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Final

from schemas.catalogue import Procedure, StepBudget
from schemas.events import ActorRole, ServiceLevel, TimeLimitUnit

TOTAL: Final = 1837
FULL_ONLINE: Final = 464
PARTIAL_ONLINE: Final = 276
BY_LEVEL: Final = {"department": 1390, "district": 290, "commune": 157}
VOLUME_SHARE: Final = {"commune": 0.45, "district": 0.35, "department": 0.20}
VERSION: Final = "2023.1"
VALID_FROM: Final = "2018-01-01"

STEP_TRANSFER: Final = "TIEP_NHAN"  # reception office; governed by R9, carries no budget
STEP_REVIEW: Final = "THAM_DINH"
STEP_PARTNER: Final = "LIEN_THONG"
STEP_CONSOLIDATE: Final = "TONG_HOP"
STEP_APPROVE: Final = "PHE_DUYET"
STEP_ISSUE: Final = "BAN_HANH"
STEP_REWORK: Final = "XU_LY_LAI"

_CV, _LD, _VT = ActorRole.CASE_OFFICER.value, ActorRole.LEADER.value, ActorRole.CLERK.value
#: Shares of the limit per step; at most 96 %, the rest covers the reception office's transfer.
_PLAIN: Final = ((STEP_REVIEW, _CV, 0.68), (STEP_APPROVE, _LD, 0.14), (STEP_ISSUE, _VT, 0.08), (STEP_REWORK, _CV, 0.06))
_INTER: Final = (
    (STEP_REVIEW, _CV, 0.42),
    (STEP_PARTNER, _CV, 0.24),
    (STEP_CONSOLIDATE, _CV, 0.10),
    (STEP_APPROVE, _LD, 0.08),
    (STEP_ISSUE, _VT, 0.06),
    (STEP_REWORK, _CV, 0.06),
)
_SAME_DAY: Final = ((STEP_APPROVE, _LD, 60), (STEP_ISSUE, _VT, 40))

_NAMES: Final = {
    "commune": (
        "Chứng thực bản sao từ bản chính",
        "Đăng ký khai sinh",
        "Đăng ký kết hôn",
        "Xác nhận tình trạng hôn nhân",
    ),
    "district": ("Đăng ký hộ kinh doanh", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "Đăng ký biến động đất đai"),
    "department": (
        "Cấp giấy phép hoạt động",
        "Cấp chứng chỉ hành nghề",
        "Thẩm định thiết kế",
        "Cấp giấy phép lao động",
    ),
}
_FEES: Final = (10_000, 20_000, 30_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """A procedure plus what the simulator needs about it beyond the published catalogue."""

    procedure: Procedure
    weight: float  # relative dossier volume within its level
    department: str | None  # the department handling it (department level)
    online_share: float  # share of its dossiers submitted online (set by calibration)
    supplement_ok: bool  # long enough for a supplement round that stays within R5 and R6
    late_ok: bool  # long enough for a timely apology at least 1 working day before due

    @functools.cached_property
    def budgets(self) -> dict[str, int]:
        """Step code -> budget in minutes (:meth:`Procedure.budget`, looked up once)."""
        out: dict[str, int] = {}
        for step in self.procedure.step_budgets:
            out.setdefault(step.step_code, step.minutes)
        return out


def _limit(rng: random.Random, same_day: bool) -> tuple[int, TimeLimitUnit]:
    if same_day:
        return 4, TimeLimitUnit.WORKING_HOURS
    if rng.random() < 0.06:
        return rng.choice((4, 8, 16)), TimeLimitUnit.WORKING_HOURS
    return rng.choice((1, 2, 3, 3, 5, 5, 7, 10, 10, 12, 15, 15, 20, 20, 30)), TimeLimitUnit.WORKING_DAYS


def _steps(limit_minutes: int, inter: bool, same_day: bool) -> tuple[StepBudget, ...]:
    if same_day:
        return tuple(StepBudget(code, role, minutes) for code, role, minutes in _SAME_DAY)
    shares = _INTER if inter else _PLAIN
    return tuple(StepBudget(code, role, max(1, int(limit_minutes * share))) for code, role, share in shares)


def build_catalogue(seed: int, departments: tuple[str, ...]) -> list[CatalogueEntry]:
    """The 1,837 procedures; deterministic from ``seed``. Online shares are set later by calibration."""
    rng = random.Random(f"procedures/{seed}")
    levels = [level for level, n in BY_LEVEL.items() for _ in range(n)]
    service = [ServiceLevel.FULL_ONLINE] * FULL_ONLINE + [ServiceLevel.PARTIAL_ONLINE] * PARTIAL_ONLINE
    service += [ServiceLevel.OFFLINE] * (TOTAL - len(service))
    rng.shuffle(service)
    numbers = rng.sample(range(1, 12_000), TOTAL)
    entries: list[CatalogueEntry] = []
    rank = {level: 0 for level in BY_LEVEL}
    for i, level in enumerate(levels):
        rank[level] += 1
        same_day = level in ("commune", "district") and rng.random() < 0.12
        value, unit = _limit(rng, same_day)
        limit_minutes = value * (480 if unit is TimeLimitUnit.WORKING_DAYS else 60)
        inter = not same_day and limit_minutes >= 2400 and rng.random() < 0.18
        code = f"{1 + numbers[i] % 2}.{numbers[i]:06d}"
        has_fee = rng.random() < 0.45
        financial = level == "district" and not same_day and limit_minutes >= 2400 and rng.random() < 0.25
        procedure = Procedure(
            procedure_code=code,
            version=VERSION,
            name=f"{rng.choice(_NAMES[level])} (TTHC {code})",
            level=level,
            time_limit_value=value,
            time_limit_unit=unit.value,
            service_level=service[i].value,
            has_fee=has_fee,
            fee_vnd=rng.choice(_FEES) if has_fee else 0,
            paper_result=rng.random() < 0.6,
            same_day=same_day,
            inter_agency=inter,
            clock_stops_for_financial=financial,
            component_codes=tuple(f"{code}.TP{j:02d}" for j in range(1, rng.randint(3, 8) + 1)),
            step_budgets=_steps(limit_minutes, inter, same_day),
            valid_from=VALID_FROM,
        )
        weight = 1.0 / rank[level] ** 1.05 * rng.lognormvariate(0, 0.3)
        if same_day:
            weight *= 6.0
        if service[i] is not ServiceLevel.OFFLINE:
            weight *= 3.0
        entries.append(
            CatalogueEntry(
                procedure=procedure,
                weight=weight,
                department=rng.choice(departments) if level == "department" else None,
                online_share=0.0,
                supplement_ok=unit is TimeLimitUnit.WORKING_DAYS and value >= 5,
                late_ok=limit_minutes >= 960,
            )
        )
    return entries


def calibrate_online(entries: list[CatalogueEntry], target: float) -> list[CatalogueEntry]:
    """Set each online-capable procedure's online share so the volume-weighted share is ``target``.

    Full-process procedures lean online more than partial ones; the common
    factor is found by bisection. A target above what the online-capable
    volume allows is capped at that volume (all of it online).
    """
    base = {ServiceLevel.FULL_ONLINE.value: 0.9, ServiceLevel.PARTIAL_ONLINE.value: 0.6}
    level_total = {level: sum(e.weight for e in entries if e.procedure.level == level) for level in BY_LEVEL}

    def volume(e: CatalogueEntry) -> float:
        return VOLUME_SHARE[e.procedure.level] * e.weight / level_total[e.procedure.level]

    def share(factor: float) -> float:
        return sum(volume(e) * min(1.0, base.get(e.procedure.service_level, 0.0) * factor) for e in entries)

    lo, hi = 0.0, 1.0 / min(base.values())
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return [
        dataclasses.replace(e, online_share=min(1.0, base.get(e.procedure.service_level, 0.0) * hi)) for e in entries
    ]
