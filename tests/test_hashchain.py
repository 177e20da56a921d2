"""The per-dossier hash chain and its canonical encoding, in Python and in ClickHouse SQL."""

from __future__ import annotations

import hashlib

import chdb
import fastavro
from hypothesis import given, settings

from schemas.events import ZERO_HASH, EventType
from schemas.golden import sample_event
from schemas.hashchain import HASHED_FIELDS, canonical, canonical_sql, compute_hash, seal, seal_chain
from schemas.registry import current_schema
from tests.strategies import any_events


def test_canonical_encoding_is_length_prefixed_in_name_order() -> None:
    event = sample_event(EventType.RESULT_COLLECTED)
    text = canonical(event)
    assert text.startswith(b"actor_id:7:tn-0001actor_role:17:RECEPTION_OFFICER")
    assert b"hash:" not in text.replace(b"prev_hash:", b"")
    assert b"prev_hash:64:" + bytes(range(32)).hex().encode() in text
    assert list(HASHED_FIELDS) == sorted(HASHED_FIELDS)


def test_absent_values_leave_the_encoding_unchanged() -> None:
    """A field added later with a null default cannot invalidate existing hashes."""
    event = sample_event(EventType.RESULT_COLLECTED)
    assert b"to_unit" not in canonical(event)
    assert b"requested_documents" not in canonical(event)


def test_seal_chain_links_events() -> None:
    events = [sample_event(t) for t in (EventType.DOSSIER_SUBMITTED, EventType.DOSSIER_RECEIVED, EventType.FEE_PAID)]
    sealed = list(seal_chain(events))
    assert sealed[0].prev_hash == ZERO_HASH
    assert sealed[1].prev_hash == sealed[0].hash
    assert sealed[2].prev_hash == sealed[1].hash
    for event in sealed:
        assert event.hash == compute_hash(event)
        assert event.hash == hashlib.sha256(canonical(event)).digest()


@settings(max_examples=200, deadline=None)
@given(any_events(), any_events())
def test_any_difference_changes_the_hash(a, b) -> None:  # type: ignore[no-untyped-def]
    a, b = seal(a, ZERO_HASH), seal(b, ZERO_HASH)
    same = all(getattr(a, n) == getattr(b, n) or (not getattr(a, n) and not getattr(b, n)) for n in HASHED_FIELDS)
    if not same:
        assert a.hash != b.hash


def test_canonical_sql_recomputes_every_golden_hash_in_clickhouse(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events = [sample_event(t) for t in EventType if t is not EventType.UNKNOWN]
    events.append(sample_event(EventType.RESULT_COLLECTED).replace(reason=None, documents=()))
    events = [seal(e, e.prev_hash) for e in events]
    path = tmp_path / "events.avro"
    with path.open("wb") as f:
        fastavro.writer(f, current_schema().parsed, [e.to_record() for e in events])
    # The expression is built from the contract's own field list; the path is pytest's.
    sql = (
        f"SELECT event_type, lower(hex(SHA256({canonical_sql()}))) = lower(hex(hash)) AS ok, "
        f"{canonical_sql()} AS c FROM file('{path}', 'Avro')"
    )
    rows = [line.split("\t") for line in str(chdb.query(sql, "TSV")).strip().splitlines()]
    assert len(rows) == len(events)
    assert all(ok == "1" for _, ok, _ in rows), [r[:2] for r in rows if r[1] != "1"]
