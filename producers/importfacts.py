"""What an imported event says, and what its row cannot: component codes, citizens, unknown facts.

A ``QuaTrinhXuLy`` row has nine columns. Whatever an event type carries
beyond them was not said by the source, and the event lists it in
``unknown_facts`` (schema v2) with the field left empty: the audit then
reports the dossier as not assessable by the rules that read the fact,
instead of reading "no attachments" or "no receipt form" into silence.

* Component codes are never made up from free text. ``NoiDungXuLy`` names
  documents as a list: the text after its first ``:`` (the whole text when
  it has none), items separated by ``;`` or line breaks. Each item is
  compared, after :func:`schemas.textnorm.normalise` and case folding, with
  the ``component_codes`` of the procedure version in force at reception. Only
  when *every* item is one of them exactly does the event carry the codes
  (spelled as the catalogue spells them). Otherwise, or without a catalogue,
  the fact is unknown: a partial match is not kept, since a listed fact must
  stay empty and a half list would read as the whole request.
* A citizen never appears in clear: a row whose role is APPLICANT (citizens,
  organisations, their representatives and authorised persons, by
  ``ChucDanh``) gets the applicant's keyed pseudonym as ``actor_id``, and its
  ``NguoiXuLy`` joins the names scrubbed from every free text of the dossier
  (:mod:`producers.scrub`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from schemas.catalogue import Procedure
from schemas.events import EVENT_FIELDS, UNKNOWABLE_FACTS, DossierEvent, EventType
from schemas.textnorm import normalise

_E = EventType

#: Event types whose act issues a form (Mẫu 01 receipt, 02 supplement, 03 refusal, 04 apology, 05 stop notice):
#: a row never says which, so form_code is unknown on them. Elsewhere it stays null as in a native history.
FORM_EVENTS: Final = frozenset(
    {
        _E.DOSSIER_RECEIVED,
        _E.RECEPTION_GUIDANCE_ISSUED,
        _E.RECEPTION_REFUSED,
        _E.SUPPLEMENT_REQUESTED,
        _E.APOLOGY_ISSUED,
        _E.PROCESSING_STOPPED,
    }
)
#: Facts every event type may carry that no row says.
ALWAYS_UNKNOWN: Final = ("n_attachments",)
_ITEM_SEPARATORS: Final = re.compile(r"[;\n\r]+")


def document_items(text: str) -> list[str]:
    """The documents a NoiDungXuLy names: after its first ``:``, separated by ``;`` or line breaks."""
    _, colon, rest = text.partition(":")
    items = _ITEM_SEPARATORS.split(rest if colon else text)
    return [item for item in (normalise(i) for i in items) if item]


def components(procedure: Procedure | None) -> Mapping[str, str]:
    """The procedure version's component codes by their compared form (normalised, case-folded)."""
    if procedure is None:
        return {}
    return {normalise(code).casefold(): code for code in procedure.component_codes}


def match_documents(text: str, codes: Mapping[str, str]) -> tuple[str, ...]:
    """The component codes ``text`` names when every item is one exactly; () otherwise (the fact is unknown)."""
    items = document_items(text)
    if not items or not codes:
        return ()
    matched: list[str] = []
    for item in items:
        code = codes.get(item.casefold())
        if code is None:
            return ()
        matched.append(code)
    return tuple(dict.fromkeys(matched))


def _empty(fact: str, value: Any) -> bool:
    return value is None or value == () or (fact == "n_attachments" and value == 0)


def unknown_facts(event: DossierEvent, *, reason_said: bool) -> tuple[str, ...]:
    """The facts ``event``'s type carries that its row did not say (sorted, as the contract wants them).

    ``reason_said``: the row's source had a NoiDungXuLy (a blank one is a blank reason, said).
    """
    carried = set(EVENT_FIELDS[event.event_type].allowed) | {*ALWAYS_UNKNOWN, "procedure_version"}
    if event.event_type in FORM_EVENTS:
        carried.add("form_code")
    if event.event_type is _E.DOSSIER_RECEIVED:
        carried.add("due_at")
    if reason_said:
        carried.discard("reason")
    return tuple(sorted(f for f in UNKNOWABLE_FACTS if f in carried and _empty(f, getattr(event, f))))
