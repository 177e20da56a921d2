"""Contract events → a ``QuaTrinhXuLy`` export, the shape ``dossier produce import`` reads.

One row per event, in ``(dossier_id, seq)`` order: ``ThoiDiemXuLy`` is the
local time (Asia/Ho_Chi_Minh, ``yyyyMMddHHmmss``, the fraction of a second
dropped), ``TrangThai`` the status after the event, ``NguoiXuLy`` and
``PhongBanXuLy`` who did it and where, ``ChucDanh`` a title the importer
reads back as the same role, ``NoiDungXuLy`` a text the default mapping reads
back as the same event type (with the component codes after a ``:`` where
the type carries documents, the reason where the move alone says the type),
``NgayKetThucTheoQuyDinh`` the due date the row can carry (reception: due
date; hand-over: step deadline; apology or due-date reset: the new date),
``NgayBatDau`` the time of the row before.

What the shape cannot hold is left out, as a real export leaves it out: fee
payments and ratings (no row of the history records them), an
``AdminOverride`` of anything but the due date, attachments, forms, step
budgets, result numbers, ``recorded_at``. The dossier-level facts an export
comes with (``MaTTHC``, ``KenhThucHien``, ``LoaiDoiTuong``, the time limit)
go to a mapping file (:func:`dossier_mapping`) in the ``--mapping`` format.

Used to test the importer end to end (simulated history → export → import →
the same findings where the shape carries the facts) and by ``dossier
produce export-qtxl``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from dossier_runtime.outfile import atomic_output, make_directory, write_output
from producers.importrows import COLUMNS
from schemas.events import ActorRole, DossierEvent, EventType

_VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_E = EventType

#: ChucDanh written for each role (the importer's role keywords read each back as the same role).
ROLE_TITLES: Final[Mapping[ActorRole, str]] = {
    ActorRole.APPLICANT: "Công dân",
    ActorRole.RECEPTION_OFFICER: "Cán bộ một cửa",
    ActorRole.CASE_OFFICER: "Chuyên viên",
    ActorRole.LEADER: "Lãnh đạo",
    ActorRole.CLERK: "Văn thư",
    ActorRole.ADMIN: "Quản trị viên",
    ActorRole.SYSTEM: "Hệ thống",
}

#: NoiDungXuLy per event type: a label the default mapping recognises; ``{docs}`` the component codes
#: (``;``-separated), ``{reason}`` the reason. A type whose move alone says it carries the reason only.
CONTENT: Final[Mapping[EventType, str]] = {
    _E.DOSSIER_SUBMITTED: "Nộp hồ sơ: {docs}",
    _E.RECEPTION_GUIDANCE_ISSUED: "Hướng dẫn bổ sung: {docs}",
    _E.DOSSIER_RECEIVED: "Tiếp nhận hồ sơ: {docs}",
    _E.RECEPTION_REFUSED: "{reason}",
    _E.DOSSIER_DIGITIZED: "Số hóa thành phần hồ sơ: {docs}",
    _E.DOSSIER_TRANSFERRED: "Chuyển hồ sơ đến bộ phận giải quyết",
    _E.STEP_HANDED_OVER: "Chuyển bước xử lý",
    _E.STEP_RETURNED: "Trả lại bước trước ({reason})",
    _E.INTER_AGENCY_TRANSFERRED: "Chuyển liên thông cơ quan phối hợp",
    _E.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung: {docs}",
    _E.SUPPLEMENT_RECEIVED: "Nộp bổ sung: {docs}",
    _E.FINANCIAL_OBLIGATION_REQUESTED: "{reason}",
    _E.FINANCIAL_OBLIGATION_FULFILLED: "Hoàn thành nghĩa vụ tài chính",
    _E.APOLOGY_ISSUED: "Xin lỗi, hẹn lại ngày trả ({reason})",
    _E.WITHDRAWAL_REQUESTED: "{reason}",
    _E.WITHDRAWAL_DECLINED: "{reason}",
    _E.PROCESSING_STOPPED: "{reason}",
    _E.RESULT_APPROVED: "Phê duyệt kết quả",
    _E.RESULT_ISSUED: "Phát hành kết quả",
    _E.APPLICANT_NOTIFIED: "Thông báo ({reason})",
    _E.RESULT_RETURNED: "Trả kết quả",
    _E.RESULT_COLLECTED: "Công dân ký nhận kết quả",
    _E.RESULT_RECALLED: "Thu hồi kết quả ({reason})",
    _E.ADMIN_OVERRIDE: "Đặt lại ngày hẹn trả ({reason})",
    _E.FEEDBACK_FILED: "Phản ánh, kiến nghị ({reason})",
    _E.SYNCED_TO_NATIONAL: "Đồng bộ DVCQG",
}
_DUE: Final[Mapping[EventType, str]] = {
    _E.DOSSIER_RECEIVED: "due_at",
    _E.DOSSIER_TRANSFERRED: "step_due_at",
    _E.STEP_HANDED_OVER: "step_due_at",
    _E.STEP_RETURNED: "step_due_at",
    _E.INTER_AGENCY_TRANSFERRED: "step_due_at",
    _E.APOLOGY_ISSUED: "new_due_at",
    _E.ADMIN_OVERRIDE: "due_at",
}


def stamp(when: datetime | None) -> str:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh ("" for None)."""
    return when.astimezone(_VN).strftime("%Y%m%d%H%M%S") if when is not None else ""


