"""Hand-specialised Avro body encoder and hash-chain canonical form for the released schema.

fastavro spends ~35 µs on one event of this 46-field schema and the generic
canonical encoding another 10-20 µs; the simulator's target (100k events/s on
two cores) leaves ~20 µs for everything. So both encoders are generated, once
per event type, as straight-line Python from the released schema and
:data:`schemas.events.EVENT_FIELDS`: fields a type can never carry become
constant bytes, the rest one expression each. Tests pin the output byte for
byte to fastavro (:func:`schemas.codec.encode_record`) and to
:func:`schemas.hashchain.canonical`.

The encoders take the simulator's *raw* events: dicts holding only present
fields, timestamps as integer microseconds since the epoch (UTC), enums as
their symbols, ``n_attachments`` always set.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterable
from typing import IO, Any, Final

from schemas.codec import MAGIC
from schemas.events import ARRAY_FIELDS, CONTEXT_FIELDS, ENVELOPE_FIELDS, EVENT_FIELDS, EventType
from schemas.hashchain import HASHED_FIELDS
from schemas.registry import current_schema

RawEvent = dict[str, Any]

_SMALL: Final = tuple(bytes((((n << 1) ^ (n >> 63)) & 0xFF,)) for n in range(64))


def zz(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint."""
    if 0 <= n < 64:
        return _SMALL[n]
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zz_ts(n: int) -> bytes:
    """:func:`zz` unrolled for timestamps of this century (2^48 <= n < 2^55 µs: 8 varint bytes)."""
    if 0x1000000000000 <= n < 0x80000000000000:
        n <<= 1
        return bytes(
            (
                n & 127 | 128,
                n >> 7 & 127 | 128,
                n >> 14 & 127 | 128,
                n >> 21 & 127 | 128,
                n >> 28 & 127 | 128,
                n >> 35 & 127 | 128,
                n >> 42 & 127 | 128,
                n >> 49,
            )
        )
    return zz(n)


_STR_CACHE: dict[str, bytes] = {}


def enc_str(s: str) -> bytes:
    """Length-prefixed UTF-8; memoised (ids, unit and procedure codes repeat a lot)."""
    cached = _STR_CACHE.get(s)
    if cached is None:
        raw = s.encode()
        cached = zz(len(raw)) + raw
        if len(_STR_CACHE) > 200_000:
            _STR_CACHE.clear()
        _STR_CACHE[s] = cached
    return cached


def _array(items: Iterable[str]) -> bytes:
    items = list(items)
    if not items:
        return b"\x00"
    return zz(len(items)) + b"".join(enc_str(i) for i in items) + b"\x00"


def _schema_fields() -> list[tuple[str, Any]]:
    return [(f["name"], f["type"]) for f in current_schema().source["fields"]]


def _enum_symbols() -> dict[str, list[str]]:
    symbols: dict[str, list[str]] = {}
    for _, ftype in _schema_fields():
        for t in ftype if isinstance(ftype, list) else [ftype]:
            if isinstance(t, dict) and t.get("type") == "enum":
                symbols[t["name"]] = t["symbols"]
    return symbols


def _body_expr(name: str, ftype: Any, symbols: dict[str, list[str]], env: dict[str, Any], required: bool) -> str:
    """A Python expression encoding field ``name`` of raw event ``e``."""
    nullable = isinstance(ftype, list)
    base = ftype[1] if nullable else ftype
    if (isinstance(base, dict) and base.get("type") == "enum") or (isinstance(base, str) and base in symbols):
        enum_name = base["name"] if isinstance(base, dict) else base
        table = {s: zz(i) for i, s in enumerate(symbols[enum_name])}
        env[f"T_{name}"] = table
        value = f"T_{name}[{{v}}]"
    elif isinstance(base, dict) and base.get("type") == "array":
        value = "A({v})"
    elif (isinstance(base, dict) and base.get("type") == "fixed") or base == "Sha256":
        value = "{v}"
    elif base == "string" or (isinstance(base, dict) and base.get("type") == "string"):
        value = "S({v})"
    elif base == "boolean":
        value = "(b'\\x01' if {v} else b'\\x00')"
    elif isinstance(base, dict) and base.get("logicalType") == "timestamp-micros":
        value = "TS({v})"
    else:  # int, long, timestamp-micros
        value = "L({v})"
    if name in ARRAY_FIELDS:
        return f"A(e.get('{name}', ()))"
    if not nullable:
        if name == "n_attachments":
            return value.format(v="e.get('n_attachments', 0)")
        return value.format(v=f"e['{name}']")
    if required:
        return "b'\\x02' + " + value.format(v=f"e['{name}']")
    return f"(b'\\x00' if (v := e.get('{name}')) is None else b'\\x02' + " + value.format(v="v") + ")"


