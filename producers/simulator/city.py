"""Ho Chi Minh City in its 2023 structure: units and their officials.

Unit codes follow the electronic-ID scheme ``L4.L3.L2.L1`` (QCVN 102:2016,
domain.md §e) with L1 = ``H29`` (HCMC):

* ``000.00.00.H29``: the City People's Committee (level ``city``);
* ``000.00.NN.H29``, NN = 01-20: the departments and boards (sở, ban);
* ``000.00.NN.H29``, NN = 31-52: the 22 district-level People's Committees
  (Thủ Đức City and 21 districts), in the order of :data:`DISTRICTS`;
* ``000.CC.NN.H29``: commune-level People's Committee number CC (01-34) of
  district NN, 312 in all.

The district level was abolished on 1/7/2025, so district and commune units
carry ``valid_to`` 2025-06-30 and the simulator refuses windows past it.
Officials: reception officers (one-stop office), case officers, leaders and
clerks per unit, with a few more or fewer per unit depending on the seed.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Final

from schemas.catalogue import Official, Unit
from schemas.events import ActorRole

CITY_CODE: Final = "000.00.00.H29"
STRUCTURE_FROM: Final = "2021-01-01"  # Thủ Đức City established
STRUCTURE_TO: Final = "2025-06-30"  # district level abolished the next day

DEPARTMENTS: Final = (
    "Sở Tư pháp",
    "Sở Xây dựng",
    "Sở Tài nguyên và Môi trường",
    "Sở Kế hoạch và Đầu tư",
    "Sở Giao thông vận tải",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Công Thương",
    "Sở Tài chính",
    "Sở Nội vụ",
    "Sở Văn hóa và Thể thao",
    "Sở Du lịch",
    "Sở Thông tin và Truyền thông",
    "Sở Khoa học và Công nghệ",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Quy hoạch - Kiến trúc",
    "Sở Ngoại vụ",
    "Ban Quản lý các Khu chế xuất và công nghiệp",
    "Ban Quản lý Khu Công nghệ cao",
)

#: (name, communes, wards are called "Phường", rural communes "Xã"): 2023, 312 communes in all.
DISTRICTS: Final = (
    ("Thành phố Thủ Đức", 34, "Phường"),
    ("Quận 1", 10, "Phường"),
    ("Quận 3", 12, "Phường"),
    ("Quận 4", 13, "Phường"),
    ("Quận 5", 14, "Phường"),
    ("Quận 6", 14, "Phường"),
    ("Quận 7", 10, "Phường"),
    ("Quận 8", 16, "Phường"),
    ("Quận 10", 14, "Phường"),
    ("Quận 11", 16, "Phường"),
    ("Quận 12", 11, "Phường"),
    ("Quận Bình Thạnh", 20, "Phường"),
    ("Quận Bình Tân", 10, "Phường"),
    ("Quận Gò Vấp", 16, "Phường"),
    ("Quận Phú Nhuận", 13, "Phường"),
    ("Quận Tân Bình", 15, "Phường"),
    ("Quận Tân Phú", 11, "Phường"),
    ("Huyện Bình Chánh", 16, "Xã"),
    ("Huyện Cần Giờ", 7, "Xã"),
    ("Huyện Củ Chi", 21, "Xã"),
    ("Huyện Hóc Môn", 12, "Xã"),
    ("Huyện Nhà Bè", 7, "Xã"),
)

#: Officials per unit level: (reception, case officers, leaders, clerks), before the seed's +-20 %.
STAFFING: Final = {
    "department": (8, 30, 4, 3),
    "district": (10, 24, 4, 3),
    "commune": (3, 4, 2, 1),
}
_ROLES: Final = (ActorRole.RECEPTION_OFFICER, ActorRole.CASE_OFFICER, ActorRole.LEADER, ActorRole.CLERK)
_PREFIX: Final = {
    ActorRole.RECEPTION_OFFICER: "tn",
    ActorRole.CASE_OFFICER: "cv",
    ActorRole.LEADER: "ld",
    ActorRole.CLERK: "vt",
    ActorRole.ADMIN: "qt",
}


@dataclasses.dataclass(frozen=True)
class UnitStaff:
    """A unit's officials by role (actor ids), plus its administrator account."""

    unit: Unit
    reception: tuple[str, ...]
    case: tuple[str, ...]
    leaders: tuple[str, ...]
    clerks: tuple[str, ...]
    admin: str
    weight: float  # share of the level's dossiers the unit receives


@dataclasses.dataclass(frozen=True)
class City:
    units: tuple[Unit, ...]
    officials: tuple[Official, ...]
    staff: dict[str, UnitStaff]
    departments: tuple[str, ...]
    districts: tuple[str, ...]
    communes: tuple[str, ...]
    commune_district: dict[str, str]


def _units() -> list[Unit]:
    units = [Unit(CITY_CODE, "Ủy ban nhân dân Thành phố Hồ Chí Minh", "city", None, STRUCTURE_FROM)]
    for i, name in enumerate(DEPARTMENTS, start=1):
        units.append(Unit(f"000.00.{i:02d}.H29", name, "department", CITY_CODE, STRUCTURE_FROM))
    for d, (name, communes, kind) in enumerate(DISTRICTS, start=31):
        code = f"000.00.{d}.H29"
        units.append(Unit(code, f"Ủy ban nhân dân {name}", "district", CITY_CODE, STRUCTURE_FROM, STRUCTURE_TO))
        for c in range(1, communes + 1):
            units.append(
                Unit(f"000.{c:02d}.{d}.H29", f"Ủy ban nhân dân {kind} {c}, {name}", "commune", code, STRUCTURE_FROM)
            )
    return [
        dataclasses.replace(u, valid_to=STRUCTURE_TO) if u.level == "commune" else u  # communes were merged too
        for u in units
    ]


def build_city(seed: int) -> City:
    """The city's units and officials; deterministic from ``seed``."""
    rng = random.Random(f"city/{seed}")
    units = _units()
    officials: list[Official] = []
    staff: dict[str, UnitStaff] = {}
    for unit in units:
        if unit.level == "city":
            continue
        groups: list[tuple[str, ...]] = []
        for role, base in zip(_ROLES, STAFFING[unit.level], strict=True):
            n = max(1, round(base * rng.uniform(0.8, 1.2)))
            ids = tuple(f"{_PREFIX[role]}-{unit.unit_code}-{k:02d}" for k in range(1, n + 1))
            officials.extend(Official(a, unit.unit_code, role.value) for a in ids)
            groups.append(ids)
        admin = f"{_PREFIX[ActorRole.ADMIN]}-{unit.unit_code}-01"
        officials.append(Official(admin, unit.unit_code, ActorRole.ADMIN.value))
        weight = rng.lognormvariate(0, 0.45)
        reception, case, leaders, clerks = groups  # in the order of _ROLES
        staff[unit.unit_code] = UnitStaff(unit, reception, case, leaders, clerks, admin=admin, weight=weight)
    by_level = {level: tuple(u.unit_code for u in units if u.level == level) for level in ("department", "district")}
    communes = tuple(u.unit_code for u in units if u.level == "commune")
    return City(
        units=tuple(units),
        officials=tuple(officials),
        staff=staff,
        departments=by_level["department"],
        districts=by_level["district"],
        communes=communes,
        commune_district={u.unit_code: u.parent_code or CITY_CODE for u in units if u.level == "commune"},
    )
