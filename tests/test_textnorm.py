"""One definition of "empty" text and of the NFC normal form, in Python and in ClickHouse, agreeing."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import pytest

from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from schemas.textnorm import BLANK, BLANK_RANGES, VISIBLE_FORMAT, blank_sql, is_blank, normalise, normalised_sql

REASON = "Hồ sơ không đủ điều kiện"
NFD = unicodedata.normalize("NFD", REASON)

#: (text, normalise(text)): blank exactly when the second is "".
TABLE: list[tuple[str, str]] = [
    ("", ""),
    ("\u00a0\u00a0", ""),  # what a web form's &nbsp;&nbsp; leaves
    ("\u200b\ufeff", ""),  # zero-width space + BOM
    ("\u00ad", ""),  # soft hyphen alone
    ("\u3000\u3000", ""),  # ideographic spaces
    ("\u200c\u200d\u2060", ""),  # ZWNJ, ZWJ, word joiner
    (" \t\r\n\x00\x85", ""),  # ASCII whitespace, NUL, NEL
    ("\u2028\u2029\u202f\u205f\u1680", ""),
    ("\u3164\u2800\ufe0f\U000e0041", ""),  # Hangul filler, Braille blank, variation selector, tag A
    (REASON, REASON),
    (NFD, REASON),
    (f"\u00a0 {NFD}\u200b\n", REASON),
    ("Rút\u00a0hồ\u200bsơ", "Rút\u00a0hồ\u200bsơ"),  # inside the text, nothing is removed
    ("\ufeffcv-01\u00a0", "cv-01"),
    ("\u0301", "\u0301"),  # a lone combining accent is a character, not a blank
    ("\u0600", "\u0600"),  # Arabic number sign: a format character drawn as a visible mark
    ("-", "-"),
    ("0", "0"),
    ("Đ", "Đ"),
]


def test_normalise_and_is_blank_on_the_table() -> None:
    for text, want in TABLE:
        assert normalise(text) == want, ascii(text)
        assert is_blank(text) is (want == ""), ascii(text)
    assert is_blank(None)


def test_nfd_vietnamese_equals_its_nfc_form() -> None:
    assert NFD != REASON
    assert normalise(NFD) == REASON
    assert normalise(normalise(NFD)) == normalise(NFD)


def test_blank_is_every_space_control_and_invisible_format_character() -> None:
    """A newer Unicode adding such a character fails here: add it to BLANK_RANGES (or VISIBLE_FORMAT)."""
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Zs", "Zl", "Zp", "Cc") or (category == "Cf" and code not in VISIBLE_FORMAT):
            assert char in BLANK, f"U+{code:04X} ({category})"
        if category not in ("Cs",):
            # NFC never turns a blank character into a visible one or back, so "all blank" and
            # "blank after NFC" (what the SQL and the Python check) are the same thing.
            assert all(c in BLANK for c in unicodedata.normalize("NFC", char)) is (char in BLANK), f"U+{code:04X}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with opened_store(Settings(data_dir=tmp_path_factory.mktemp("textnorm")), role="writer", serve=False) as s:
        yield s


def _sql_verdicts(store: Store, texts: list[str]) -> tuple[list[bool], list[str]]:
    sql = (
        f"SELECT arrayMap(x -> {blank_sql('x')}, {{xs:Array(String)}}), "
        f"arrayMap(x -> {normalised_sql('x')}, {{xs:Array(String)}})"
    )
    blanks, normal = store.query(sql, {"xs": texts}).rows[0]
    return [bool(b) for b in blanks], list(normal)


def test_sql_agrees_with_python_on_the_table(store: Store) -> None:
    texts = [text for text, _ in TABLE]
    blanks, normal = _sql_verdicts(store, texts)
    assert blanks == [is_blank(t) for t in texts]
    assert normal == [normalise(t) for t in texts]


def test_sql_agrees_on_every_blank_character_and_its_neighbours(store: Store) -> None:
    codes = {c for low, high in BLANK_RANGES for c in range(low, high + 1)}
    codes |= {c for low, high in BLANK_RANGES for c in (low - 1, high + 1) if c >= 0} | VISIBLE_FORMAT
    texts = [chr(c) for c in sorted(codes)] + [f"x{chr(c)}y" for c in sorted(codes)]
    blanks, _ = _sql_verdicts(store, texts)
    assert [t for t, b in zip(texts, blanks, strict=True) if b != is_blank(t)] == []


def test_sql_null_is_blank(store: Store) -> None:
    nothing = "CAST(NULL, 'Nullable(String)')"
    row = store.query(f"SELECT {blank_sql(nothing)}, {normalised_sql(nothing)}").rows[0]
    assert row == (True, None)


def test_blank_sql_carries_no_invisible_character() -> None:
    assert blank_sql("reason").isascii()
    assert normalised_sql("reason").isascii()
