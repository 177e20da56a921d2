"""Applicants appear only as keyed pseudonyms: no clear name, ID or phone number anywhere the system writes.

Every name, identity number and phone number below is invented for the test; none belongs to a real person.
The officials' names are invented too; they stay in clear on purpose (accountability is the point).
"""

from __future__ import annotations

import json
import signal
import time
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from schemas.pseudonym import DEMO_KEY, applicant_ref
from tests.leakscan import (
    dump_store,
    name_forms,
    number_forms,
    phone_forms,
    run_many,
    scan_bytes,
    scan_text,
    scan_tree,
)
from tests.test_consumers_support import dossier, spawn

KEY = "made-up-pseudonym-key-for-tests-7f3a"
CODE = "1.001612"
HEADER = "MaHoSo,NguoiXuLy,ChucDanh,ThoiDiemXuLy,PhongBanXuLy,NoiDungXuLy,TrangThai,NgayBatDau,NgayKetThucTheoQuyDinh"
#: Made-up applicants: (name, 12-digit identity number, mobile phone).
TUYET = ("Nguyễn Thị Ánh Tuyết", "079301004567", "0912345678")
KHAI = ("Trịnh Văn Khải", "001092003344", "0987654321")
YEN = ("Đặng Hoàng Yến", "052188009911", "0903111222")
PEOPLE = (TUYET, KHAI, YEN)
A, B, C, D = (f"000.00.31.H29-{s}" for s in ("240304-0001", "240304-0002", "240305-0001", "240306-0001"))
E = "000.00.12.H29-240311-0001"


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _ascii(text: str) -> str:
    return "".join(c for c in _nfd(text.replace("Đ", "D").replace("đ", "d")) if not unicodedata.combining(c))


def _csv_rows() -> list[str]:
    """Histories of a ward (CSV): the citizens' names in every form, in notes, refusals, apologies, feedback."""
    (tn, tid, tph), (kn, kid, kph) = TUYET, KHAI
    tuyet, khai = f"{tn},{tid}", f"{kn},{kid[:3]} {kid[3:6]} {kid[6:9]} {kid[9:]}"
    bich, cuong = "Trần Thị Bích,Cán bộ một cửa", "Lê Văn Cường,Chuyên viên"
    return [
        f"{A},{tn},Công dân,20240304074500,,Nộp hồ sơ trực tuyến - SĐT {tph},1,,,{tuyet}",
        f"{A},{bich},20240304081000,000.00.31.H29,Tiếp nhận hồ sơ,2,,20240307081000,{tuyet}",
        f"{A},{bich},20240304090000,000.00.31.H29,Chuyển hồ sơ cho chuyên viên xử lý,4,,,{tuyet}",
        f'{A},{cuong},20240304140000,000.00.31.H29,"Yêu cầu bổ sung: bản sao CCCD số {tid} của {tn}, '
        f'liên hệ {tph[:4]} {tph[4:7]} {tph[7:]}",5,,,{tuyet}',
        f"{A},{_nfd(tn)},Công dân,20240305090000,000.00.31.H29,Công dân nộp bổ sung hồ sơ,4,,,{tuyet}",
        f'{A},{cuong},20240305100000,000.00.31.H29,"Xin lỗi: đã gọi {tn.upper()} (+84 {tph[1:4]} {tph[4:7]} '
        f'{tph[7:]}), hẹn lại ngày trả",4,,20240311081000,{tuyet}',
        f"{A},Phạm Minh Đức,Phó Chủ tịch UBND,20240306090000,000.00.31.H29,Phê duyệt kết quả,4,,,{tuyet}",
        f"{A},Võ Thị Hoa,Văn thư,20240306140000,000.00.31.H29,Ký phát hành kết quả,9,,,{tuyet}",
        f"{A},{bich},20240307090000,000.00.31.H29,Trả kết quả cho {_ascii(tn).lower()} - 84{tph[1:]},10,,,{tuyet}",
        f'{A},{bich},20240307100000,000.00.31.H29,"Phản ánh, kiến nghị của công dân {_nfd(tn)} qua số '
        f'{tph[:4]}.{tph[4:7]}.{tph[7:]}",10,,,{tuyet}',
        f"{B},{_ascii(kn)},Công dân,20240304080000,,Nộp hồ sơ - liên hệ {kph[:4]}-{kph[4:7]}-{kph[7:]},1,,,{khai}",
        f'{B},{bich},20240304100000,000.00.31.H29,"Từ chối tiếp nhận: ông {kn.upper()} (CCCD {kid}, ĐT '
        f'0084 {kph[1:4]} {kph[4:7]} {kph[7:]}) thiếu giấy tờ",3,,,{khai}',
        f"{C},{bich},20240305081000,000.00.31.H29,Tiếp nhận hồ sơ,2,,20240308081000,{khai}",
        f"{C},{bich},20240305090000,000.00.31.H29,Chuyển xử lý,4,,,{khai}",
        f"{C},{kn},Công dân,20240305150000,000.00.31.H29,Xin rút hồ sơ - gọi lại số {kph},7,,,{khai}",
        f"{C},Phạm Minh Đức,Phó Chủ tịch UBND,20240306090000,000.00.31.H29,Dừng xử lý theo đơn của "
        f"{_ascii(kn).lower()},8,,,{khai}",
        # no rule maps 2 → 10: the dossier is rejected, and the message quotes its text
        f"{D},{bich},20240306081000,000.00.31.H29,Tiếp nhận hồ sơ,2,,20240311081000,{tuyet}",
        f"{D},{cuong},20240306090000,000.00.31.H29,Trả ngay cho {tn} ({tph}),10,,,{tuyet}",
    ]


