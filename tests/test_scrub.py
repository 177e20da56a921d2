"""Personal data is scrubbed out of free text before sealing: each pattern on made-up values, and what must stay.

Every number, name and address below is invented for the test; none belongs to a real person.
"""

from __future__ import annotations

import unicodedata

import pytest

from producers.scrub import EMAIL, IDENTITY, NAME, PASSPORT, PHONE, Scrubber, scrub

NAME_GIVEN = "Trương Thị Hồng Nhung"  # made up


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # citizen ID (CCCD, 12 digits), also written in groups of three; old ID card (CMND, 9 digits)
        ("bản sao CCCD số 079188012345 của bà", f"bản sao CCCD số {IDENTITY} của bà"),
        ("CCCD 079 188 012 345, cấp ngày 01/02/2021", f"CCCD {IDENTITY}, cấp ngày 01/02/2021"),
        ("số định danh 079.188.012.345.", f"số định danh {IDENTITY}."),
        ("CMND: 025123456", f"CMND: {IDENTITY}"),
        # passport: one letter (or two) and seven digits
        ("hộ chiếu C1234567 và N7654321", f"hộ chiếu {PASSPORT} và {PASSPORT}"),
        # phone numbers: mobile and landline, national and international, with spaces, dots or dashes
        ("gọi 0909123456", f"gọi {PHONE}"),
        ("SĐT 0909 123 456 hoặc 0909.123.456", f"SĐT {PHONE} hoặc {PHONE}"),
        ("bàn 028 3829 1234 / 028.3829.1234", f"bàn {PHONE} / {PHONE}"),
        ("+84 909 123 456, (+84) 28 3829 1234, 0084909123456, 84909123456", f"{PHONE}, {PHONE}, {PHONE}, {PHONE}"),
        ("0909-123-456", PHONE),
        # e-mail addresses
        ("gửi nhung.truong@example.com.vn rồi", f"gửi {EMAIL} rồi"),
        ("Liên hệ: hong_nhung+hs@mail.example.vn.", f"Liên hệ: {EMAIL}."),
    ],
)
def test_each_pattern_is_replaced_by_its_marker(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hồ sơ 000.00.31.H29-240115-0001 đã tiếp nhận",  # a dossier code
        "Hồ sơ 38.98.H29-210519-0013",  # a dossier code without the leading 000.
        "Thủ tục 1.001776 và 1.000948.H38",  # procedure codes
        "Thành phần 2.003123.TP01; 2.003123.TP02",  # component codes
        "Hẹn trả ngày 2024-02-07, tức 07/02/2024, mốc 20240207083000",  # dates and a timestamp
        "Lệ phí 1.250.000 đồng; thuế 250000000 đồng; giá 250.000.000.000 VNĐ; 120000000đ",  # amounts
        "Đơn vị 000.00.31.H29, phường 000.12.34.H29",  # unit codes
        "Yêu cầu bổ sung: Giấy xác nhận thông tin về cư trú",  # ordinary text
        "Số 15/2024/QĐ-UBND ngày 12/3/2024",  # a decision number
    ],
)
def test_codes_dates_and_amounts_stay(text: str) -> None:
    assert scrub(text) == text


def test_the_applicants_name_in_any_case_with_or_without_diacritics() -> None:
    s = Scrubber([NAME_GIVEN])
    text = (
        f"bản sao CCCD số 079188012345 của {NAME_GIVEN}; đã gọi TRƯƠNG THỊ HỒNG NHUNG, "
        "truong thi hong nhung xác nhận; Nhung là tên đệm phổ biến"
    )
    assert s(text) == (
        f"bản sao CCCD số {IDENTITY} của {NAME}; đã gọi {NAME}, {NAME} xác nhận; Nhung là tên đệm phổ biến"
    )
    nfd = unicodedata.normalize("NFD", f"của {NAME_GIVEN}")
    assert s(nfd) == f"của {NAME}"  # compared in NFC
    assert Scrubber(["Nhung"])("Nhung gọi lại") == "Nhung gọi lại"  # one-word names would take words with them


def test_the_applicants_own_id_number_as_the_export_writes_it() -> None:
    assert Scrubber(identities=["B12-345678"])("giấy tờ B12-345678 đã kiểm tra") == f"giấy tờ {IDENTITY} đã kiểm tra"


def test_empty_text_stays_empty() -> None:
    assert scrub("") == ""


def test_a_name_given_without_diacritics_is_scrubbed_where_the_text_writes_them() -> None:
    s = Scrubber(["Truong Thi Hong Nhung"])  # the dossier's ChuHoSo, as some systems store it
    text = f"của {NAME_GIVEN}, {NAME_GIVEN.upper()}, {unicodedata.normalize('NFD', NAME_GIVEN)} và Đỗ Văn Tư"
    assert s(text) == f"của {NAME}, {NAME}, {NAME} và Đỗ Văn Tư"
    assert Scrubber(["Đỗ Văn Tư"])("gặp Do Van Tu và đỗ văn tư") == f"gặp {NAME} và {NAME}"
