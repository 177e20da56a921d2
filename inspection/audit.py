"""Running the audit rules over the store and collecting their findings.

Each rule is one query (:mod:`inspection.rules`); only findings come back to
Python. Parameters (``--param name=value``) are validated against the
rulebook and bound, like the filters and ``as_of``; nothing from the command
line reaches the SQL text.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from inspection import ledger
from inspection.coverage import RuleCoverage, dossier_parts, not_assessable, rule_coverage
from inspection.dossier_facts import NONE_SEQ
from inspection.rules import CATALOGUE, FINDING_COLUMNS, RuleSQL, Scope
from inspection.verify import slice_condition, slice_params
from inspection.worktime_sql import params as calendar_params
from schemas.rulebook import RULE_IDS, default_params, get_rule, param_maximum
from schemas.workingtime import HCMC_TZ, default_calendar

#: ``query(sql, parameters) -> rows``: how the audit reaches the store.
QueryFn = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

MAX_INT_PARAM: Final = 100_000
_CLOCK: Final = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class AuditUsageError(ValueError):
    """A rule id or a parameter the rulebook does not know, or a value out of range; the message says which."""


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    version: int
    dossier_id: str
    unit_code: str
    actor_id: str | None
    evidence_seqs: tuple[int, ...]
    explanation: str

    def row(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "evidence_seqs": list(self.evidence_seqs)}


@dataclasses.dataclass(frozen=True)
class RuleRun:
    rule: str
    version: int
    findings: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class AuditReport:
    findings: tuple[Finding, ...]
    runs: tuple[RuleRun, ...]
    params: Mapping[str, int | str]
    as_of: datetime | None
    integrity: Mapping[str, str] | None = None  # INTEGRITY-HASH: what was recomputed, what the ledger covered
    coverage: Mapping[str, RuleCoverage] = dataclasses.field(default_factory=dict)  # per rule: what it assessed

    def counts(self) -> dict[str, int]:
        return {run.rule: run.findings for run in self.runs}


def _micros(t: datetime) -> int:
    delta = t.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def select_rules(ids: Iterable[str]) -> list[RuleSQL]:
    """The rules named (any case), in catalogue order; every rule when none is named."""
    wanted = [i.strip().upper() for i in ids if i.strip()]
    unknown = [i for i in wanted if i not in CATALOGUE]
    if unknown:
        raise AuditUsageError(f"unknown rule {unknown[0]!r}; known rules: {', '.join(RULE_IDS)}")
    return [r for r in CATALOGUE.values() if not wanted or r.id in wanted]


def parse_params(pairs: Iterable[str]) -> dict[str, int | str]:
    """Defaults of the rulebook overridden by ``name=value`` pairs, each validated."""
    params = default_params()
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name:
            raise AuditUsageError(f"{pair!r} is not NAME=VALUE")
        if name not in params:
            raise AuditUsageError(f"unknown rule parameter {name!r}; known: {', '.join(sorted(params))}")
        params[name] = _value(name, raw, params[name])
    return params


def _value(name: str, raw: str, default: int | str) -> int | str:
    if isinstance(default, int):
        top = param_maximum(name) or MAX_INT_PARAM
        if not re.fullmatch(r"\d{1,9}", raw) or int(raw) > top:
            raise AuditUsageError(f"{name} takes a whole number from 0 to {top}, got {raw!r}")
        return int(raw)
    if not _CLOCK.match(raw):
        raise AuditUsageError(f"{name} takes a local time HH:MM (00:00-23:59), got {raw!r}")
    hours, minutes = raw.split(":")
    return f"{int(hours):02d}:{minutes}"


def bound_params(params: Mapping[str, int | str]) -> dict[str, int]:
    """``p_<name>`` → Int64 for the SQL; a clock time travels as minutes after midnight."""
    out = {}
    for name, value in params.items():
        if isinstance(value, str):
            hours, minutes = value.split(":")
            out[f"p_{name}"] = int(hours) * 60 + int(minutes)
        else:
            out[f"p_{name}"] = int(value)
    return out


def rule_params(rules: Sequence[RuleSQL], params: Mapping[str, int | str]) -> dict[str, int | str]:
    """The parameters the selected rules read, with the values used."""
    return {p.name: params[p.name] for r in rules for p in r.rule.params}


def latest_event(query: QueryFn, scope: str, scope_params: Mapping[str, Any]) -> datetime | None:
    """The default ``as_of``: the latest occurred_at in the selection."""
    sql = f"SELECT max(occurred_at), count() FROM events WHERE {scope}"  # noqa: S608 (scope: bound placeholders only)
    latest, n = query(sql, dict(scope_params))[0]
    if not n:
        return None
    when: datetime = latest
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def rule_query(rule: RuleSQL, scope: Scope) -> str:
    """The full query of one rule: its findings in dossier order."""
    columns = ", ".join(FINDING_COLUMNS)
    # The rule's SQL and columns come from inspection.rules; values are placeholders.
    return f"SELECT {columns} FROM ({rule.build(scope)}) ORDER BY dossier_id"  # noqa: S608


#: Who and where, for the events findings name: one primary-key lookup per audit run (all rules). PREWHERE:
#: a thousand findings touch most granules, so the names are read only for the rows kept.
PEOPLE_SQL: Final = """
SELECT dossier_id, seq, event_type = 'DossierReceived', actor_id, unit_code, ifNull(to_actor, ''), ifNull(to_unit, '')
FROM events
PREWHERE dossier_id IN {ids:Array(String)}
WHERE event_type = 'DossierReceived' OR seq = 1 OR has({seqs:Array(Int64)}, seq)
ORDER BY dossier_id, seq
"""
#: The receiving unit of each dossier with a reception (the first DossierReceived by seq).
UNITS_SQL: Final = f"""
SELECT dossier_id, tupleElement(reception, 3)
FROM dossier_facts FINAL
WHERE dossier_id IN {{ids:Array(String)}} AND tupleElement(reception, 1) != {NONE_SEQ}
"""  # noqa: S608 (a constant)
_CHUNK: Final = 50_000


@dataclasses.dataclass
class _Dossier:
    unit: str = ""  # the receiving unit (R's), else the first event's
    has_r: bool = False
    events: dict[int, tuple[str, str, str, str]] = dataclasses.field(default_factory=dict)


def _people(query: QueryFn, rows: Sequence[Sequence[Any]]) -> dict[str, _Dossier]:
    """The receiving unit of each finding's dossier and who did the events it names.

    The unit comes from ``dossier_facts`` (its reception, one row per dossier); the event log is read
    only for the dossiers whose findings name events, or that the facts hold no reception for.
    """
    out: dict[str, _Dossier] = {}
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        for dossier_id, unit in query(UNITS_SQL, {"ids": sorted({str(r[0]) for r in chunk})}):
            d = out.setdefault(dossier_id, _Dossier())
            d.unit, d.has_r = unit, True
        named = [r for r in chunk if len(r[3]) or str(r[0]) not in out]
        if not named:
            continue
        ids = sorted({str(r[0]) for r in named})
        seqs = sorted({int(s) for r in named for s in r[3]})
        for dossier_id, seq, is_r, actor, unit, to_actor, to_unit in query(PEOPLE_SQL, {"ids": ids, "seqs": seqs}):
            d = out.setdefault(dossier_id, _Dossier())
            if is_r and not d.has_r:
                d.unit, d.has_r = unit, True
            elif not d.unit:
                d.unit = unit
            d.events[int(seq)] = (actor, unit, to_actor, to_unit)
    return out


def _attribute(d: _Dossier | None, actor_seqs: Sequence[int], holder: bool) -> tuple[str, str | None]:
    """(unit_code, actor_id): the one person answering for the finding and their unit, else the receiving unit."""
    if d is None:
        return "", None
    people = {(e[2], e[3] or e[1]) if holder else (e[0], e[1]) for s in actor_seqs if (e := d.events.get(int(s)))}
    people = {p for p in people if p[0]}
    if len({p[0] for p in people}) == 1:
        actor, unit = sorted(people)[0]
        return unit, actor
    return d.unit, None


def audit(
    query: QueryFn,
    rules: Sequence[RuleSQL],
    *,
    params: Mapping[str, int | str] | None = None,
    scope: str = "1",
    scope_params: Mapping[str, Any] | None = None,
    as_of: datetime | None = None,
    on_rule: Callable[[RuleRun], None] | None = None,
) -> AuditReport:
    """Run ``rules`` over the dossiers matching ``scope`` and gather their findings."""
    params = dict(params if params is not None else default_params())
    scope_params = dict(scope_params or {})
    if as_of is None:
        as_of = latest_event(query, scope, scope_params)
    bound: dict[str, Any] = {
        **calendar_params(),
        **scope_params,
        **bound_params(params),
        "as_of_us": _micros(as_of or _EPOCH),
    }
    integrity, use_ledger = None, False
    if any(rule.id == "INTEGRITY-HASH" for rule in rules):
        coverage = ledger.coverage(query, full=bool(params.get("full_recompute", 0)), dossiers=False)
        use_ledger = coverage.unused_because is None
        bound.update(coverage.params() if use_ledger else {})
        integrity = coverage.describe()
    found: list[tuple[RuleRun, Sequence[Sequence[Any]]]] = []
    # Every rule judges each dossier on its own events: run slice by slice of whole dossiers, in dossier order,
    # its memory is one slice's, not the store's, and the findings are the same.
    parts = dossier_parts(query, scope, scope_params)
    for rule in rules:
        started = time.perf_counter()
        rows = [
            row
            for part in parts
            for row in query(
                rule_query(rule, Scope(f"({scope}){slice_condition(part)}", use_ledger)),
                {**bound, **slice_params(part)},
            )
        ]
        # A rule never fires on a fact the source did not say: those dossiers are counted, not judged.
        unsure = not_assessable(query, rule.id, sorted({str(r[0]) for r in rows}))
        rows = [r for r in rows if str(r[0]) not in unsure]
        run = RuleRun(rule.id, get_rule(rule.id).version, len(rows), time.perf_counter() - started)
        found.append((run, rows))
        if on_rule is not None:
            on_rule(run)
    # Who and where, for every rule's findings at once: one scan of the log instead of one per rule.
    every = [row for _, rows in found for row in rows]
    people = _people(query, every) if every else {}
    findings: list[Finding] = []
    for run, kept in found:
        for dossier_id, seqs, explanation, actor_seqs, holder in kept:
            unit, actor = _attribute(people.get(dossier_id), actor_seqs, bool(holder))
            evidence = tuple(int(s) for s in seqs)
            findings.append(Finding(run.rule, run.version, dossier_id, unit, actor, evidence, explanation))
    reach = rule_coverage(query, [r.id for r in rules], scope=scope, params=scope_params, parts=parts)
    runs = tuple(run for run, _ in found)
    return AuditReport(tuple(findings), runs, rule_params(rules, params), as_of, integrity, reach)


def as_of_in_calendar(as_of: datetime) -> bool:
    """Whether the working calendar covers ``as_of`` (outside it, working time cannot be measured)."""
    return as_of.astimezone(HCMC_TZ).year in default_calendar().data.years