def _json_export() -> dict[str, object]:
    """A department's export (JSON, dossiers with their rows); the identity number is in the mapping file."""
    name, _, phone = YEN
    officer = {"NguoiXuLy": "Đặng Thu Trang", "ChucDanh": "Chuyên viên Bộ phận Một cửa", "PhongBanXuLy": "Một cửa"}
    expert = {"NguoiXuLy": "Hồ Quốc Bảo", "ChucDanh": "Chuyên viên", "PhongBanXuLy": "000.12.12.H29"}
    rows = [
        {**officer, "ThoiDiemXuLy": "20240311083000", "NoiDungXuLy": f"Tiếp nhận hồ sơ của bà {name.upper()}",
         "TrangThai": 2, "NgayKetThucTheoQuyDinh": "20240318083000"},
        {**officer, "ThoiDiemXuLy": "20240311140000", "NoiDungXuLy": "Chuyển hồ sơ đến phòng chuyên môn",
         "TrangThai": 4},
        {**expert, "ThoiDiemXuLy": "20240312100000", "TrangThai": 5,
         "NoiDungXuLy": f"Yêu cầu bổ sung: giấy ủy quyền của {_ascii(name)}, liên hệ {phone} hoặc +84{phone[1:]}"},
        {"NguoiXuLy": name, "ChucDanh": "Người đại diện theo pháp luật", "PhongBanXuLy": "Một cửa",
         "ThoiDiemXuLy": "20240313090000", "NoiDungXuLy": "Nộp bổ sung", "TrangThai": 4},
        {**expert, "ThoiDiemXuLy": "20240314090000", "NoiDungXuLy": "Trình lãnh đạo ký duyệt", "TrangThai": 4},
        {"NguoiXuLy": "Mai Thanh Sơn", "ChucDanh": "Giám đốc", "PhongBanXuLy": "000.12.12.H29",
         "ThoiDiemXuLy": "20240314150000", "NoiDungXuLy": "Phê duyệt", "TrangThai": 4},
        {"NguoiXuLy": "Lý Thị Thu", "ChucDanh": "Văn thư", "PhongBanXuLy": "000.12.12.H29",
         "ThoiDiemXuLy": "20240315090000", "NoiDungXuLy": "Phát hành kết quả", "TrangThai": 9},
        {**officer, "ThoiDiemXuLy": "20240315140000", "NoiDungXuLy": f"Trả kết quả cho bà {_nfd(name)}",
         "TrangThai": 10},
    ]  # fmt: skip
    return {"QuaTrinhXuLy": [{"MaHoSo": E, "QuaTrinhXuLy": [{**r, "ChuHoSo": name} for r in rows]}]}


def _needles() -> dict[str, str]:
    needles: dict[str, str] = {}
    for name, number, phone in PEOPLE:
        needles |= {form: f"name {name!r}" for form in name_forms(name)}
        needles |= {form: f"ID number {number}" for form in number_forms(number)}
        needles |= {form: f"phone {phone}" for form in phone_forms(phone)}
    return needles


