"""The audit rules as ClickHouse SQL, one :class:`RuleSQL` per rulebook rule.

``schemas.rulebook`` defines every rule (predicate, boundaries, evidence,
parameters); the modules here implement exactly that, grouped by what they
read: :mod:`.deadlines` (R1-R6), :mod:`.documents` (R7, R8, R16, R20),
:mod:`.handling` (R9-R11, R14, R15, R18, R21), :mod:`.records` (R12, R13,
R17, R19), :mod:`.integrity` (INTEGRITY-SEQ, INTEGRITY-HASH).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from inspection.rules import deadlines, documents, handling, integrity, records
from inspection.rules.base import FINDING_COLUMNS, RuleSQL, Scope
from schemas.rulebook import RULE_IDS

_ALL = (
    deadlines.r1,
    deadlines.r2,
    deadlines.r3,
    deadlines.r4,
    deadlines.r5,
    deadlines.r6,
    documents.r7,
    documents.r8,
    handling.r9,
    handling.r10,
    handling.r11,
    records.r12,
    records.r13,
    handling.r14,
    handling.r15,
    documents.r16,
    records.r17,
    handling.r18,
    records.r19,
    documents.r20,
    handling.r21,
    integrity.integrity_seq,
    integrity.integrity_hash,
)

#: Every implemented rule, in the rulebook's order.
CATALOGUE: Final[Mapping[str, RuleSQL]] = MappingProxyType(
    {r.id: r for r in sorted(_ALL, key=lambda r: RULE_IDS.index(r.id))}
)

__all__ = ["CATALOGUE", "FINDING_COLUMNS", "RuleSQL", "Scope"]
