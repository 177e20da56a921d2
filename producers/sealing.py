"""Sealing a history a person wrote: numbers, event ids and the hash chain filled in, then the whole checked.

A hand-written line is a contract event in the JSON form
(:mod:`schemas.jsonform`) that may leave out what a person cannot compute:
``seq``, ``prev_hash`` and ``hash``, and also ``event_id`` and
``recorded_at``. Sealing fills them per dossier, in file order:

* ``seq`` 1, 2, 3 … in the order of the dossier's lines. A ``seq`` written
  on a line must be that number: a file is never re-sorted, so a line out of
  place is refused rather than silently moved.
* ``recorded_at`` = ``occurred_at`` when absent.
* ``event_id`` when absent: a UUIDv5 of the dossier, the seq and the sealed
  content (the chain up to that event). Sealing the same file twice gives the
  same bytes; an edited event, and every event after it, gets a new id, so
  loading the edited history where the old one is stored reports conflicts
  instead of quietly keeping the old events.
* ``prev_hash`` and ``hash`` by :func:`schemas.hashchain.seal_chain`'s rule.

A line that already carries ``hash`` (or ``prev_hash``) is checked, not
overwritten: a hash that does not match the line's content, or a
``prev_hash`` that is not the previous line's hash, is a problem naming the
line, unless ``reseal`` is asked for. Resealing gives every event whose hash
changes (the edited one and those after it) a new derived ``event_id`` too:
it is a different event now, and the loader must see it as one. Then every sealed event goes through
the check ``dossier produce publish --check`` runs
(:func:`producers.validation.check_items`: the contract, seq, chain,
lifecycle, repeated event ids), so a sealed file is one ``publish`` and
``consume load`` accept.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from producers.inputs import InputEvent, InputProblem, Item
from producers.validation import Problem, check_items
from schemas.errors import ContractError
from schemas.events import ZERO_HASH, DossierEvent
from schemas.hashchain import compute_hash, seal
from schemas.jsonform import from_json
from schemas.jsontext import JsonTextError, loads

#: Namespace of the event ids sealing derives.
SEAL_NAMESPACE: Final = uuid.UUID("8d0f3c6e-2b7a-5e41-9c3d-6a1b5e7f2c90")
_PLACEHOLDER_ID: Final = "00000000-0000-4000-8000-000000000000"


class SealInputError(ValueError):
    """The input file cannot be read at all; the message names it."""


@dataclasses.dataclass(frozen=True)
class _Line:
    source: str  # FILE:LINE
    text: str
    obj: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SealResult:
    """Sealed events in file order, and every problem; nothing is to be written unless ``ok``."""

    events: tuple[DossierEvent, ...]
    problems: tuple[Problem, ...]
    dossiers: int
    lines: int
    numbered: int  # events whose seq was filled in
    checked: int  # events whose written hash was found intact
    resealed: int  # events whose written hash was replaced (reseal)

    @property
    def ok(self) -> bool:
        return not self.problems


def seal_file(path: Path, *, reseal: bool = False) -> SealResult:
    """Seal and check one JSON Lines history (see the module docstring)."""
    items: list[tuple[int, Item]] = []
    by_dossier: dict[str, list[tuple[int, _Line]]] = {}
    for index, entry in enumerate(_read(path)):
        if isinstance(entry, InputProblem):
            items.append((index, entry))
        else:
            by_dossier.setdefault(entry.obj["dossier_id"], []).append((index, entry))
    counts = {"numbered": 0, "checked": 0, "resealed": 0}
    for lines in by_dossier.values():
        items.extend(_seal_dossier(lines, reseal, counts))
    items.sort(key=lambda pair: pair[0])
    verdict = check_items([item for _i, item in items])
    return SealResult(
        events=tuple(item.event for _i, item in items if isinstance(item, InputEvent)),
        problems=verdict.problems,
        dossiers=verdict.dossiers,
        lines=len(items),
        **counts,
    )


def _read(path: Path) -> Iterator[_Line | InputProblem]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealInputError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if data.startswith(b"Obj\x01"):
        raise SealInputError(f"{path}: an Avro container file; seal reads hand-written JSON Lines")
    found = False
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield InputProblem(where, f"not UTF-8 text (byte {exc.start + 1})")
            continue
        if not text.strip():
            continue
        found = True
        try:
            obj = loads(text)
        except JsonTextError as exc:
            yield InputProblem(where, str(exc), raw=text)
            continue
        if not isinstance(obj, dict):
            yield InputProblem(where, f"an event must be a JSON object, got {type(obj).__name__}", raw=text)
        elif not isinstance(obj.get("dossier_id"), str):
            yield InputProblem(where, "dossier_id is missing or not a string: every event names its dossier", raw=text)
        else:
            yield _Line(where, text, obj)
    if not found:
        raise SealInputError(f"{path}: no events in the file (write one JSON object a line)")


def _seal_dossier(
    lines: Sequence[tuple[int, _Line]], reseal: bool, counts: dict[str, int]
) -> Iterator[tuple[int, Item]]:
    """One dossier's lines, numbered and chained in file order; a line that cannot be sealed is a problem."""
    prev = ZERO_HASH  # the chain as sealed
    prev_written: bytes | None = ZERO_HASH  # the previous line's hash as written; None after a line in error
    for position, (index, line) in enumerate(lines, start=1):
        dossier_id = line.obj["dossier_id"]
        try:
            written = _as_written(line.obj, position)
        except (ContractError, TypeError, ValueError) as exc:
            yield index, InputProblem(line.source, f"{dossier_id}: {exc}", dossier_id, line.text)
            prev_written = None  # the link of the next line cannot be judged; the dossier is rejected anyway
            continue
        counts["numbered"] += "seq" not in line.obj
        sealed = seal(written, prev)
        rehashed = reseal and "hash" in line.obj and sealed.hash != written.hash
        if "event_id" not in line.obj or rehashed:  # a changed event is a new event: a new id
            sealed = _with_derived_id(written, prev)
        problem = None if reseal else _written_chain_problem(line, written, prev_written, position)
        if problem is not None:
            yield index, InputProblem(line.source, f"{dossier_id} seq {position}: {problem}", dossier_id, line.text)
        else:
            counts["checked"] += "hash" in line.obj and not rehashed
            counts["resealed"] += rehashed
            yield index, InputEvent(sealed, line.source, line.text)
        prev = sealed.hash
        prev_written = written.hash if "hash" in line.obj else sealed.hash