def _inputs(work: Path) -> tuple[Path, Path, Path]:
    csv_file = work / "phuong.csv"
    csv_file.write_text("\n".join([f"{HEADER},ChuHoSo,SoGiayToChuHoSo", *_csv_rows()]) + "\n", encoding="utf-8")
    json_file = work / "so.json"
    json_file.write_text(json.dumps(_json_export(), ensure_ascii=False, indent=1), encoding="utf-8")
    mapping = work / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "units": {"Một cửa": "000.00.12.H29"},
                "dossiers": {E: {"procedure_code": "1.009994", "applicant_id": YEN[1]}},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return csv_file, json_file, mapping


def _wait_for(condition: str, check: object, loader: object, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert loader.poll() is None, loader.stderr.read()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, condition
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.broker
def test_no_clear_name_id_or_phone_anywhere_after_import_publish_load_and_every_report(tmp_path: Path) -> None:
    """Import CSV and JSON exports full of made-up citizens, publish them to the embedded broker, load them with
    the live loader and the bulk loader, run every reading command and every export format; then look for each
    name, ID and phone number (in every form) in everything printed and everything written.

    The store is read twice: byte for byte, like every other file under the data directory, and through the
    engine. The byte scan alone proves little there: ClickHouse compresses each column of a part with LZ4, so a
    clear name in the store would not show as its bytes. The engine scan SELECTs every String-typed column of
    every table (dead letters, journals and the ledger included) and searches the values.

    Not scanned: the exports given to the importer, and the rejected rows it writes for fixing (--rejected-out):
    they are the export's own rows, which must keep the applicant's name and number for the fixed import to
    scrub and pseudonymise them.
    """
    work, data, exports = tmp_path / "work", tmp_path / "data", tmp_path / "exports"
    work.mkdir()
    exports.mkdir()
    csv_file, json_file, mapping = _inputs(work)
    rejected = work / "rejected.csv"
    env = {"DOSSIER_KAFKA_BOOTSTRAP": "", "DOSSIER_DATA_DIR": str(data), "DOSSIER_PSEUDONYM_KEY": KEY}
    printed: list[tuple[str, str]] = []

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        done = dossier(*args, env=env)
        printed.append((" ".join(args), done.stdout + done.stderr))
        assert done.returncode in ok, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    loader = spawn("consume", "run", "--max-wait", "0.2", env=env)
    try:
        _wait_for(
            "the stack did not start",
            lambda: (data / "broker.json").exists() and (data / "store.endpoint.json").exists(),
            loader,
        )
        run("produce", "import", str(csv_file), "--procedure-code", CODE, "--skip-invalid", "--rejected-out",
            str(rejected), "--out", str(exports / "ward.jsonl"), "--publish")  # fmt: skip
        run("produce", "import", str(json_file), "--mapping", str(mapping), "--out", str(exports / "dept.avro"),
            "--publish")  # fmt: skip
        run("produce", "publish", str(exports / "ward.jsonl"))  # again: stored once
        expected = len((exports / "ward.jsonl").read_text(encoding="utf-8").splitlines()) + 8

        def stored() -> bool:
            status = dossier("consume", "status", "--no-lag", "--format", "json", env=env)
            return status.returncode == 0 and json.loads(status.stdout)[0]["events"] == expected

        _wait_for("the loader did not store every event", stored, loader)
    finally:
        loader.send_signal(signal.SIGTERM)
        out, err = loader.communicate(timeout=60)
        printed.append(("consume run", out + err))
    assert loader.returncode == 0, err
    formats = ("csv", "jsonl", "parquet", "xes", "ocel")
    commands = [
        ["consume", "load", str(exports / "dept.avro")],  # the bulk path: nothing new, nothing twice
        ["consume", "load", str(exports / "ward.jsonl")],
        *(
            ["inspect", "replay", d, "--format", fmt]
            for d, fmt in ((A, "table"), (B, "json"), (C, "table"), (E, "json"))
        ),
        *(["inspect", "audit", "--format", fmt] for fmt in ("table", "json", "jsonl", "csv")),
        *(
            [*command, "--format", fmt]
            for fmt in ("table", "json")
            for command in (["inspect", "scorecard"], ["inspect", "accountability"], ["consume", "dead-letters"])
        ),
        ["inspect", "verify"],
        ["inspect", "flow"],
        ["inspect", "variants"],
        ["consume", "status", "--no-lag"],
        *(["inspect", "export", "--format", fmt, "--out", str(exports / f"all.{fmt}")] for fmt in formats),
        ["inspect", "export", "--format", "jsonl"],  # to stdout
        [
            "inspect",
            "sql",
            "SELECT DISTINCT applicant_ref FROM events WHERE NOT startsWith(applicant_ref, 'khong')",
            "--format",
            "csv",
        ],
    ]
    results = run_many(commands, env)
    for r in results:
        printed.append((" ".join(r["args"]), f"{r['stdout']}{r['stderr']}"))  # type: ignore[arg-type]
        findings = r["args"][:2] in (["inspect", "audit"], ["inspect", "verify"])  # type: ignore[index]
        assert r["code"] in ((0, 3) if findings else (0,)), r
    table = pq.read_table(exports / "all.parquet")
    parquet_text = json.dumps(table.to_pylist(), ensure_ascii=False, default=str)

    needles = _needles()
    leaks = [leak for command, output in printed for leak in scan_text(command, output, needles)]
    leaks += scan_text("all.parquet (decoded)", parquet_text, needles)
    tree_leaks, files = scan_tree(data, needles)
    export_leaks, exported = scan_tree(exports, needles)
    store = dump_store(data)
    for table_dump in store:
        leaks += scan_text(f"store table {table_dump['table']}", "\n".join(table_dump["text"]), needles)  # type: ignore[arg-type]
    assert leaks + tree_leaks + export_leaks == []

    # the scans looked at what they should have: the data, the store's tables, every format, the citizens
    assert files > 20 and exported == len(formats) + 2
    tables = {str(t["table"]): t for t in store}
    assert {"events", "dead_letters", "file_loads", "units"} <= set(tables)
    assert tables["events"]["rows"] == expected
    assert table.num_rows == expected
    refs = {applicant_ref(number, KEY.encode()) for _, number, _ in PEOPLE}
    stored_refs = set(str(results[-1]["stdout"]).split()[1:])
    assert stored_refs == refs
    assert any("rejected" in output and D in output for _, output in printed)  # the unmappable dossier was named
    assert "[tên người nộp]" in (exports / "all.jsonl").read_text(encoding="utf-8")  # scrubbed, not dropped
    officials = ("Trần Thị Bích", "Lê Văn Cường", "Đặng Thu Trang")
    assert all(o in (exports / "all.csv").read_text(encoding="utf-8") for o in officials)  # accountability stays
    assert rejected.exists() and TUYET[0] in rejected.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "key", [DEMO_KEY.decode(), f" {DEMO_KEY.decode()}\n", "change-me-to-a-long-random-secret", "short"]
)
def test_the_importer_refuses_the_demo_key_the_placeholder_and_a_short_key(tmp_path: Path, key: str) -> None:
    """Real applicants come in through the importer: a key anyone can read would hide none of them (exit 2)."""
    csv_file, _, _ = _inputs(tmp_path)
    out = tmp_path / "out.jsonl"
    env = {"DOSSIER_PSEUDONYM_KEY": key, "DOSSIER_DATA_DIR": str(tmp_path / "data")}
    done = dossier("produce", "import", str(csv_file), "--procedure-code", CODE, "--out", str(out), env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    if len(key.strip()) >= 16:
        assert "anyone can read" in lines[0] and "set it to a long random secret of your own" in lines[0]
    else:
        assert "at least 16 bytes" in lines[0]
    assert not out.exists() and done.stdout == ""


def test_the_simulator_takes_the_demo_key_its_people_are_made_up(tmp_path: Path) -> None:
    env = {"DOSSIER_PSEUDONYM_KEY": DEMO_KEY.decode()}
    done = dossier("produce", "simulate", "--dossiers", "20", "--workers", "1", "--out", str(tmp_path / "s"), env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "events-00000.avro").exists()


def test_no_value_of_the_export_reaches_a_problem_message_unscrubbed(tmp_path: Path) -> None:
    """The messages of a rejected dossier quote its text: the applicant's name goes, as in the events."""
    csv_file, _, _ = _inputs(tmp_path)
    env = {"DOSSIER_PSEUDONYM_KEY": KEY}
    done = dossier("produce", "import", str(csv_file), "--procedure-code", CODE, "--check", env=env)
    assert done.returncode == 3
    assert f"{csv_file}:19: {D}: no mapping for TrangThai 2 → 10" in done.stderr
    assert scan_bytes("stderr", done.stderr.encode(), _needles()) == []
