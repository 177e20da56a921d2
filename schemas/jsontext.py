"""JSON read from files someone else wrote: every way it can be hostile is one :class:`JsonTextError`.

``json.loads`` raises more than ``JSONDecodeError`` on hostile text: ``RecursionError`` on arrays nested a
few thousand deep, ``ValueError`` on an integer of more than 4,300 digits (CPython's limit on int/str
conversion), and it accepts ``NaN``, ``Infinity`` and ``"\\ud800"``, a lone surrogate no UTF-8 encoder can
write back (the hash chain, UUIDv5 and Avro then fail far from the line). Each reader of input files goes through
:func:`loads`, so that each of these is a sentence naming the column, not a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Final

#: A ``\\uD800``-``\\uDFFF`` escape: only text with one can decode to a lone surrogate (UTF-8 input cannot).
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonTextError(ValueError):
    """Text that is not JSON this project reads; the message says why (with the column where there is one)."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno  # the line of a syntax error, for a multi-line document


def _no_constant(name: str) -> Any:
    raise JsonTextError(f"not JSON: {name} is not a number JSON allows")


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses hostile text with :class:`JsonTextError` (see the module docstring)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except JsonTextError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"not valid JSON: {exc.msg} at column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise JsonTextError("not JSON this reads: arrays or objects nested too deep") from None
    except ValueError:  # CPython's limit on integer digits (sys.get_int_max_str_digits)
        limit = sys.get_int_max_str_digits()
        raise JsonTextError(f"not JSON this reads: a number too long (more than {limit:,} digits)") from None
    except UnicodeDecodeError as exc:  # bytes given
        raise JsonTextError(f"not UTF-8 text (byte {exc.start + 1})") from None
    pattern = _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("utf-8", "replace"))
    if pattern is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonTextError(
                f"not text: {pattern.group(0)} at column {pattern.start() + 1} is half of a UTF-16 pair (a lone "
                "surrogate), which no UTF-8 file can hold"
            ) from None
    return value
