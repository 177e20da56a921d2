"""What the store holds: ``dossier consume status``."""

from __future__ import annotations

import time
from typing import Any

from consumers.migrations import pending
from dossier_runtime.errors import RuntimeSetupError, StoreError
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store
from schemas.journal import BROKEN_PARTS_SQL, UNFINISHED_LOADS_SQL, broken_sentence, unfinished_sentence


def store_summary(store: Store) -> dict[str, Any]:
    waiting = pending(store)
    if any(m.name == "events" for m in waiting):
        raise StoreError(f"the store ({store.location}) has no events table yet; run `dossier consume migrate`")
    row = store.query(
        "SELECT (SELECT count() FROM events), (SELECT uniqExact(dossier_id) FROM events), "
        "(SELECT count() FROM dead_letters FINAL), (SELECT maxOrNull(_ingested_at) FROM events)"
    ).rows[0]
    unfinished = [] if any(m.name == "file_loads" for m in waiting) else store.query(UNFINISHED_LOADS_SQL).rows
    broken = broken_parts(store)
    return {
        "events": row[0],
        "dossiers": row[1],
        "dead_letters": row[2],
        "last_stored_at": row[3],
        "store": store.location,
        "pending_migrations": len(waiting),
        "unfinished_loads": [str(r[0]) for r in unfinished],
        "unfinished_note": unfinished_sentence(unfinished),
        "broken_parts": broken,
        "broken_note": broken_sentence(broken),
    }


def broken_parts(store: Store) -> dict[str, int]:
    """Parts ClickHouse found damaged when it opened the store and set aside (``detached/broken*``), by table.

    chDB can acknowledge an insert whose file writes failed (EFBIG past a file-size limit, RELIABILITY.md); the
    part is found broken at the next start and detached, its rows gone from the table without an error."""
    return {str(table): int(n) for table, n in store.query(BROKEN_PARTS_SQL).rows}


def partition_positions(store: Store, topic: str) -> list[dict[str, Any]]:
    # Dead letters are handled messages too: the last position covers both.
    result = store.query(
        "SELECT p, max(o), sum(n) FROM ("
        "SELECT _partition AS p, max(_offset) AS o, count() AS n FROM events WHERE _topic = {t:String} GROUP BY p "
        "UNION ALL SELECT partition AS p, max(offset) AS o, 0 AS n FROM dead_letters "
        "WHERE source = 'kafka' AND topic = {t:String} GROUP BY p) GROUP BY p ORDER BY p",
        {"t": topic},
    )
    return [{"topic": topic, "partition": p, "last_stored_offset": o, "events": int(n)} for p, o, n in result.rows]


def broker_lag(settings: Settings, bootstrap: str, positions: list[dict[str, Any]]) -> dict[int, int | None]:
    """Lag per partition: fetch high watermark minus the next offset to store (None when unknown)."""
    from kafka import TopicPartition

    from dossier_runtime.kafka import make_consumer

    consumer = make_consumer(bootstrap, settings.kafka_security, group_id=None, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(settings.topic) or set()
        tps = [TopicPartition(settings.topic, p) for p in sorted(parts)]
        if not tps:
            return {}
        consumer.assign(tps)
        stored = {row["partition"]: row["last_stored_offset"] for row in positions}
        for tp in tps:
            consumer.seek(tp, int(stored.get(tp.partition, -1)) + 1)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(consumer.highwater(tp) is None for tp in tps):
            consumer.poll(timeout_ms=200, max_records=1)
        lags: dict[int, int | None] = {}
        for tp in tps:
            high = consumer.highwater(tp)
            nxt = int(stored.get(tp.partition, -1)) + 1
            lags[tp.partition] = None if high is None else max(high - nxt, 0)
        return lags
    except RuntimeSetupError:
        raise
    finally:
        consumer.close(autocommit=False)
