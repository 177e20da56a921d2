"""Hand-specialised Avro body encoder for the released schema, and the OCF writer.

fastavro spends ~35 µs on one event of this 46-field schema; the simulator's
target (100k events/s on two cores) leaves ~20 µs for everything, hashing
included. So the encoder is generated, once per event type, as one
straight-line ``b"".join`` from the released schema and
:data:`schemas.events.EVENT_FIELDS`: the event type and every field the type
can never carry are constant bytes, repeated values (codes, actors, small
integers) come from :mod:`producers.simulator.memo` tables, a timestamp is
four table lookups. The hash chain's canonical form is generated the same way
in :mod:`producers.simulator.canonform`. Tests pin both byte for byte to
fastavro (:func:`schemas.codec.encode_record`) and to
:func:`schemas.hashchain.canonical`.

The encoders take the simulator's *raw* events: dicts holding only present
fields, timestamps as integer microseconds since the epoch (UTC), enums as
their symbols, arrays as lists, plus the per-dossier runs :func:`prepare` adds.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from typing import IO, Any, Final

from producers.simulator.canonform import CANONICAL, canonical, seal_raw
from producers.simulator.memo import (
    LONG,
    OPT_BOOL,
    OPT_LONG,
    OPT_STRING,
    STRING,
    T14,
    TS_HI,
    TS_LO,
    Z14,
    Memo,
    zz,
    zz_ts,
)
from schemas.codec import MAGIC
from schemas.events import ARRAY_FIELDS, CONTEXT_FIELDS, ENVELOPE_FIELDS, EVENT_FIELDS, UNKNOWABLE_FACTS, EventType
from schemas.registry import current_schema

RawEvent = dict[str, Any]


def _array(items: tuple[str, ...]) -> bytes:
    if not items:
        return b"\x00"
    return b"".join([LONG[len(items)], *[STRING[i] for i in items], b"\x00"])


#: Arrays of document codes repeat (a procedure's components): memoised by their tuple.
ARRAY: Final = Memo(_array)


def _schema_fields() -> list[tuple[str, Any]]:
    return [(f["name"], f["type"]) for f in current_schema().source["fields"]]


def _enum_symbols() -> dict[str, list[str]]:
    symbols: dict[str, list[str]] = {}
    for _, ftype in _schema_fields():
        for t in ftype if isinstance(ftype, list) else [ftype]:
            if isinstance(t, dict) and t.get("type") == "enum":
                symbols[t["name"]] = t["symbols"]
    return symbols


def _ts(v: str, union: bool) -> str:
    """A timestamp's varint (after the union branch byte): four table lookups in this century."""
    branch = "b'\\x02' + " if union else ""
    fast = f"{branch}T14[(w := {v} << 1) & 16383] + T14[w >> 14 & 16383] + T14[w >> 28 & 16383] + Z14[w >> 42]"
    return f"({fast} if TS_LO <= {v} < TS_HI else {branch}ZZ({v}))"


def _body_expr(name: str, ftype: Any, symbols: dict[str, list[str]], env: dict[str, Any], required: bool) -> str:
    """A Python expression encoding field ``name`` of raw event ``e``."""
    nullable = isinstance(ftype, list)
    base = ftype[1] if nullable else ftype
    get = f"e[{name!r}]" if required or not nullable else f"e.get({name!r})"
    if name in ARRAY_FIELDS:
        return f"A[tuple(e.get({name!r}) or ())]"
    if name == "n_attachments":
        return "L[e.get('n_attachments', 0)]"
    if (isinstance(base, dict) and base.get("type") == "enum") or (isinstance(base, str) and base in symbols):
        enum_name = base["name"] if isinstance(base, dict) else base
        table: dict[Any, bytes] = {s: zz(i) for i, s in enumerate(symbols[enum_name])}
        if nullable:
            table = {s: b"\x02" + code for s, code in table.items()}
            table[None] = b"\x00"
        env[f"T_{name}"] = table
        return f"T_{name}[{get}]"
    if (isinstance(base, dict) and base.get("type") == "fixed") or base == "Sha256":
        return get
    if base == "string" or (isinstance(base, dict) and base.get("type") == "string"):
        if name == "event_id":  # unique per event: not memoised
            return "L[len(y := e['event_id'].encode())] + y"
        return f"{'OS' if nullable else 'S'}[{get}]"
    if base == "boolean":
        return f"OB[{get}]" if nullable else f"(b'\\x01' if {get} else b'\\x00')"
    if isinstance(base, dict) and base.get("logicalType") == "timestamp-micros":
        if nullable:
            return f"(b'\\x00' if (v := {get}) is None else {_ts('v', union=True)})"
        return _ts(get, union=False)
    return f"{'OL' if nullable else 'L'}[{get}]"  # int, long


