"""The hash chain's canonical form of raw simulator events, generated per event type.

:func:`schemas.hashchain.canonical` is the reference; this is the same text
built as one f-string per event type: the event type is a constant, fields the
type can never carry are left out, values that repeat (actors, units, codes,
small integers) come from :mod:`producers.simulator.memo` tables, and the
per-dossier constants are runs pre-built by
:func:`producers.simulator.fastcodec.prepare`. Tests pin the output byte for
byte to the reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from producers.simulator.memo import Memo, canonical_piece
from schemas.events import ARRAY_FIELDS, CONTEXT_FIELDS, ENVELOPE_FIELDS, EVENT_FIELDS, UNKNOWABLE_FACTS, EventType
from schemas.hashchain import HASHED_FIELDS

RawEvent = dict[str, Any]

TIMESTAMPS: Final = frozenset({"occurred_at", "recorded_at", "due_at", "step_due_at", "new_due_at"})
_BOOLS: Final = frozenset({"clock_stopped", "result_electronic"})
#: Values unique to one event: formatted inline, not memoised.
_UNIQUE: Final = frozenset({"event_id", "result_ref", "override_old", "override_new"})

#: Per-dossier constants: (key set by ``prepare``, the fields of the run, in name order).
CANON_RUNS: Final = {
    "applicant_kind": ("_ca", ("applicant_kind", "applicant_ref", "channel")),
    "dossier_id": ("_cd", ("dossier_id",)),
    "procedure_code": ("_cp", ("procedure_code", "procedure_version")),
    "rule_set": ("_cr", ("rule_set",)),
}
_IN_RUNS: Final = frozenset(name for _, names in CANON_RUNS.values() for name in names)


def _text(name: str) -> Callable[[Any], str]:
    if name in _BOOLS:
        return lambda v: "true" if v else "false"
    return str


#: One memo per field whose values repeat.
PIECES: Final[dict[str, Memo]] = {
    name: canonical_piece(name, _text(name))
    for name in HASHED_FIELDS
    if name not in TIMESTAMPS and name not in ARRAY_FIELDS and name not in _UNIQUE and name != "prev_hash"
}


def _array_piece(name: str) -> Memo:
    """``name:len:`` then each item as ``len:item``, by the tuple of items; empty → ''."""

    def compute(items: tuple[str, ...]) -> str:
        if not items:
            return ""
        t = "".join([f"{len(x.encode())}:{x}" for x in items])
        return f"{name}:{len(t.encode())}:{t}"

    return Memo(compute)


#: Arrays of document codes repeat too (a procedure's components): memoised by their tuple.
ARRAYS: Final[dict[str, Memo]] = {name: _array_piece(name) for name in sorted(ARRAY_FIELDS)}


def _piece(name: str, required: bool) -> str:
    """The f-string fragment of one field of raw event ``e``."""
    get = f"e[{name!r}]" if required else f"e.get({name!r})"
    if name in ARRAY_FIELDS:
        return f"{{AR_{name}[tuple(e.get({name!r}) or ())]}}"
    if name == "prev_hash":
        return "prev_hash:64:{e['prev_hash'].hex()}"
    if name in TIMESTAMPS:  # decimal digits: ASCII, so len() counts bytes
        if required:
            return f"{name}:{{len(t := str({get}))}}:{{t}}"
        return f"{{'' if (v := {get}) is None else {name + ':'!r} + str(len(t := str(v))) + ':' + t}}"
    if name in _UNIQUE:
        if required:
            return f"{name}:{{len((t := {get}).encode())}}:{{t}}"
        return f"{{'' if (v := {get}) is None else {name + ':'!r} + str(len(v.encode())) + ':' + v}}"
    if name == "n_attachments":
        return "{P_n_attachments[e.get('n_attachments', 0)]}"
    return f"{{P_{name}[{get}]}}"


def _compile(event_type: EventType) -> Callable[[RawEvent], bytes]:
    rule = EVENT_FIELDS[event_type]
    env: dict[str, Any] = {f"P_{name}": memo for name, memo in PIECES.items()}
    env.update({f"AR_{name}": memo for name, memo in ARRAYS.items()})
    pieces = []
    for name in HASHED_FIELDS:
        if name in CANON_RUNS:
            pieces.append(f"{{e[{CANON_RUNS[name][0]!r}]}}")
        elif name in _IN_RUNS:
            continue
        elif name == "event_type":
            pieces.append(f"event_type:{len(event_type.value)}:{event_type.value}")
        elif name in ENVELOPE_FIELDS or name in CONTEXT_FIELDS or name in rule.allowed:
            # A required fact the source did not say (unknown_facts) is absent from the event: not required here.
            required = name in ENVELOPE_FIELDS or (
                name in rule.required and name not in ARRAY_FIELDS and name not in UNKNOWABLE_FACTS
            )
            pieces.append(_piece(name, required))
    src = 'def canon(e):\n    return f"' + "".join(pieces) + '".encode()\n'
    exec(compile(src, f"<canonical {event_type.value}>", "exec"), env)
    fn: Callable[[RawEvent], bytes] = env["canon"]
    return fn


CANONICAL: Final[dict[str, Callable[[RawEvent], bytes]]] = {
    t.value: _compile(t) for t in EventType if t is not EventType.UNKNOWN
}
_ZERO: Final = bytes(32)


def canonical(e: RawEvent) -> bytes:
    return CANONICAL[e["event_type"]](e)


def seal_raw(events: list[RawEvent], prev: bytes = _ZERO) -> bytes:
    """Set prev_hash and hash along a dossier's raw events (in seq order); returns the last hash."""
    sha, canon = hashlib.sha256, CANONICAL
    for e in events:
        e["prev_hash"] = prev
        prev = e["hash"] = sha(canon[e["event_type"]](e)).digest()
    return prev


__all__ = ["CANONICAL", "CANON_RUNS", "canonical", "seal_raw"]
