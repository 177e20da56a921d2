"""`dossier produce import`: QuaTrinhXuLy exports → chained, lifecycle-checked events; bad rows with file:line."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dossier_runtime.broker import BrokerHandle
from dossier_runtime.settings import Settings
from producers.cli_import import import_cmd
from producers.cli_publish import publish_cmd
from producers.importer import import_files, parse_stamp
from producers.importmapping import DossierDefaults, ImportMapping, load_mapping
from producers.inputs import InputEvent, read_events
from schemas.codec import encode
from schemas.events import DossierEvent
from schemas.lifecycle import check_history
from tests.test_publish_support import consume

DATA = Path(__file__).parent / "data"
CSV = DATA / "qtxl_phuong.csv"
JSON = DATA / "qtxl_so.json"
MAPPING = DATA / "qtxl_mapping.json"
BAD = DATA / "qtxl_loi.csv"
CLOSED = Settings(kafka_bootstrap="127.0.0.1:1")


def run(*args: str, settings: Settings = CLOSED) -> Result:
    result = CliRunner().invoke(import_cmd, list(args), obj=settings)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def events_in(path: Path) -> list[DossierEvent]:
    items = list(read_events(path))
    assert all(isinstance(i, InputEvent) for i in items), items
    return [i.event for i in items]  # type: ignore[union-attr]


def test_csv_rows_map_to_a_legal_chained_history(tmp_path: Path) -> None:
    out = tmp_path / "imported.jsonl"
    result = run(str(CSV), "--procedure-code", "2.000635", "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "rows_read": 15,
        "dossiers_read": 2,
        "dossiers_accepted": 2,
        "dossiers_rejected": 0,
        "events_accepted": 15,
        "rows_rejected": 0,
        "duplicate_rows_skipped": 0,
        "problems": 0,
        "written": 15,
        "out": str(out),
    }
    events = events_in(out)
    first = [e for e in events if e.dossier_id == "000.00.31.H29-240115-0001"]
    assert [(e.seq, e.event_type.value, e.status, e.actor_role.value) for e in first] == [
        (1, "DossierSubmitted", 1, "APPLICANT"),
        (2, "DossierReceived", 2, "RECEPTION_OFFICER"),
        (3, "DossierTransferred", 4, "RECEPTION_OFFICER"),
        (4, "StepHandedOver", 4, "CASE_OFFICER"),
        (5, "ResultApproved", 4, "LEADER"),
        (6, "ResultIssued", 9, "CLERK"),
        (7, "ResultReturned", 10, "RECEPTION_OFFICER"),
    ]
    received = first[1]
    assert received.occurred_at == datetime(2024, 1, 15, 1, 10, 30, tzinfo=UTC)  # 08:10:30 UTC+7
    assert received.due_at == datetime(2024, 1, 18, 1, 10, 30, tzinfo=UTC)
    assert (received.time_limit_value, received.time_limit_unit.value) == (3, "WORKING_DAYS")
    assert received.channel.value == "ONLINE" and received.service_level.value == "FULL_ONLINE"
    assert received.rule_set == "ND61-2018" and received.procedure_code == "2.000635"
    assert first[2].to_actor == "Lê Văn Cường" and first[2].to_role.value == "CASE_OFFICER"
    assert first[2].step_due_at == datetime(2024, 1, 15, 4, 30, tzinfo=UTC)
    second = [e for e in events if e.dossier_id == "000.00.31.H29-240116-0003"]
    assert [e.event_type.value for e in second][:4] == [
        "DossierReceived",
        "DossierTransferred",
        "SupplementRequested",
        "SupplementReceived",
    ]
    assert second[0].channel.value == "DIRECT"
    # free text is a reason, never a component code: without a catalogue the documents are not said
    assert second[2].requested_documents == ()
    assert second[2].reason == "Yêu cầu bổ sung: Giấy xác nhận thông tin về cư trú"
    assert second[2].unknown_facts == ("form_code", "n_attachments", "procedure_version", "requested_documents")
    assert received.unknown_facts == (
        "documents", "form_code", "n_attachments", "procedure_version",
        "step_budget_minutes", "step_due_at", "to_actor",
    )  # fmt: skip
    assert first[5].unknown_facts == ("n_attachments", "procedure_version", "result_electronic", "result_ref")
    assert (first[5].result_ref, first[5].result_electronic) == (None, None)
    assert first[0].actor_id == "khong-ro:000.00.31.H29-240115-0001"  # the citizen's own row: no name stored
    assert check_history(first) == [] and check_history(second) == []
    checked = CliRunner().invoke(publish_cmd, ["--check", str(out)], obj=CLOSED)
    assert checked.exit_code == 0, checked.output


def test_reimport_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.avro", tmp_path / "b.avro"
    assert run(str(CSV), "--procedure-code", "2.000635", "--out", str(a)).exit_code == 0
    assert run(str(CSV), "--procedure-code", "2.000635", "--out", str(b)).exit_code == 0
    first, second = events_in(a), events_in(b)
    assert [encode(e) for e in first] == [encode(e) for e in second]
    assert len({e.event_id for e in first}) == 15


def test_json_export_with_a_mapping_file(tmp_path: Path) -> None:
    out = tmp_path / "so.avro"
    result = run(str(JSON), "--mapping", str(MAPPING), "--out", str(out))
    assert result.exit_code == 0, result.output
    events = events_in(out)
    assert [e.event_type.value for e in events] == [
        "DossierReceived",
        "DossierTransferred",
        "InterAgencyTransferred",
        "StepReturned",
        "ApologyIssued",
        "ResultApproved",
        "ResultIssued",
        "ResultReturned",
    ]
    assert {e.procedure_code for e in events} == {"1.009994"}  # the dossier's entry wins over the default
    assert events[0].applicant_kind.value == "ORGANISATION" and events[0].channel.value == "DIRECT"
    assert (events[0].time_limit_value, events[0].unit_code) == (5, "000.00.12.H29")
    assert events[1].to_unit == "000.12.12.H29"  # "Phòng Quản lý đô thị" through the units table
    assert events[2].to_unit == "000.00.05.H29"
    assert events[4].new_due_at == datetime(2024, 1, 26, 1, 30, tzinfo=UTC)
    assert events[5].actor_role.value == "LEADER"  # Trưởng phòng


def test_bad_rows_are_listed_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = run(str(BAD), "--procedure-code", "2.000635", "--out", str(out))
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"{BAD}:3: 000.00.31.H29-240201-0001: no mapping for TrangThai 2 → 10 with NoiDungXuLy 'Trả kết quả'; "
        'add an "events" rule to the --mapping file',
        f"{BAD}:4: 000.00.31.H29-240201-0002: ThoiDiemXuLy '2024-02-01 08:30' is not yyyyMMddHHmmss "
        "(e.g. 20240115083000)",
        f"{BAD}:5: 000.00.31.H29-240201-0002: TrangThai '11' is not a national status code 1-10",
        f"{BAD}:6: 000.00.31.H29-240201-0003: PhongBanXuLy 'Phòng Văn hóa - Thông tin' is not a unit code; "
        'map it under "units" in the --mapping file',
        f"{BAD}:9: duplicate of {BAD}:8, skipped",
        "nothing imported: 4 problem(s) in 3 of 4 dossier(s)",
    ]
    assert not out.exists()


def test_skip_invalid_writes_valid_dossiers_and_a_fixable_csv(tmp_path: Path) -> None:
    out, rejected = tmp_path / "ok.jsonl", tmp_path / "fix.csv"
    result = run(
        str(BAD), "--procedure-code", "2.000635", "--out", str(out), "--skip-invalid", "--rejected-out", str(rejected)
    )
    assert result.exit_code == 0, result.output
    assert [e.dossier_id for e in events_in(out)] == ["000.00.31.H29-240201-0004"] * 2
    lines = rejected.read_text(encoding="utf-8").splitlines()
    assert (
        lines[0]
        == "MaHoSo,NguoiXuLy,ChucDanh,ThoiDiemXuLy,PhongBanXuLy,NoiDungXuLy,TrangThai,NgayBatDau,NgayKetThucTheoQuyDinh"
    )
    assert len(lines) == 1 + 5
    assert (
        lines[3]
        == "000.00.31.H29-240201-0002,Trần Thị Bích,Cán bộ một cửa,2024-02-01 08:30,000.00.31.H29,Tiếp nhận hồ sơ,2,,"
    )


def test_lifecycle_violation_points_at_the_row(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "MaHoSo,NguoiXuLy,ThoiDiemXuLy,TrangThai,NoiDungXuLy\n"
        "000.00.31.H29-240301-0001,A,20240301080000,2,Tiếp nhận\n"
        "000.00.31.H29-240301-0001,A,20240301090000,4,Chuyển xử lý\n",
        encoding="utf-8",
    )
    result = run(str(path), "--procedure-code", "1.001612", "--check")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{path}:2: 000.00.31.H29-240301-0001: the reception row has no NgayKetThucTheoQuyDinh to derive the time "
        "limit from; give --time-limit or time_limit in the --mapping file"
    )
    assert run(str(path), "--procedure-code", "1.001612", "--time-limit", "3", "--check").exit_code == 0


def test_missing_procedure_code_and_destination_are_explained(tmp_path: Path) -> None:
    result = run(str(CSV), "--check")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{CSV}:2: 000.00.31.H29-240115-0001: no procedure code: give --procedure-code, or procedure_code in the "
        "--mapping file"
    )
    result = run(str(CSV), "--procedure-code", "1.001612")
    assert result.exit_code == 2
    assert "say where the events go: --out FILE (.jsonl or .avro), --publish, or --check" in result.output
    assert run(str(CSV), "--bogus").exit_code == 2


def test_csv_with_the_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("ho_so;trang_thai\n1;2\n", encoding="utf-8")
    result = run(str(path), "--procedure-code", "1.001612", "--check")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"{path}:1: missing column(s) MaHoSo, NguoiXuLy, ThoiDiemXuLy, TrangThai (the header has: ho_so, trang_thai)"
    )


def test_timestamps_are_utc_plus_7() -> None:
    assert parse_stamp("20240101000000", "x") == datetime(2023, 12, 31, 17, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="'20240230120000' is not a real date and time"):
        parse_stamp("20240230120000", "x")


def test_mapping_file_rules_come_before_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    rule = {"from": [4], "to": 4, "match": "trình lãnh đạo", "event": "ResultApproved"}
    path.write_text(json.dumps({"events": [rule]}), encoding="utf-8")
    mapping = load_mapping(path, ImportMapping(defaults=DossierDefaults(procedure_code="1.001612")))
    result = import_files([CSV], mapping)
    assert result.ok
    assert result.events[3].event_type.value == "ResultApproved"  # "Thẩm định hồ sơ, trình lãnh đạo"
    assert result.events[3].actor_role.value == "CASE_OFFICER"


def test_import_publishes_with_verified_delivery(broker: BrokerHandle, topic: str) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic=topic, partitions=2)
    result = run(str(CSV), "--procedure-code", "2.000635", "--publish", "--format", "json", settings=settings)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["delivered"], summary["undelivered"], summary["topic"]) == (15, 0, topic)
    records = consume(broker.bootstrap, topic, 2, expected=15)
    expected = import_files([CSV], ImportMapping(defaults=DossierDefaults(procedure_code="2.000635"))).events
    assert sorted(r.value for r in records) == sorted(encode(e) for e in expected)


def test_export_text_is_normalised_once(tmp_path: Path) -> None:
    """NFC, no NBSP / zero-width / BOM padding: a stop "reason" of only NBSPs imports as "" (R17 flags it)."""
    nfd = unicodedata.normalize("NFD", "Hồ sơ không đủ điều kiện")
    path = tmp_path / "x.csv"
    path.write_text(
        "MaHoSo,NguoiXuLy,ThoiDiemXuLy,TrangThai,NoiDungXuLy\n"
        "000.00.31.H29-240301-0001,A,20240301080000,2,Tiếp nhận\n"
        "000.00.31.H29-240301-0001,A,20240301090000,8,\u00a0\u00a0\n"
        "000.00.31.H29-240301-0002,A,20240301080000,2,Tiếp nhận\n"
        f"000.00.31.H29-240301-0002,\ufeffB\u200b,20240301090000,8,\u00a0{nfd}\u200b\n",
        encoding="utf-8",
    )
    out = tmp_path / "x.jsonl"
    result = run(str(path), "--procedure-code", "1.001612", "--time-limit", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    stops = [e for e in events_in(out) if e.status == 8]
    assert [(e.event_type.value, e.actor_id, e.reason) for e in stops] == [
        ("ProcessingStopped", "A", ""),
        ("ProcessingStopped", "B", "Hồ sơ không đủ điều kiện"),
    ]


def test_a_name_of_invisible_characters_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "MaHoSo,NguoiXuLy,ThoiDiemXuLy,TrangThai,NoiDungXuLy\n"
        "000.00.31.H29-240301-0001,\u200b\ufeff,20240301080000,2,Tiếp nhận\n",
        encoding="utf-8",
    )
    result = run(str(path), "--procedure-code", "1.001612", "--time-limit", "3", "--check")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == f"{path}:2: 000.00.31.H29-240301-0001: empty NguoiXuLy"
