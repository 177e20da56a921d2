"""What each rule could judge: the dossiers it assessed, and those it could not, with why.

A finding is evidence only when the facts it rests on were said by the source. Two things make a dossier
not assessable by a rule:

* a fact the rule reads (:data:`schemas.rulebook.NEEDS`) is unknown on one of the events it reads it on
  (the event lists it in ``unknown_facts``): reason ``"<fact> unknown"``;
* for the rules that read the procedure catalogue (R7, R16, R20): no catalogue is loaded, or the dossier's
  procedure, or the version of it in force at reception, is not in it (:func:`inspection.rules.base.
  catalogue_versions`).

The audit drops a rule's findings on dossiers it could not assess (a rule never fires on missing evidence)
and reports, per rule, ``{"assessed": N, "not_assessable": {"<reason>": n, …}}``. A dossier with two reasons
counts under both; ``assessed`` counts each dossier once. A rule that reads the catalogue in one part only
(:data:`schemas.rulebook.CATALOGUE_PARTS`: R20's (b)) still assesses the dossier; the reason names the part
it could not judge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from inspection.rules.base import Scope, catalogue_versions
from inspection.verify import Slice, dossier_slices, slice_condition, slice_params
from schemas.rulebook import CATALOGUE_PARTS, get_rule, needs

QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

NO_CATALOGUE: Final = "no catalogue loaded"
LOAD_CATALOGUE: Final = "dossier consume load-catalogue DIR"


@dataclasses.dataclass(frozen=True)
class RuleCoverage:
    """One rule's reach over the selection."""

    rule: str
    in_scope: int
    unassessable: int  # distinct dossiers not assessable, whatever the reason
    reasons: Mapping[str, int]

    @property
    def assessed(self) -> int:
        return self.in_scope - self.unassessable

    def describe(self) -> dict[str, Any]:
        return {"assessed": self.assessed, "not_assessable": dict(sorted(self.reasons.items()))}

    def line(self) -> str:
        """One short line for a terminal (only for a rule that could not judge everything)."""
        why = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        return f"{self.rule}: assessed {self.assessed:,} of {self.in_scope:,} dossier(s); not assessable: {why}"


def catalogue_blind(reach: Mapping[str, RuleCoverage]) -> list[str]:
    """The rules (or parts of a rule) that judged nothing because no procedure catalogue is loaded."""
    return [
        rule if rule not in CATALOGUE_PARTS else f"part {CATALOGUE_PARTS[rule]} of {rule}"
        for rule, c in reach.items()
        if any(reason.startswith(NO_CATALOGUE) for reason in c.reasons)
    ]


def catalogue_warning(blind: Sequence[str]) -> str:
    """What to tell whoever reads findings (or timings) of rules that judged nothing for want of the catalogue."""
    return (
        f"warning: no procedure catalogue is loaded, so {', '.join(blind)} judged nothing; load one with "
        f"`{LOAD_CATALOGUE}` (procedures.jsonl)"
    )


def _pairs(rule_id: str) -> list[str]:
    """``event_type:fact`` pairs whose unknown makes ``rule_id`` unable to judge."""
    return sorted({f"{event}:{need.fact}" for need in needs(rule_id) for event in need.events})


def unknown_sql(scope: str) -> str:
    """Per dossier in scope with something unknown: its ``event_type:fact`` pairs (a scan of one column)."""
    return f"""
SELECT dossier_id, groupUniqArrayArray(arrayMap(f -> concat(event_type, ':', f), unknown_facts)) AS pairs
FROM events PREWHERE notEmpty(unknown_facts) WHERE {scope}
GROUP BY dossier_id
"""  # noqa: S608 (scope: bound placeholders only)


#: Events one slice of the audit's queries reads at most, about (:func:`dossier_parts`). A rule or coverage query
#: holds a few small states per dossier of its slice (~35 bytes an event measured on the city's data), so this
#: bounds their memory whatever the size of the store (a year of the city: ~244M events).
SLICE_ROWS: Final = 16_000_000


