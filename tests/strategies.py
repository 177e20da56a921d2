"""Hypothesis strategies for contract events (any values the types admit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas.events import (
    ARRAY_FIELDS,
    ENUM_FIELDS,
    EVENT_FIELDS,
    TIMESTAMP_FIELDS,
    DossierEvent,
    EventType,
)

_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_LONG_FIELDS = {"seq", "amount_vnd", "ref_seq"}
_INT_FIELDS = {"status", "n_attachments", "step_budget_minutes", "time_limit_value", "rating"}
_BOOL_FIELDS = {"clock_stopped", "result_electronic"}

offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.builds(
    lambda micros, tz: (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).astimezone(tz),
    st.integers(0, 4_102_444_800_000_000),  # 1970 .. 2100
    offsets,
)
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _value(name: str) -> st.SearchStrategy[object]:
    if name in TIMESTAMP_FIELDS:
        return timestamps
    if name in ARRAY_FIELDS:
        return st.lists(text, max_size=4).map(tuple)
    if name in ENUM_FIELDS:
        return st.sampled_from(list(ENUM_FIELDS[name]))
    if name in _LONG_FIELDS:
        return _INT64
    if name in _INT_FIELDS:
        return _INT32
    if name in _BOOL_FIELDS:
        return st.booleans()
    if name in ("prev_hash", "hash"):
        return st.binary(min_size=32, max_size=32)
    if name == "event_id":
        return st.uuids().map(str)
    return text


_REQUIRED_NON_NULL = {
    "event_id",
    "dossier_id",
    "seq",
    "event_type",
    "occurred_at",
    "recorded_at",
    "unit_code",
    "actor_id",
    "actor_role",
    "procedure_code",
    "rule_set",
    "applicant_ref",
    "applicant_kind",
    "channel",
    "status",
    "prev_hash",
    "hash",
    "n_attachments",
    "requested_documents",
    "documents",
    "unknown_facts",
}


@st.composite
def any_events(draw: st.DrawFn) -> DossierEvent:
    """Events with arbitrary (type-correct, not necessarily contract-valid) values."""
    kwargs = {}
    for name in DossierEvent.__dataclass_fields__:
        strategy = _value(name)
        if name not in _REQUIRED_NON_NULL:
            strategy = st.none() | strategy
        kwargs[name] = draw(strategy)
    return DossierEvent(**kwargs)


__all__ = ["EVENT_FIELDS", "EventType", "any_events", "timestamps"]