def content(event: DossierEvent) -> str | None:
    """The NoiDungXuLy of ``event``; None when the shape cannot hold it (the row is left out)."""
    template = CONTENT.get(event.event_type)
    if template is None or (event.event_type is _E.ADMIN_OVERRIDE and event.override_field != "due_at"):
        return None
    docs = "; ".join(event.requested_documents or event.documents)
    reason = " ".join((event.reason or "").split())
    text = template.format(docs=docs, reason=reason)
    return text.replace(" ()", "").removesuffix(": ")


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    dossiers: int
    rows: int
    left_out: Mapping[str, int]  # event type → events the shape cannot hold

    def describe(self) -> dict[str, Any]:
        return {"dossiers": self.dossiers, "rows": self.rows, "left_out": dict(sorted(self.left_out.items()))}


def export_rows(events: Iterable[DossierEvent], left_out: Counter[str] | None = None) -> Iterator[dict[str, str]]:
    """The rows of ``events`` (any order), dossier by dossier in seq order."""
    previous: dict[str, str] = {}
    for e in sorted(events, key=lambda x: (x.dossier_id, x.seq)):
        text = content(e)
        if text is None:
            if left_out is not None:
                left_out[e.event_type.value] += 1
            continue
        at = stamp(e.occurred_at)
        due = _DUE.get(e.event_type)
        yield {
            "MaHoSo": e.dossier_id,
            "NguoiXuLy": e.actor_id,
            "ChucDanh": ROLE_TITLES.get(e.actor_role, ""),
            "ThoiDiemXuLy": at,
            "PhongBanXuLy": e.unit_code,
            "NoiDungXuLy": text,
            "TrangThai": str(e.status),
            "NgayBatDau": previous.get(e.dossier_id, at),
            "NgayKetThucTheoQuyDinh": stamp(getattr(e, due)) if due else "",
        }
        previous[e.dossier_id] = at


def dossier_mapping(events: Iterable[DossierEvent]) -> dict[str, Any]:
    """The ``--mapping`` file of the dossier-level facts: procedure, rule set, channel, applicant kind, time limit."""
    dossiers: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda x: (x.dossier_id, x.seq)):
        entry = dossiers.setdefault(
            e.dossier_id,
            {
                "procedure_code": e.procedure_code,
                "rule_set": e.rule_set,
                "channel": e.channel.value,
                "applicant_kind": e.applicant_kind.value,
            },
        )
        if e.event_type is _E.DOSSIER_RECEIVED and "time_limit" not in entry and e.time_limit_value is not None:
            unit = e.time_limit_unit.value if e.time_limit_unit else "WORKING_DAYS"
            entry["time_limit"] = {"value": e.time_limit_value, "unit": unit}
    return {"dossiers": dossiers}


def write_export(events: Iterable[DossierEvent], out: Path, mapping_out: Path | None = None) -> ExportSummary:
    """Write the rows of ``events`` to ``out`` (CSV, UTF-8) and their dossier facts to ``mapping_out`` (JSON)."""
    materialised = list(events)
    left_out: Counter[str] = Counter()
    rows = 0
    make_directory(out.parent)
    with atomic_output(out, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in export_rows(materialised, left_out):
            writer.writerow(row)
            rows += 1
    if mapping_out is not None:
        text = json.dumps(dossier_mapping(materialised), ensure_ascii=False, indent=1)
        write_output(mapping_out, text + "\n")
    return ExportSummary(len({e.dossier_id for e in materialised}), rows, left_out)