def _compile_body(event_type: EventType, symbols: dict[str, list[str]]) -> Callable[[RawEvent], bytes]:
    rule = EVENT_FIELDS[event_type]
    env: dict[str, Any] = {"S": enc_str, "L": zz, "A": _array, "TS": zz_ts}
    parts: list[str] = []
    const = b""
    for name, ftype in _schema_fields():
        carried = name in ENVELOPE_FIELDS or name in CONTEXT_FIELDS or name in rule.allowed
        if name in _MID[1:]:
            continue
        if name in _PRECOMPUTED_BODY:
            if const:
                parts.append(repr(const))
                const = b""
            parts.append(f"e[{_PRECOMPUTED_BODY[name]!r}]")
            continue
        if not carried:
            const += b"\x00"  # null union branch, empty array, or n_attachments 0
            continue
        if const:
            parts.append(repr(const))
            const = b""
        parts.append(_body_expr(name, ftype, symbols, env, required=name in rule.required))
    if const:
        parts.append(repr(const))
    src = "def enc(e):\n    return b''.join((" + ", ".join(parts) + ",))\n"
    exec(compile(src, f"<avro body {event_type.value}>", "exec"), env)
    fn: Callable[[RawEvent], bytes] = env["enc"]
    return fn


_TS: Final = frozenset({"occurred_at", "recorded_at", "due_at", "step_due_at", "new_due_at"})
_INTS: Final = frozenset(
    {"seq", "status", "n_attachments", "step_budget_minutes", "time_limit_value", "amount_vnd", "rating", "ref_seq"}
)
_BOOLS: Final = frozenset({"clock_stopped", "result_electronic"})
#: Free text that may hold non-ASCII characters: its length must be counted in UTF-8 bytes.
_TEXT: Final = frozenset({"reason", "override_old", "override_new", "result_ref", "procedure_version", "step_code"})


#: Per-dossier constants, encoded once by :func:`prepare` (body: contiguous; canonical: name-ordered runs).
_MID: Final = ("procedure_code", "rule_set", "applicant_ref", "applicant_kind", "channel")
_PRECOMPUTED_BODY: Final = {"dossier_id": "_d", "procedure_code": "_m"}
_CANON_RUNS: Final = {
    "applicant_kind": ("_ca", ("applicant_kind", "applicant_ref", "channel")),
    "dossier_id": ("_cd", ("dossier_id",)),
    "procedure_code": ("_cp", ("procedure_code", "procedure_version")),
    "rule_set": ("_cr", ("rule_set",)),
}
_CANON_SKIP: Final = frozenset({"applicant_ref", "channel", "procedure_version"})


def prepare(e: RawEvent) -> RawEvent:
    """Add the pre-encoded per-dossier constants the encoders read (call again after changing one)."""
    kinds, channels = _SYMBOLS["ApplicantKind"], _SYMBOLS["Channel"]
    e["_d"] = enc_str(e["dossier_id"])
    e["_m"] = b"".join(
        (
            enc_str(e["procedure_code"]),
            enc_str(e["rule_set"]),
            enc_str(e["applicant_ref"]),
            zz(kinds.index(e["applicant_kind"])),
            zz(channels.index(e["channel"])),
        )
    )
    for key, names in _CANON_RUNS.values():
        e[key] = "".join(f"{n}:{len(str(e[n]).encode())}:{e[n]}" for n in names if e.get(n) is not None)
    return e


def _canon_piece(name: str, required: bool) -> str:
    """An f-string fragment for one field (the simulator's identifiers are ASCII: len() counts bytes)."""
    if name in ARRAY_FIELDS:
        return f"{{AR('{name}', e.get('{name}'))}}"
    if name == "prev_hash":
        return "prev_hash:64:{e['prev_hash'].hex()}"
    if name in _BOOLS:
        text = "('true' if {v} else 'false')"
    elif name in _TS or name in _INTS:
        text = "str({v})"
    else:
        text = "{v}"
    size = "len(t.encode())" if name in _TEXT else "len(t)"
    if name == "n_attachments":
        return "n_attachments:{len(t := str(e.get('n_attachments', 0)))}:{t}"
    if required:
        return f"{name}:{{{size.replace('t', '(t := ' + text.format(v=f'e[{name!r}]') + ')', 1)}}}:{{t}}"
    inner = f"'{name}:%d:%s' % ({size}, t) if (t := " + text.format(v="v") + ") is not None else ''"
    return f"{{'' if (v := e.get('{name}')) is None else ({inner})}}"


