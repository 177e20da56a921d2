"""A complete importer: every legal move maps, nothing unsaid is made up, citizens never appear in clear.

Names, numbers and addresses in these exports are invented.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dossier_runtime.settings import Settings
from inspection.audit import audit, parse_params, select_rules
from producers.cli_import import import_cmd
from producers.exportqtxl import CONTENT
from producers.importer import import_files
from producers.importfacts import document_items, match_documents
from producers.importmapping import DossierDefaults, ImportMapping, load_mapping
from producers.importrows import read_procedures
from schemas.catalogue import Procedure
from schemas.events import DossierEvent, EventType, validate_event
from schemas.pseudonym import applicant_ref
from schemas.transitions import TRANSITIONS, Status
from tests.test_audit_store import AuditStore

E = EventType
HEADER = "MaHoSo,NguoiXuLy,ChucDanh,ThoiDiemXuLy,PhongBanXuLy,NoiDungXuLy,TrangThai,NgayBatDau,NgayKetThucTheoQuyDinh"
CODE = "1.001612"
KEY = b"made-up-test-key-0123456789"
#: Event types a QuaTrinhXuLy row cannot carry: what each requires and the export never says.
NOT_CARRIED = {E.FEE_PAID: "amount_vnd, payment_channel", E.CITIZEN_RATED: "rating"}


def _text(event_type: EventType) -> str:
    return CONTENT[event_type].format(docs=f"{CODE}.TP01", reason="Hồ sơ không đủ điều kiện")


def test_the_default_mapping_reads_every_legal_move_back() -> None:
    """Each (status before → after, event type) of schemas.transitions maps back from the exporter's text."""
    mapping = ImportMapping()
    covered: set[tuple[int | None, int]] = set()
    for (before, event_type), afters in TRANSITIONS.items():
        if event_type in NOT_CARRIED:
            continue
        for after in afters:
            if event_type is E.ADMIN_OVERRIDE and after != before:
                continue  # a status override is not a row of the history: the row shows the move itself
            moved = mapping.event_type(before, after, _text(event_type))
            assert moved is event_type, (before, after, event_type, moved)
            covered.add((before, after))
    legal = {(b, a) for (b, t), afters in TRANSITIONS.items() if t is not E.ADMIN_OVERRIDE for a in afters}
    assert covered == legal  # every move of the table, 3, 7 and 8 included


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize(
    "text",
    ["Đồng bộ DVCQG", "ĐỒNG BỘ LÊN CỔNG DVC QUỐC GIA", "Dong bo du lieu", "Đồ\u200bng bộ\u00a0DVCQG", "Gửi DVCQG"],
)
def test_a_national_sync_maps_in_every_status(status: Status, text: str) -> None:
    assert ImportMapping().event_type(status, status, text) is E.SYNCED_TO_NATIONAL


def test_a_move_back_is_a_recall_only_when_the_row_says_so() -> None:
    mapping = ImportMapping()
    assert mapping.event_type(10, 4, "Thu hồi hồ sơ đã trả kết quả") is E.RESULT_RECALLED
    assert mapping.event_type(9, 4, "Chuyển lại để xử lý lại") is E.RESULT_RECALLED
    # a backdated return exported before the notice: the notice's row is not a recall
    assert mapping.event_type(10, 9, "Thông báo có kết quả") is None


def _procedure(**fields: Any) -> Procedure:
    obj = {
        "procedure_code": CODE, "version": "2023.1", "name": "Đăng ký khai sinh", "level": "commune",
        "time_limit_value": 3, "time_limit_unit": "WORKING_DAYS", "service_level": "FULL_ONLINE", "has_fee": False,
        "fee_vnd": 0, "paper_result": True, "same_day": False, "inter_agency": False,
        "clock_stops_for_financial": False, "component_codes": [f"{CODE}.TP01", f"{CODE}.TP02", f"{CODE}.TP03"],
        "step_budgets": [], "valid_from": "2023-01-01", "valid_to": None, **fields,
    }  # fmt: skip
    return Procedure.from_json(obj)


def _catalogue(tmp_path: Path) -> Path:
    directory = tmp_path / "cat"
    directory.mkdir()
    (directory / "procedures.jsonl").write_text(json.dumps(_procedure().to_json()) + "\n", encoding="utf-8")
    return directory