def dossier_parts(query: QueryFn, scope: str, params: Mapping[str, Any]) -> list[Slice]:
    """The slices of whole dossiers the audit reads the selection in: ranges of the sort key ``dossier_id`` of
    about :data:`SLICE_ROWS` of its events each (:func:`inspection.verify.dossier_slices`), in order; one
    unbounded slice for a smaller selection, none for an empty one."""
    rows = int(query(f"SELECT count() FROM events WHERE {scope}", dict(params))[0][0])  # noqa: S608
    return dossier_slices(query, "events", rows, SLICE_ROWS) if rows else []


def rule_coverage(
    query: QueryFn,
    rule_ids: Sequence[str],
    *,
    scope: str = "1",
    params: Mapping[str, Any] | None = None,
    parts: Sequence[Slice] | None = None,
) -> dict[str, RuleCoverage]:
    """Every rule's coverage of the dossiers matching ``scope`` (bound values in ``params``).

    Counted slice by slice of whole dossiers (``parts``, else :func:`dossier_parts`): a dossier is never split,
    so the counts add up.
    """
    bound = dict(params or {})
    fact_rules = [r for r in rule_ids if needs(r)]
    catalogue_rules = [r for r in rule_ids if get_rule(r).needs_catalogue]
    catalogue = bool(catalogue_rules) and bool(int(query("SELECT count() FROM procedures", {})[0][0]))
    total = 0
    unknown: dict[str, tuple[int, dict[str, int]]] = {}
    gaps: dict[str, int] = {}
    overlap: dict[str, int] = {}
    for part in dossier_parts(query, scope, bound) if parts is None else parts:
        where = f"({scope}){slice_condition(part)}"
        sliced = {**bound, **slice_params(part)}
        in_part = int(query(f"SELECT uniqExact(dossier_id) FROM events WHERE {where}", sliced)[0][0])  # noqa: S608
        total += in_part
        part_unknown = _unknown_counts(query, fact_rules, where, sliced) if fact_rules else {}
        for rule_id, (either, by_fact) in part_unknown.items():
            was_either, was_by_fact = unknown.get(rule_id, (0, {}))
            unknown[rule_id] = (was_either + either, _add(was_by_fact, by_fact))
        if catalogue:
            part_gaps = _catalogue_gaps(query, where, sliced, in_part)
            gaps = _add(gaps, part_gaps)
            for rule_id in catalogue_rules:  # none unknown or no gap: none in both
                if part_gaps and part_unknown.get(rule_id, (0, {}))[0] and not CATALOGUE_PARTS.get(rule_id):
                    overlap[rule_id] = overlap.get(rule_id, 0) + _both(query, rule_id, where, sliced)
    if catalogue_rules and not catalogue and total:
        gaps = {NO_CATALOGUE: total}
        for rule_id in catalogue_rules:
            if unknown.get(rule_id, (0, {}))[0] and not CATALOGUE_PARTS.get(rule_id):
                overlap[rule_id] = unknown[rule_id][0]  # every dossier is in a gap: all the unknown ones are in both
    gap_dossiers = sum(gaps.values())
    out: dict[str, RuleCoverage] = {}
    for rule_id in rule_ids:
        reasons: dict[str, int] = {}
        either, by_fact = unknown.get(rule_id, (0, {}))
        reasons.update(by_fact)
        unassessable = either
        part_name = CATALOGUE_PARTS.get(rule_id)
        if rule_id in catalogue_rules and gap_dossiers and part_name:
            reasons.update({f"{gap}: part {part_name} not judged": n for gap, n in gaps.items()})
        elif rule_id in catalogue_rules and gap_dossiers:
            reasons.update(gaps)
            unassessable = either + gap_dossiers - overlap.get(rule_id, 0)
        out[rule_id] = RuleCoverage(rule_id, total, unassessable, {k: v for k, v in reasons.items() if v})
    return out


