"""Scrubbing personal data out of free text before it is sealed into the log.

An imported ``NoiDungXuLy`` is written by officials and sometimes names the
citizen ("bản sao CCCD số … của …", "đã gọi 09…"). Once an event is
hash-chained it cannot be edited, and every export repeats it, so the text is
scrubbed first. Each value is replaced by a marker saying what was there.

A number matches only as a whole: no letter, digit, ``.``, ``-``, ``+``,
``/`` or ``@`` directly before it, none of them (nor ``.`` and a letter or
digit) directly after. In this order:

* ``[email]``: an e-mail address, ``local@domain.tld``;
* ``[số định danh]``: the applicant's own ``SoGiayToChuHoSo`` as written; a
  citizen ID (CCCD, personal ID number): 12 digits, or 0 and 11 digits written
  in groups of three with single spaces or dots (``079 188 012 345``); an old
  ID card (CMND): 9 digits. Not a number followed by a currency (``đồng``,
  ``đ``, ``VNĐ``, ``VND``): amounts stay;
* ``[hộ chiếu]``: a passport number, one or two capital letters and 7 digits
  (``C1234567``, ``N1234567``);
* ``[số điện thoại]``: a phone number, ``0`` and 9 or 10 digits (mobile,
  landline), or ``+84`` / ``(+84)`` / ``0084`` and the 9 or 10 digits after the
  0, with single spaces, dots or dashes between digit groups (``0909 123 456``,
  ``028.3829.1234``, ``+84 909-123-456``); ``84`` and 9 or 10 digits written
  together (``84909123456``);
* ``[tên người nộp]``: each of the applicant's names given (``ChuHoSo``, the
  ``NguoiXuLy`` of the citizen's own rows), as whole words, in any case, with
  or without diacritics (also a name given without them, written with them in
  the text), spaces between words as they come. A name of one word is not
  scrubbed: it would take ordinary words with it.

Kept as they are, by construction: dossier codes (``000.00.31.H29-240115-0001``),
procedure and component codes (``1.001776``, ``2.003123.TP01``), dates
(``2024-02-07``, ``07/02/2024``, ``20240207083000``), amounts (``1.250.000
đồng``, ``250000000 đồng``) and document numbers (``15/2024/QĐ-UBND``).
``tests/test_scrub.py`` holds made-up values of each kind, and of each kind
that must stay.

This is a net for the common forms, not a proof of anonymity: a name the
export does not give, an address, or a number written in words passes.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

EMAIL: Final = "[email]"
IDENTITY: Final = "[số định danh]"
PASSPORT: Final = "[hộ chiếu]"
PHONE: Final = "[số điện thoại]"
NAME: Final = "[tên người nộp]"

_BEFORE: Final = r"(?<![\w.\-+/@])"
_AFTER: Final = r"(?![\w\-+/@]|\.\w)"
_CURRENCY: Final = r"(?!\s*(?:đồng|đ|vnđ|vnd)(?!\w))"

#: The lookbehind starts a match only where a run of local-part characters starts: without it a long run with no
#: ``@`` was scanned again from each of its characters (70,000 of them took 40 s; now linear).
_EMAIL_RE: Final = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}", re.UNICODE)
_IDENTITY_RE: Final = re.compile(
    rf"{_BEFORE}(?:\d{{12}}|0\d\d(?:[ .]\d{{3}}){{3}}|\d{{9}}){_AFTER}{_CURRENCY}", re.IGNORECASE
)
_PASSPORT_RE: Final = re.compile(rf"{_BEFORE}[A-Z]{{1,2}}\d{{7}}{_AFTER}")
_GROUPS: Final = r"\d(?:[ .\-]?\d){%d}"
_PHONE_RE: Final = re.compile(
    rf"{_BEFORE}(?:0(?:{_GROUPS % 8}|{_GROUPS % 9})"
    rf"|(?:\(\+84\)|\+84|0084)[ .\-]?(?:{_GROUPS % 8}|{_GROUPS % 9})"
    rf"|84[235789]\d{{7,8}}){_AFTER}"
)


def strip_marks(text: str) -> str:
    """``text`` without diacritics (đ → d), for matching a name written without them."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@functools.lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    if c in "đĐ":
        return "d" if c == "đ" else "D"
    base = "".join(x for x in unicodedata.normalize("NFD", c) if not unicodedata.combining(x))
    return base if len(base) == 1 else c


def _fold(text: str) -> str:
    """``text`` (NFC) without diacritics, one character for one, so that a match's span is the original's."""
    return "".join(map(_fold_char, text))


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """Patterns of the names without diacritics, matched against the text without them (:func:`_fold`)."""
    patterns: list[re.Pattern[str]] = []
    variants: set[tuple[str, ...]] = set()
    for name in names:
        words = tuple(_fold(unicodedata.normalize("NFC", name)).split())
        if len(words) < 2:
            continue
        variants.add(words)
    for words in sorted(variants, key=lambda w: (-len(" ".join(w)), w)):
        body = r"\s+".join(re.escape(w) for w in words)
        patterns.append(re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE))
    return patterns


class Scrubber:
    """Scrubs the texts of one dossier: the fixed patterns plus the names of its applicant."""

    def __init__(self, names: Iterable[str] = (), identities: Iterable[str] = ()) -> None:
        self._names = _name_patterns(names)
        numbers = sorted({n for n in (i.strip() for i in identities) if len(n) >= 6}, key=lambda n: (-len(n), n))
        self._identities = [re.compile(rf"(?<!\w){re.escape(n)}(?!\w)", re.IGNORECASE) for n in numbers]

    def __call__(self, text: str) -> str:
        if not text:
            return text
        out = unicodedata.normalize("NFC", text)
        out = _EMAIL_RE.sub(EMAIL, out)
        for number in self._identities:
            out = number.sub(IDENTITY, out)
        out = _IDENTITY_RE.sub(IDENTITY, out)
        out = _PASSPORT_RE.sub(PASSPORT, out)
        out = _PHONE_RE.sub(PHONE, out)
        for pattern in self._names:
            folded = _fold(out)
            pieces: list[str] = []
            last = 0
            for match in pattern.finditer(folded):
                pieces += [out[last : match.start()], NAME]
                last = match.end()
            out = "".join(pieces) + out[last:] if pieces else out
        return out


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with e-mail addresses, ID, passport and phone numbers and the ``names`` replaced by markers."""
    return Scrubber(names)(text)