def _rows(n: int, day: str, stop: bool = False) -> list[str]:
    """One clean dossier received on ``day`` (YYYYMMDD): every change synced, a timely supplement request."""
    d = f"000.00.31.H29-{day[2:]}-{n:04d}"

    def row(who: str, title: str, hhmm: str, text: str, status: int, due: str = "", plus: int = 0) -> str:
        return f"{d},{who},{title},{int(day) + plus}{hhmm}00,000.00.31.H29,{text},{status},,{due}"

    sync = "Đồng bộ DVCQG"
    lines = [
        row("Trần Thị Bích", "Cán bộ một cửa", "0810", f"Tiếp nhận hồ sơ: {CODE}.TP01; {CODE}.TP02", 2,
            f"{int(day) + 3}081000"),
        row("Trần Thị Bích", "Cán bộ một cửa", "0815", f"Số hóa thành phần hồ sơ: {CODE}.TP01; {CODE}.TP02", 2),
        row("Hệ thống", "Hệ thống", "0820", sync, 2),
        row("Trần Thị Bích", "Cán bộ một cửa", "0930", "Chuyển xử lý", 4),
        row("Hệ thống", "Hệ thống", "0935", sync, 4),
        row("Lê Văn Cường", "Chuyên viên", "1400", f"Yêu cầu bổ sung: {CODE.lower()}.tp03\u00a0", 5),
        row("Hệ thống", "Hệ thống", "1405", sync, 5),
        row("Nguyễn Văn An", "Công dân", "0900", f"Nộp bổ sung: {CODE}.TP03", 4, plus=1),
        row("Hệ thống", "Hệ thống", "0905", sync, 4, plus=1),
    ]  # fmt: skip
    if stop:
        return [
            *lines,
            row("Phạm Minh Đức", "Chủ tịch UBND", "1000", "Dừng xử lý: người nộp không đủ điều kiện theo quy định", 8,
                plus=1),
            row("Hệ thống", "Hệ thống", "1005", sync, 8, plus=1),
        ]  # fmt: skip
    return [
        *lines,
        row("Phạm Minh Đức", "Chủ tịch UBND", "1000", "Phê duyệt kết quả", 4, plus=1),
        row("Võ Thị Hoa", "Văn thư", "1400", "Phát hành kết quả", 9, plus=1),
        row("Hệ thống", "Hệ thống", "1405", sync, 9, plus=1),
        row("Trần Thị Bích", "Cán bộ một cửa", "0800", "Trả kết quả", 10, plus=2),
        row("Hệ thống", "Hệ thống", "0805", sync, 10, plus=2),
    ]