def _add(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """``a`` + ``b`` key by key, in the order the keys first came (reports list equal counts in that order)."""
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


def _unknown_counts(
    query: QueryFn, rule_ids: Sequence[str], scope: str, bound: Mapping[str, Any]
) -> dict[str, tuple[int, dict[str, int]]]:
    """Per rule: (dossiers with any needed fact unknown, {"<fact> unknown": dossiers})."""
    columns: list[str] = []
    layout: list[tuple[str, str | None]] = []
    for rule_id in rule_ids:
        pairs = _pairs(rule_id)
        columns.append(f"countIf(hasAny(pairs, {_array(pairs)}))")
        layout.append((rule_id, None))
        for fact in sorted({n.fact for n in needs(rule_id)}):
            fact_pairs = [p for p in pairs if p.endswith(f":{fact}")]
            columns.append(f"countIf(hasAny(pairs, {_array(fact_pairs)}))")
            layout.append((rule_id, fact))
    row = query(f"SELECT {', '.join(columns)} FROM ({unknown_sql(scope)})", dict(bound))[0]  # noqa: S608
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for (rule_name, which), n in zip(layout, row, strict=True):
        either, by_fact = out.get(rule_name, (0, {}))
        if which is None:
            out[rule_name] = (int(n), by_fact)
        else:
            by_fact[f"{which} unknown"] = int(n)
            out[rule_name] = (either, by_fact)
    return out


def _catalogue_gaps(query: QueryFn, scope: str, bound: Mapping[str, Any], dossiers: int) -> dict[str, int]:
    """{reason: dossiers} of the ``dossiers`` in ``scope`` without a catalogue version (a catalogue is loaded).

    Read from the events that can name a dossier's procedure; over every event when that leaves some out.
    """
    for first_rows in (True, False):
        sql = f"SELECT gap, count() FROM ({catalogue_versions(Scope(scope), first_rows=first_rows)}) GROUP BY gap"  # noqa: S608
        counts = {str(gap): int(n) for gap, n in query(sql, dict(bound))}
        if sum(counts.values()) == dossiers:
            break
    return {gap: n for gap, n in counts.items() if gap}


def _both(query: QueryFn, rule_id: str, scope: str, bound: Mapping[str, Any]) -> int:
    """Dossiers counted under an unknown fact and a catalogue gap alike (so that ``assessed`` counts each once)."""
    pairs = _pairs(rule_id)
    if not pairs:
        return 0
    gapped = f"SELECT dossier_id FROM ({catalogue_versions(Scope(scope))}) WHERE gap != ''"  # noqa: S608
    sql = (
        f"SELECT countIf(hasAny(pairs, {_array(pairs)})) FROM ({unknown_sql(scope)}) "  # noqa: S608
        f"WHERE dossier_id IN ({gapped})"
    )
    return int(query(sql, dict(bound))[0][0])


def not_assessable(query: QueryFn, rule_id: str, dossier_ids: Sequence[str]) -> set[str]:
    """Of ``dossier_ids``, those where a fact ``rule_id`` reads is unknown (its findings there are dropped)."""
    pairs = _pairs(rule_id)
    if not pairs or not dossier_ids:
        return set()
    # The primary key keeps the granules of the ids either way; reading first whether a row carries any unknown
    # fact (the array's sizes, nearly all 0 on most sources) spares the ids' column: 2.0 -> 0.16 s a catalogue
    # on 20M simulated events (BENCHMARKS.md).
    sql = (
        "SELECT DISTINCT dossier_id FROM events PREWHERE notEmpty(unknown_facts) "
        "WHERE dossier_id IN {ids:Array(String)} "
        "AND hasAny(arrayMap(f -> concat(event_type, ':', f), unknown_facts), {pairs:Array(String)})"
    )
    return {str(r[0]) for r in query(sql, {"ids": list(dossier_ids), "pairs": pairs})}


def _array(values: Sequence[str]) -> str:
    """A literal array of the rulebook's own names (event types and facts), never of input."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"
