"""The contract check of :func:`schemas.events.validate_event`, as one ClickHouse expression.

The loaders let ClickHouse decode Avro natively (Python decoding is ~10x
slower), so the contract is checked where the rows are: on the staging table,
in SQL. :func:`reason_sql` is generated from the same constants
(:data:`~schemas.events.EVENT_FIELDS`, the envelope rules and patterns) that
the Python validator uses, so the two cannot drift apart silently; a test runs
both over the golden events and mutations of them and requires the same
verdict. The expression is ``''`` for a valid row, otherwise the problems
joined by ``'; '``.

Only constants of the contract go into this SQL; no input value ever does.
"""

from __future__ import annotations

import functools
from typing import Final

from schemas.events import (
    ARRAY_FIELDS,
    DOSSIER_ID_RE,
    EVENT_FIELDS,
    PAYLOAD_FIELDS,
    RATING_RANGE,
    UNIT_CODE_RE,
    UNKNOWABLE_FACTS,
    EventType,
)
from schemas.registry import current_schema
from schemas.textnorm import blank_sql

_ENUM_PAYLOAD: Final = (
    "to_role",
    "time_limit_unit",
    "deadline_convention",
    "service_level",
    "payment_channel",
    "return_channel",
)


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pattern(regex: str) -> str:
    # Python named groups are RE2-compatible; drop them anyway to keep the SQL plain.
    import re

    return _lit(re.sub(r"\(\?P<\w+>", "(", regex))


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _type_in(types: list[str]) -> str:
    """``event_type`` is one of ``types``: ``IN``, which a LowCardinality column answers once per distinct value
    (``has([…], event_type)`` took ~15 times longer, row by row)."""
    return f"(event_type IN ({', '.join(_lit(t) for t in types)}))" if types else "0"


def _present(field: str) -> str:
    return f"notEmpty({field})" if field in ARRAY_FIELDS else f"isNotNull({field})"


def _checks() -> list[tuple[str, str]]:
    """(condition meaning 'problem', message expression) pairs."""
    return _row_checks() + _field_checks()


def _row_checks() -> list[tuple[str, str]]:
    """The checks that are not per-type field rules (those are bit masks in :func:`valid_sql`)."""
    known = [t.value for t in EVENT_FIELDS]
    checks: list[tuple[str, str]] = [
        ("isNull(toUUIDOrNull(event_id))", "concat('event_id ', event_id, ' is not a UUID')"),
        (
            f"NOT match(dossier_id, {_pattern(DOSSIER_ID_RE.pattern)})",
            "concat('dossier_id ', dossier_id, ' is not <unit code>-<yyMMdd>-<nnnn>')",
        ),
        ("seq < 1", "concat('seq ', toString(seq), ' must be a positive integer')"),
        ("status < 1 OR status > 10", "concat('status ', toString(status), ' is not a national status code 1-10')"),
        (
            f"NOT match(unit_code, {_pattern(UNIT_CODE_RE.pattern)})",
            "concat('unit_code ', unit_code, ' is not an electronic unit ID')",
        ),
        ("n_attachments < 0", "'n_attachments must be a non-negative integer'"),
        (
            f"NOT {_type_in(known)}",
            "concat('event type ', event_type, ' is not one this version can accept')",
        ),
    ]
    for name in ("actor_id", "procedure_code", "rule_set", "applicant_ref"):
        checks.append((blank_sql(name), _lit(f"{name} is empty")))  # also only NBSP, ZWSP, BOM, ...
    for name in ("actor_role", "applicant_kind", "channel"):
        checks.append((f"{name} = 'UNKNOWN'", _lit(f"{name} is UNKNOWN")))
    checks += _unknown_checks()
    checks.append(_utf8_check())
    low, high = RATING_RANGE.start, RATING_RANGE.stop - 1
    checks += [
        (f"isNotNull(rating) AND (rating < {low} OR rating > {high})", f"'rating is outside {low}-{high}'"),
        ("isNotNull(time_limit_value) AND time_limit_value < 0", "'time_limit_value is negative'"),
        ("isNotNull(amount_vnd) AND amount_vnd < 0", "'amount_vnd is negative'"),
        ("isNotNull(step_budget_minutes) AND step_budget_minutes < 0", "'step_budget_minutes is negative'"),
        (
            f"isNotNull(to_unit) AND NOT match(assumeNotNull(to_unit), {_pattern(UNIT_CODE_RE.pattern)})",
            "'to_unit is not an electronic unit ID'",
        ),
        ("isNotNull(ref_seq) AND (ref_seq < 1 OR ref_seq >= seq)", "'ref_seq does not name an earlier event'"),
    ]
    for name in _ENUM_PAYLOAD:
        checks.append((f"{name} = 'UNKNOWN'", _lit(f"{name} is UNKNOWN")))
    return checks


def _text_fields() -> tuple[list[str], list[str]]:
    """(string fields, array-of-string fields) of the current schema."""
    texts, arrays = [], []
    for field in current_schema().source["fields"]:
        kind = field["type"]
        branches = kind if isinstance(kind, list) else [kind]
        if any(b == "string" or (isinstance(b, dict) and b.get("type") == "string") for b in branches):
            texts.append(field["name"])
        elif isinstance(kind, dict) and kind.get("type") == "array" and kind.get("items") == "string":
            arrays.append(field["name"])
    return texts, arrays