def _write(path: Path, lines: Sequence[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _by_dossier(events: Sequence[DossierEvent]) -> dict[str, list[DossierEvent]]:
    out: dict[str, list[DossierEvent]] = {}
    for e in events:
        out.setdefault(e.dossier_id, []).append(e)
    return out


def test_a_clean_export_imports_with_the_default_mapping_and_audits_clean(tmp_path: Path) -> None:
    """The issue's case: three clean dossiers, one stopped with a reason; no finding, and what is not known is said."""
    export = _write(
        tmp_path / "x.csv", [*_rows(1, "20240304"), *_rows(2, "20240305"), *_rows(3, "20240306", stop=True)]
    )
    catalogue = _catalogue(tmp_path)
    mapping = ImportMapping(defaults=DossierDefaults(procedure_code=CODE))
    result = import_files([export], mapping, procedures=read_procedures(catalogue))
    assert result.ok, result.problems
    for event in result.events:
        validate_event(event)
    first = _by_dossier(result.events)["000.00.31.H29-240304-0001"]
    assert [e.event_type.value for e in first][:3] == ["DossierReceived", "DossierDigitized", "SyncedToNational"]
    assert first[0].documents == (f"{CODE}.TP01", f"{CODE}.TP02")  # every item is a component code
    assert first[5].requested_documents == (f"{CODE}.TP03",)  # case and NBSP padding do not matter
    assert first[0].unknown_facts == (
        "form_code", "n_attachments", "step_budget_minutes", "step_due_at", "to_actor",
    )  # fmt: skip
    issued = next(e for e in first if e.event_type is E.RESULT_ISSUED)
    assert (issued.result_ref, issued.result_electronic) == (None, None)
    assert issued.unknown_facts == ("n_attachments", "result_electronic", "result_ref")
    stop = next(e for e in result.events if e.event_type is E.PROCESSING_STOPPED)
    assert stop.unknown_facts == ("form_code", "n_attachments")
    assert stop.reason == "Dừng xử lý: người nộp không đủ điều kiện theo quy định"

    store = AuditStore(tmp_path / "store")
    try:
        store.add(result.events)
        store.add_catalogue(catalogue)
        report = audit(store.query, select_rules([]), params=parse_params([]))
    finally:
        store.close()
    assert [(f.rule, f.dossier_id) for f in report.findings] == []
    coverage = {rule: c.describe() for rule, c in report.coverage.items()}
    assert coverage["R7"] == {"assessed": 3, "not_assessable": {}}
    assert coverage["R19"] == {"assessed": 3, "not_assessable": {}}
    assert coverage["R16"] == {"assessed": 0, "not_assessable": {"form_code unknown": 3}}
    assert coverage["R17"] == {"assessed": 2, "not_assessable": {"n_attachments unknown": 1}}
    assert coverage["R20"] == {"assessed": 0, "not_assessable": {"result_electronic unknown": 3}}


def test_documents_are_said_only_when_every_item_is_a_component_code() -> None:
    codes = {c.casefold(): c for c in (f"{CODE}.TP01", f"{CODE}.TP02")}
    assert document_items("Yêu cầu bổ sung: a; b\nc") == ["a", "b", "c"]
    assert document_items(f"{CODE}.TP01") == [f"{CODE}.TP01"]
    assert match_documents(f"Yêu cầu bổ sung: {CODE}.tp02; {CODE}.TP01", codes) == (f"{CODE}.TP02", f"{CODE}.TP01")
    assert match_documents(f"Yêu cầu bổ sung: {CODE}.TP01; bản sao CCCD", codes) == ()  # partial: not said
    assert match_documents("Yêu cầu bổ sung: Giấy xác nhận cư trú", codes) == ()  # free text is not a code
    assert match_documents(f"Yêu cầu bổ sung: {CODE}.TP01", {}) == ()  # no catalogue: not said


def test_without_a_catalogue_documents_and_version_are_unknown(tmp_path: Path) -> None:
    export = _write(tmp_path / "x.csv", _rows(1, "20240304"))
    result = import_files([export], ImportMapping(defaults=DossierDefaults(procedure_code=CODE)))
    assert result.ok, result.problems
    request = next(e for e in result.events if e.event_type is E.SUPPLEMENT_REQUESTED)
    assert request.requested_documents == ()
    assert request.unknown_facts == ("form_code", "n_attachments", "procedure_version", "requested_documents")


def test_citizens_get_the_applicants_pseudonym_and_free_text_is_scrubbed(tmp_path: Path) -> None:
    d = "000.00.31.H29-240304-0001"
    name, number = "Trương Thị Hồng Nhung", "079188012345"  # made up
    lines = [
        f"{d},{name},Công dân,20240304074500,,Nộp hồ sơ trực tuyến,1,,,{name},{number}",
        f"{d},Trần Thị Bích,Cán bộ một cửa,20240304081000,000.00.31.H29,Tiếp nhận hồ sơ,2,,20240307081000,,",
        f'{d},Lê Văn Cường,Chuyên viên,20240304140000,000.00.31.H29,"Yêu cầu bổ sung: bản sao CCCD số {number} '
        f'của {name.upper()}, liên hệ 0909 123 456 hoặc nhung.truong@example.com",5,,,,',
        f"{d},Nguyễn Văn Bình,Người được ủy quyền,20240305090000,000.00.31.H29,Nộp bổ sung hộ Nhung,4,,,,",
        f"{d},Phạm Thu Hà,Người đại diện theo pháp luật,20240305100000,000.00.31.H29,Xin rút hồ sơ,7,,,,",
    ]
    export = _write(tmp_path / "x.csv", lines, header=f"{HEADER},ChuHoSo,SoGiayToChuHoSo")
    out = tmp_path / "x.jsonl"
    settings = Settings(kafka_bootstrap="127.0.0.1:1", pseudonym_key=KEY)
    args = [str(export), "--procedure-code", CODE, "--out", str(out)]
    result = CliRunner().invoke(import_cmd, args, obj=settings)
    assert result.exit_code == 0, result.output
    written = out.read_text(encoding="utf-8")
    clear = (name, name.upper(), number, "0909 123 456", "nhung.truong@example.com", "Nguyễn Văn Bình", "Phạm Thu Hà")
    assert [c for c in clear if c in written] == []
    events = [json.loads(line) for line in written.splitlines()]
    ref = applicant_ref(number, KEY)
    assert {e["applicant_ref"] for e in events} == {ref}
    # the citizen, an authorised person and a legal representative: the applicant's pseudonym, never a name
    assert [e["actor_id"] for e in events if e["actor_role"] == "APPLICANT"] == [ref, ref, ref]
    assert events[2]["reason"] == (
        "Yêu cầu bổ sung: bản sao CCCD số [số định danh] của [tên người nộp], liên hệ [số điện thoại] hoặc [email]"
    )
    # the event id is not a hash of the name: a citizen's row is identified by what is stored
    again = tmp_path / "again.jsonl"
    assert CliRunner().invoke(import_cmd, [*args[:-1], str(again)], obj=settings).exit_code == 0
    assert again.read_text(encoding="utf-8") == written
    no_key = CliRunner().invoke(import_cmd, [*args[:-1], "--check"], obj=Settings(kafka_bootstrap="127.0.0.1:1"))
    assert no_key.exit_code == 3
    assert "SoGiayToChuHoSo needs DOSSIER_PSEUDONYM_KEY to be pseudonymised" in no_key.stderr
    assert number not in no_key.stderr and name not in no_key.stderr


def test_a_missing_content_column_leaves_the_reason_unknown(tmp_path: Path) -> None:
    export = _write(
        tmp_path / "x.csv",
        ["000.00.31.H29-240301-0001,A,20240301080000,2", "000.00.31.H29-240301-0001,A,20240301090000,8"],
        header="MaHoSo,NguoiXuLy,ThoiDiemXuLy,TrangThai",
    )
    mapping = ImportMapping(defaults=DossierDefaults(procedure_code=CODE, time_limit_value=3))
    result = import_files([export], mapping)
    assert result.ok, result.problems
    stop = result.events[1]
    assert (stop.reason, stop.unknown_facts) == (None, ("form_code", "n_attachments", "procedure_version", "reason"))
    received = result.events[0]
    assert "due_at" in received.unknown_facts and received.due_at is None


def test_rejected_rows_keep_the_applicant_columns_so_a_fixed_import_still_scrubs(tmp_path: Path) -> None:
    lines = [
        "000.00.31.H29-240304-0001,Trần Thị Bích,Cán bộ một cửa,20240304081000,,Tiếp nhận,2,,20240307081000,Lý Thị Mai",
        "000.00.31.H29-240304-0002,Trần Thị Bích,Cán bộ một cửa,20240304081000,,Tiếp nhận,2,,20240307081000,Đỗ Văn Tư",
        "000.00.31.H29-240304-0002,Trần Thị Bích,Cán bộ một cửa,20240304091000,,Trả kết quả,10,,,Đỗ Văn Tư",
    ]
    export = _write(tmp_path / "x.csv", lines, header=f"{HEADER},ChuHoSo")
    rejected = tmp_path / "fix.csv"
    args = [str(export), "--procedure-code", CODE, "--out", str(tmp_path / "ok.jsonl"), "--skip-invalid"]
    result = CliRunner().invoke(import_cmd, [*args, "--rejected-out", str(rejected)], obj=Settings())
    assert result.exit_code == 0, result.output
    assert rejected.read_text(encoding="utf-8").splitlines()[0] == f"{HEADER},ChuHoSo"


def test_a_mapping_rule_may_read_a_move_as_a_status_override(tmp_path: Path) -> None:
    d = "000.00.31.H29-240304-0001"
    lines = [
        f"{d},Trần Thị Bích,Cán bộ một cửa,20240304081000,,Tiếp nhận,2,,20240307081000",
        f"{d},Trần Thị Bích,Cán bộ một cửa,20240304091000,,Chuyển xử lý,4,,",
        f"{d},Võ Thị Hoa,Văn thư,20240305091000,,Phát hành kết quả,9,,",
        f"{d},Quản trị hệ thống,Quản trị viên,20240305101000,,Đặt lại trạng thái,4,,",
        f"{d},Hệ thống,Hệ thống,20240306101000,,Đặt lại ngày hẹn trả,4,,20240311081000",
    ]
    export = _write(tmp_path / "x.csv", lines)
    rules = tmp_path / "m.json"
    rules.write_text(json.dumps({"events": [{"from": [9], "to": 4, "match": "đặt lại", "event": "AdminOverride"}]}))
    result = import_files([export], load_mapping(rules, ImportMapping(DossierDefaults(procedure_code=CODE))))
    assert result.ok, result.problems
    status, due = result.events[3], result.events[4]
    assert (status.actor_role.value, status.override_field, status.override_old, status.override_new) == (
        "ADMIN", "status", "9", "4",
    )  # fmt: skip
    assert (due.event_type, due.override_field, due.override_new) == (
        E.ADMIN_OVERRIDE, "due_at", "2024-03-11T08:10:00+07:00",
    )  # fmt: skip


def test_a_title_in_place_of_a_name_is_not_scrubbed(tmp_path: Path) -> None:
    d = "000.00.31.H29-240304-0001"
    lines = [
        f"{d},Công dân,Công dân,20240304074500,,Nộp hồ sơ trực tuyến,1,,",
        f"{d},Trần Thị Bích,Cán bộ một cửa,20240304081000,,Tiếp nhận hồ sơ của công dân,2,,20240307081000",
        f"{d},Trần Thị Bích,Cán bộ một cửa,20240304091000,,Dừng xử lý theo yêu cầu của công dân,8,,",
    ]
    result = import_files([_write(tmp_path / "x.csv", lines)], ImportMapping(DossierDefaults(procedure_code=CODE)))
    assert result.ok, result.problems
    assert result.events[-1].reason == "Dừng xử lý theo yêu cầu của công dân"
    assert result.events[0].actor_id == f"khong-ro:{d}"