def _compile_body(event_type: EventType, symbols: dict[str, list[str]]) -> Callable[[RawEvent], bytes]:
    rule = EVENT_FIELDS[event_type]
    env: dict[str, Any] = {
        "S": STRING,
        "OS": OPT_STRING,
        "L": LONG,
        "OL": OPT_LONG,
        "OB": OPT_BOOL,
        "A": ARRAY,
        "ZZ": zz,
        "T14": T14,
        "Z14": Z14,
        "TS_LO": TS_LO,
        "TS_HI": TS_HI,
    }
    parts: list[str] = []
    const = b""
    for name, ftype in _schema_fields():
        carried = name in ENVELOPE_FIELDS or name in CONTEXT_FIELDS or name in rule.allowed
        if name in _MID[1:]:
            continue
        if name == "event_type":
            const += zz(symbols["EventType"].index(event_type.value))
            continue
        if name in _PRECOMPUTED_BODY or carried:
            if const:
                parts.append(repr(const))
                const = b""
            if name in _PRECOMPUTED_BODY:
                parts.append(f"e[{_PRECOMPUTED_BODY[name]!r}]")
            else:
                required = name in rule.required and name not in UNKNOWABLE_FACTS  # unknown: absent, though required
                parts.append(_body_expr(name, ftype, symbols, env, required=required))
            continue
        const += b"\x00"  # null union branch, empty array, or n_attachments 0
    if const:
        parts.append(repr(const))
    src = "def enc(e):\n    return b''.join((" + ", ".join(parts) + ",))\n"
    exec(compile(src, f"<avro body {event_type.value}>", "exec"), env)
    fn: Callable[[RawEvent], bytes] = env["enc"]
    return fn


#: Per-dossier constants, encoded once by :func:`prepare` (body: contiguous; canonical: name-ordered runs).
_MID: Final = ("procedure_code", "rule_set", "applicant_ref", "applicant_kind", "channel")
_PRECOMPUTED_BODY: Final = {"dossier_id": "_d", "procedure_code": "_m"}


def prepare(e: RawEvent) -> RawEvent:
    """Add the pre-encoded per-dossier constants the encoders read (call again after changing one)."""
    dossier, code, rule_set = e["dossier_id"], e["procedure_code"], e["rule_set"]
    ref, kind, channel, version = e["applicant_ref"], e["applicant_kind"], e["channel"], e.get("procedure_version")
    raw = dossier.encode()
    e["_d"] = zz(len(raw)) + raw
    raw = ref.encode()
    e["_m"] = b"".join((STRING[code], STRING[rule_set], zz(len(raw)), raw, _KINDS[kind], _CHANNELS[channel]))
    # CANON_RUNS, spelled out: enum symbols and the hex pseudonym are ASCII
    e["_ca"] = f"applicant_kind:{len(kind)}:{kind}applicant_ref:{len(raw)}:{ref}channel:{len(channel)}:{channel}"
    e["_cd"] = f"dossier_id:{len(dossier.encode())}:{dossier}"
    e["_cp"] = f"procedure_code:{len(code.encode())}:{code}" + (
        "" if version is None else f"procedure_version:{len(version.encode())}:{version}"
    )
    e["_cr"] = f"rule_set:{len(rule_set.encode())}:{rule_set}"
    return e


_SYMBOLS: Final = _enum_symbols()
_KINDS: Final = {s: zz(i) for i, s in enumerate(_SYMBOLS["ApplicantKind"])}
_CHANNELS: Final = {s: zz(i) for i, s in enumerate(_SYMBOLS["Channel"])}
BODY: Final[dict[str, Callable[[RawEvent], bytes]]] = {
    t.value: _compile_body(t, _SYMBOLS) for t in EventType if t is not EventType.UNKNOWN
}
SINGLE_OBJECT_HEADER: Final = MAGIC + current_schema().fingerprint_bytes


def encode_body(e: RawEvent) -> bytes:
    return BODY[e["event_type"]](e)


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
        meta = {"avro.codec": codec.encode(), "avro.schema": json.dumps(current_schema().source).encode()}
        header = [b"Obj\x01", zz(len(meta))]
        for key, value in meta.items():
            header += [STRING[key], zz(len(value)), value]
        header += [b"\x00", sync_marker]
        fo.write(b"".join(header))

    def write_body(self, body: bytes) -> None:
        self._parts.append(body)
        self._size += len(body)
        if self._size >= self._interval:
            self.flush()

    def write_bodies(self, bodies: Iterable[bytes]) -> None:
        """:meth:`write_body` for each, in order (the same blocks)."""
        parts, interval = self._parts, self._interval
        size = self._size
        for body in bodies:
            parts.append(body)
            size += len(body)
            if size >= interval:
                self._size = size
                self.flush()
                parts, size = self._parts, 0
        self._size = size

    def flush(self) -> None:
        if not self._parts:
            return
        data = b"".join(self._parts)
        if self._codec == "deflate":
            data = zlib.compress(data, 1)[2:-1]
        self._fo.write(b"".join((zz(len(self._parts)), zz(len(data)), data, self._sync)))
        self._parts, self._size = [], 0


__all__ = [
    "BODY",
    "CANONICAL",
    "SINGLE_OBJECT_HEADER",
    "OcfWriter",
    "canonical",
    "encode_body",
    "prepare",
    "seal_raw",
    "zz",
    "zz_ts",
]
