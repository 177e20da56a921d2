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


def rule_coverage(
    query: QueryFn, rule_ids: Sequence[str], *, scope: str = "1", params: Mapping[str, Any] | None = None
) -> dict[str, RuleCoverage]:
    """Every rule's coverage of the dossiers matching ``scope`` (bound values in ``params``)."""
    bound = dict(params or {})
    total = int(query(f"SELECT uniqExact(dossier_id) FROM events WHERE {scope}", bound)[0][0])  # noqa: S608
    fact_rules = [r for r in rule_ids if needs(r)]
    unknown: dict[str, tuple[int, dict[str, int]]] = {}
    if fact_rules and total:
        unknown = _unknown_counts(query, fact_rules, scope, bound)
    catalogue_rules = [r for r in rule_ids if get_rule(r).needs_catalogue]
    gaps: dict[str, int] = {}
    gap_dossiers = 0
    if catalogue_rules and total:
        gap_dossiers, gaps = _catalogue_gaps(query, scope, bound, total)
    out: dict[str, RuleCoverage] = {}
    for rule_id in rule_ids:
        reasons: dict[str, int] = {}
        either, by_fact = unknown.get(rule_id, (0, {}))
        reasons.update(by_fact)
        unassessable = either
        part = CATALOGUE_PARTS.get(rule_id)
        if rule_id in catalogue_rules and gap_dossiers and part:
            reasons.update({f"{gap}: part {part} not judged": n for gap, n in gaps.items()})
        elif rule_id in catalogue_rules and gap_dossiers:
            reasons.update(gaps)
            overlap = _both(query, rule_id, scope, bound, gaps) if either else 0  # none unknown: none in both
            unassessable = either + gap_dossiers - overlap
        out[rule_id] = RuleCoverage(rule_id, total, unassessable, {k: v for k, v in reasons.items() if v})
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


def _catalogue_gaps(query: QueryFn, scope: str, bound: Mapping[str, Any], total: int) -> tuple[int, dict[str, int]]:
    """(dossiers without a catalogue version, {reason: dossiers}); everything when no catalogue is loaded."""
    if not int(query("SELECT count() FROM procedures", {})[0][0]):
        return total, {NO_CATALOGUE: total}
    sql = f"SELECT gap, count() FROM ({catalogue_versions(Scope(scope))}) WHERE gap != '' GROUP BY gap"  # noqa: S608
    gaps = {str(gap): int(n) for gap, n in query(sql, dict(bound))}
    return sum(gaps.values()), gaps


def _both(query: QueryFn, rule_id: str, scope: str, bound: Mapping[str, Any], gaps: Mapping[str, int]) -> int:
    """Dossiers counted under an unknown fact and a catalogue gap alike (so that ``assessed`` counts each once)."""
    pairs = _pairs(rule_id)
    if not pairs:
        return 0
    if NO_CATALOGUE in gaps:
        sql = f"SELECT countIf(hasAny(pairs, {_array(pairs)})) FROM ({unknown_sql(scope)})"  # noqa: S608
    else:
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
    sql = (
        "SELECT DISTINCT dossier_id FROM events PREWHERE dossier_id IN {ids:Array(String)} "
        "WHERE notEmpty(unknown_facts) AND hasAny(arrayMap(f -> concat(event_type, ':', f), unknown_facts), "
        "{pairs:Array(String)})"
    )
    return {str(r[0]) for r in query(sql, {"ids": list(dossier_ids), "pairs": pairs})}


def _array(values: Sequence[str]) -> str:
    """A literal array of the rulebook's own names (event types and facts), never of input."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"