def _array_text(name: str, items: Any) -> str:
    if not items:
        return ""
    t = "".join(f"{len(x.encode())}:{x}" for x in items)
    return f"{name}:{len(t.encode())}:{t}"


def _compile_canonical(event_type: EventType) -> Callable[[RawEvent], bytes]:
    rule = EVENT_FIELDS[event_type]
    pieces = []
    for name in HASHED_FIELDS:
        if name in _CANON_SKIP:
            continue
        if name in _CANON_RUNS:
            pieces.append(f"{{e[{_CANON_RUNS[name][0]!r}]}}")
            continue
        if not (name in ENVELOPE_FIELDS or name in CONTEXT_FIELDS or name in rule.allowed):
            continue
        required = name in ENVELOPE_FIELDS or (name in rule.required and name not in ARRAY_FIELDS)
        pieces.append(_canon_piece(name, required))
    src = "def canon(e):\n    return f" + repr("".join(pieces)).replace("\\'", "'") + ".encode()\n"
    env: dict[str, Any] = {"AR": _array_text}
    exec(compile(src, f"<canonical {event_type.value}>", "exec"), env)
    fn: Callable[[RawEvent], bytes] = env["canon"]
    return fn


_SYMBOLS: Final = _enum_symbols()
BODY: Final[dict[str, Callable[[RawEvent], bytes]]] = {
    t.value: _compile_body(t, _SYMBOLS) for t in EventType if t is not EventType.UNKNOWN
}
CANONICAL: Final[dict[str, Callable[[RawEvent], bytes]]] = {
    t.value: _compile_canonical(t) for t in EventType if t is not EventType.UNKNOWN
}
SINGLE_OBJECT_HEADER: Final = MAGIC + current_schema().fingerprint_bytes
_ZERO: Final = bytes(32)


def encode_body(e: RawEvent) -> bytes:
    return BODY[e["event_type"]](e)


def canonical(e: RawEvent) -> bytes:
    return CANONICAL[e["event_type"]](e)


def seal_raw(events: list[RawEvent], prev: bytes = _ZERO) -> bytes:
    """Set prev_hash and hash along a dossier's raw events (in seq order); returns the last hash."""
    sha = hashlib.sha256
    for e in events:
        e["prev_hash"] = prev
        prev = e["hash"] = sha(CANONICAL[e["event_type"]](e)).digest()
    return prev


class OcfWriter:
    """An Avro object container file with the released schema, written block by block.

    Same layout as ``fastavro.writer(fo, schema.source, …, sync_marker=…, sync_interval=…)``:
    a block is closed after the record that brings it to ``sync_interval`` bytes.
    """

    def __init__(self, fo: IO[bytes], sync_marker: bytes, *, codec: str = "null", sync_interval: int = 64_000) -> None:
        if len(sync_marker) != 16:
            raise ValueError("the sync marker must be 16 bytes")
        if codec not in ("null", "deflate"):
            raise ValueError(f"codec {codec!r}: only null and deflate are supported")
        self._fo = fo
        self._sync = sync_marker
        self._codec = codec
        self._interval = sync_interval
        self._parts: list[bytes] = []
        self._size = 0
        self._count = 0
        meta = {"avro.codec": codec.encode(), "avro.schema": json.dumps(current_schema().source).encode()}
        header = [b"Obj\x01", zz(len(meta))]
        for key, value in meta.items():
            header += [enc_str(key), zz(len(value)), value]
        header += [b"\x00", sync_marker]
        fo.write(b"".join(header))

    def write_body(self, body: bytes) -> None:
        self._parts.append(body)
        self._size += len(body)
        self._count += 1
        if self._size >= self._interval:
            self.flush()

    def flush(self) -> None:
        if not self._count:
            return
        data = b"".join(self._parts)
        if self._codec == "deflate":
            data = zlib.compress(data, 1)[2:-1]
        self._fo.write(b"".join((zz(self._count), zz(len(data)), data, self._sync)))
        self._parts, self._size, self._count = [], 0, 0
