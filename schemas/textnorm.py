"""When free text counts as empty, and the one normal form text is compared in.

A web form's ``&nbsp;``, a zero-width space pasted from a chat, a BOM left by
a spreadsheet export: a reason, name or code made only of such characters says
nothing, and must count as empty in validation, in the audit rules' SQL and in
reports alike. :func:`normalise` (Python) and :func:`blank_sql` /
:func:`normalised_sql` (ClickHouse) are built from one character list,
:data:`BLANK_RANGES`, so the two sides cannot disagree; a test runs both over
the same inputs.

Vietnamese text is compared in NFC: "ồ" typed as o + combining circumflex +
combining grave (NFD, as some macOS and Java exports write it) is the same
reason as the precomposed "ồ".
"""

from __future__ import annotations

import unicodedata
from typing import Final

#: Inclusive code-point ranges that count as nothing at all:
#: - every control character (Cc: C0, DEL, C1; tab, CR and LF among them);
#: - every space separator (Zs: U+0020, NBSP U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F,
#:   ideographic space U+3000) and the line/paragraph separators U+2028/U+2029 (Zl, Zp);
#: - every format character (Cf: soft hyphen U+00AD, ZWSP/ZWNJ/ZWJ U+200B-U+200D, LRM/RLM,
#:   bidi embeddings and isolates, word joiner U+2060, BOM U+FEFF, tags, ...) except the
#:   prepended concatenation marks (:data:`VISIBLE_FORMAT`), which are drawn as visible signs;
#: - the rest of Unicode's Default_Ignorable_Code_Point set, which renders as nothing: combining
#:   grapheme joiner U+034F, Hangul fillers U+115F/U+1160/U+3164/U+FFA0, Khmer inherent vowels
#:   U+17B4/U+17B5, Mongolian variation selectors, variation selectors U+FE00-U+FE0F and
#:   U+E0100-U+E01EF (inside U+E0000-U+E0FFF), reserved U+2065 and U+FFF0-U+FFF8;
#: - Braille pattern blank U+2800, an "empty" glyph used to get past "required" checks.
BLANK_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (0x0000, 0x0020),
    (0x007F, 0x00A0),
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x1680, 0x1680),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x206F),
    (0x2800, 0x2800),
    (0x3000, 0x3000),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

#: Format characters (Cf) that are *not* blank: Arabic and Kaithi number signs and the like,
#: drawn as a visible mark over the digits that follow.
VISIBLE_FORMAT: Final = frozenset({*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD})

BLANK: Final = frozenset(chr(c) for low, high in BLANK_RANGES for c in range(low, high + 1))


def normalise(text: str) -> str:
    """``text`` in NFC, without the blank characters (:data:`BLANK_RANGES`) at either end."""
    text = unicodedata.normalize("NFC", text)
    start, end = 0, len(text)
    while start < end and text[start] in BLANK:
        start += 1
    while end > start and text[end - 1] in BLANK:
        end -= 1
    return text[start:end]


def is_blank(text: str | None) -> bool:
    """True for None, "" and text of blank characters only: a reason, name or code that says nothing."""
    return text is None or not normalise(text)


def _character_class() -> str:
    # RE2 syntax, ASCII only: \x{HHHH} escapes, so the SQL carries no invisible characters itself.
    parts = (f"\\x{{{low:X}}}" if low == high else f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in BLANK_RANGES)
    return "[" + "".join(parts) + "]"


#: The character class as a ClickHouse string literal's content (backslashes doubled).
_SQL_CLASS: Final = _character_class().replace("\\", "\\\\")


def blank_sql(column: str) -> str:
    """A ClickHouse boolean, true exactly when :func:`is_blank` is true of ``column`` (NULL is blank).

    ``column`` is an expression of this code base (a column name, ``e_reason[i]``), never input.
    ClickHouse's ``empty`` and ``trimBoth`` know neither NBSP nor the zero-width characters.
    """
    return f"ifNull(match({column}, '^{_SQL_CLASS}*$'), true)"


def normalised_sql(column: str) -> str:
    """A ClickHouse expression equal to :func:`normalise` of ``column`` (NULL stays NULL)."""
    return f"replaceRegexpAll(normalizeUTF8NFC({column}), '^{_SQL_CLASS}+|{_SQL_CLASS}+$', '')"
