"""Memo tables for the simulator's encoders: values that repeat are encoded once.

Unit codes, actor ids, step codes, reasons, statuses, small integers: a few
thousand distinct values account for almost every field of every event, so
the generated encoders look their encoding up (one dict subscript) instead of
computing it. Each table computes a missing entry itself (``__missing__``) and
empties itself when it grows past a bound, so memory stays flat whatever the
input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from schemas.codec import zigzag

LIMIT: Final = 100_000
_SMALL: Final = tuple(bytes((((n << 1) ^ (n >> 63)) & 0xFF,)) for n in range(64))


def zz(n: int) -> bytes:
    """Avro long (:func:`schemas.codec.zigzag`), the 64 smallest by table."""
    return _SMALL[n] if 0 <= n < 64 else zigzag(n)


#: 14-bit varint groups of a timestamp of this century: three continued, one final (see :func:`zz_ts`).
T14: Final = tuple(bytes((i & 127 | 128, i >> 7 | 128)) for i in range(16384))
Z14: Final = tuple(bytes((i & 127 | 128, i >> 7)) for i in range(16384))
TS_LO: Final = 0x1000000000000  # 2^48 µs: 1978
TS_HI: Final = 0x80000000000000  # 2^55 µs: far future


def zz_ts(n: int) -> bytes:
    """:func:`zz` by table for timestamps in [2^48, 2^55) µs, whose varint is 8 bytes."""
    if TS_LO <= n < TS_HI:
        w = n << 1
        return T14[w & 16383] + T14[w >> 14 & 16383] + T14[w >> 28 & 16383] + Z14[w >> 42]
    return zz(n)


class Memo(dict[Any, Any]):
    """A dict that computes (and keeps) what it lacks; ``None`` maps to ``none``."""

    def __init__(self, compute: Callable[[Any], Any], none: Any = None) -> None:
        super().__init__()
        self._compute = compute
        self._none = none
        if none is not None:
            self[None] = none

    def __missing__(self, key: Any) -> Any:
        if len(self) > LIMIT:
            self.clear()
            if self._none is not None:
                self[None] = self._none
        value = self[key] = self._compute(key)
        return value


def _avro_string(s: str) -> bytes:
    raw = s.encode()
    return zz(len(raw)) + raw


#: Avro encodings: a string, an int/long, and their ``["null", …]`` union forms (None → null branch).
STRING: Final = Memo(_avro_string)
LONG: Final = Memo(zz)
OPT_STRING: Final = Memo(lambda s: b"\x02" + _avro_string(s), b"\x00")
OPT_LONG: Final = Memo(lambda n: b"\x02" + zz(n), b"\x00")
OPT_BOOL: Final = Memo(lambda v: b"\x02\x01" if v else b"\x02\x00", b"\x00")


def canonical_piece(name: str, text: Callable[[Any], str]) -> Memo:
    """``name:len:value`` of one field by value (``len`` in UTF-8 bytes); absent (None) → ''."""

    def compute(value: Any) -> str:
        t = text(value)
        return f"{name}:{len(t.encode())}:{t}"

    return Memo(compute, "")


def enc_str(s: str) -> bytes:
    encoded: bytes = STRING[s]
    return encoded


__all__ = ["LONG", "OPT_BOOL", "OPT_LONG", "OPT_STRING", "STRING", "Memo", "canonical_piece", "enc_str", "zz", "zz_ts"]