def _utf8_check() -> tuple[str, str]:
    """Text that is not UTF-8 (the Avro spec requires it; ClickHouse stores any bytes): refused, naming the field."""
    texts, arrays = _text_fields()
    bad = [f"NOT isValidUTF8(ifNull({f}, ''))" for f in texts] + [
        f"NOT arrayAll(x -> isValidUTF8(x), {f})" for f in arrays
    ]
    names = [*texts, *arrays]
    message = (
        f"concat(arrayStringConcat(arrayFilter((n, b) -> b, {_list(names)}, [{', '.join(bad)}]), ', '), "
        "' not valid UTF-8')"
    )
    return f"({' OR '.join(bad)})", message


def _field_checks() -> list[tuple[str, str]]:
    """Per type: required payload fields present (or said unknown), no field the type does not carry."""
    known = [t.value for t in EVENT_FIELDS]
    checks: list[tuple[str, str]] = []
    for field in PAYLOAD_FIELDS:
        requiring = sorted(t.value for t, rule in EVENT_FIELDS.items() if field in rule.required)
        allowing = sorted(t.value for t, rule in EVENT_FIELDS.items() if field in rule.allowed)
        if requiring:
            checks.append(
                (
                    f"{_type_in(requiring)} AND NOT {_present(field)} AND NOT has(unknown_facts, {_lit(field)})",
                    f"concat(event_type, ' requires {field}')",
                )
            )
        checks.append(
            (
                f"{_type_in(known)} AND NOT {_type_in(allowing)} AND {_present(field)}",
                f"concat(event_type, ' does not carry {field}')",
            )
        )
    return checks


def _unknown_checks() -> list[tuple[str, str]]:
    """``unknown_facts`` as :func:`schemas.events._unknown_problems` checks it."""
    checks = [
        (
            f"NOT hasAll({_list(sorted(UNKNOWABLE_FACTS))}, unknown_facts)",
            "'unknown_facts names a fact that cannot be unknown'",
        ),
        ("unknown_facts != arraySort(arrayDistinct(unknown_facts))", "'unknown_facts must be sorted, each name once'"),
    ]
    for name in sorted(UNKNOWABLE_FACTS):
        listed = f"has(unknown_facts, {_lit(name)})"
        if name in PAYLOAD_FIELDS:
            allowing = sorted(t.value for t, rule in EVENT_FIELDS.items() if name in rule.allowed)
            checks.append(
                (
                    f"{listed} AND {_type_in(list(ACCEPTED_TYPES))} AND NOT {_type_in(allowing)}",
                    f"concat('unknown_facts names {name}, which ', event_type, ' does not carry')",
                )
            )
        value = "n_attachments != 0" if name == "n_attachments" else _present(name)
        checks.append((f"{listed} AND {value}", _lit(f"{name} is listed in unknown_facts but has a value")))
    return checks


@functools.cache
def reason_sql() -> str:
    """A SQL expression over the event columns: '' when the row satisfies the contract."""
    items = ", ".join(f"if({cond}, {msg}, '')" for cond, msg in _checks())
    return f"arrayStringConcat(arrayFilter(x -> x != '', [{items}]), '; ')"


ACCEPTED_TYPES: Final = tuple(t.value for t in EventType if t in EVENT_FIELDS)


def _mask_sql() -> tuple[str, str, str]:
    """(present-mask expression, required-mask expression, allowed-mask expression) over PAYLOAD_FIELDS bits."""
    present = " + ".join(f"if({_present(f)}, {1 << i}, 0)" for i, f in enumerate(PAYLOAD_FIELDS))
    types = [t.value for t in EVENT_FIELDS]
    required = [
        sum(1 << i for i, f in enumerate(PAYLOAD_FIELDS) if f in EVENT_FIELDS[t].required) for t in EVENT_FIELDS
    ]
    allowed = [sum(1 << i for i, f in enumerate(PAYLOAD_FIELDS) if f in EVENT_FIELDS[t].allowed) for t in EVENT_FIELDS]

    def lookup(masks: list[int]) -> str:
        return f"transform(event_type, {_list(types)}, [{', '.join(f'toUInt64({m})' for m in masks)}], toUInt64(0))"

    return f"toUInt64({present})", lookup(required), lookup(allowed)


@functools.cache
def valid_sql() -> str:
    """A cheap boolean over the event columns, true exactly when :func:`reason_sql` is ''.

    Per-type field rules become bit masks (one bit per payload field), so the
    common case costs a few integer operations per row instead of building
    messages; the messages are computed only for the rows this rejects.
    """
    present, required, allowed = _mask_sql()
    known = _type_in(list(ACCEPTED_TYPES))
    envelope = [cond for cond, _msg in _row_checks() if not cond.startswith("NOT (event_type IN (")]
    said_unknown = " + ".join(
        f"if(has(unknown_facts, {_lit(f)}), {1 << i}, 0)" for i, f in enumerate(PAYLOAD_FIELDS) if f in UNKNOWABLE_FACTS
    )
    rules = (
        f"bitAnd({required}, bitNot(bitOr({present}, toUInt64({said_unknown})))) = 0 "
        f"AND bitAnd({present}, bitNot({allowed})) = 0"
    )
    return f"({known} AND {rules} AND NOT ({' OR '.join(f'ifNull(({c}), 0)' for c in envelope)}))"