def _with_derived_id(event: DossierEvent, prev: bytes) -> DossierEvent:
    """The event sealed with the id derived from its dossier, seq and sealed content (placeholder id)."""
    base = seal(event.replace(event_id=_PLACEHOLDER_ID), prev)
    name = f"{event.dossier_id}\x1f{event.seq}\x1f{base.hash.hex()}"
    return seal(event.replace(event_id=str(uuid.uuid5(SEAL_NAMESPACE, name))), prev)


def _as_written(obj: dict[str, Any], position: int) -> DossierEvent:
    """The line's event with what the person left out filled (hashes as written, or zero)."""
    seq = obj.get("seq", position)
    if seq != position:
        raise ValueError(
            f"seq {seq!r} is written on its event {position} in file order: seal numbers each dossier's "
            "events in the order of the file; put the line in its place, or leave seq out"
        )
    filled = {**obj, "seq": position}
    filled.setdefault("event_id", _PLACEHOLDER_ID)
    if filled.get("recorded_at") is None and "occurred_at" in obj:
        filled["recorded_at"] = obj["occurred_at"]
    return from_json(filled)


def _written_chain_problem(line: _Line, written: DossierEvent, prev_written: bytes | None, position: int) -> str | None:
    """What is wrong with the hashes written on the line (None: none written, or they hold)."""
    if "prev_hash" in line.obj and prev_written is not None and written.prev_hash != prev_written:
        what = "32 zero bytes" if position == 1 else f"the hash of seq {position - 1} as written"
        return (
            f"prev_hash {written.prev_hash.hex()[:16]}… is not {what}: a line was added, removed or moved "
            "before it; check the file, then seal with --reseal to chain it anew"
        )
    if "hash" in line.obj:
        linked = written if "prev_hash" in line.obj or prev_written is None else written.replace(prev_hash=prev_written)
        computed = compute_hash(linked)
        if computed != written.hash:
            return (
                f"hash {written.hash.hex()[:16]}… does not match the line's content (computed "
                f"{computed.hex()[:16]}…): the line was changed after sealing; check it, then seal with --reseal "
                "to accept the change"
            )
    return None
