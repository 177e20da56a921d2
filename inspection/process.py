"""Process views of the event log: path variants and the directly-follows graph.

* **Variants**: the sequence of event types of each dossier (in seq order),
  counted per procedure and reception unit. Synchronisation events
  (``SyncedToNational``) are left out by default: they interleave with
  everything and would make every dossier its own variant.
* **Flow**: directly-follows edges a → b (consecutive events of one dossier)
  with their count and the waiting time between them in working hours
  (:mod:`inspection.worktime_sql`), median and p90; and the slowest
  hand-overs per receiving unit: how long the receiver kept the dossier
  before the next event, with the dossier to replay.

Everything is computed in ClickHouse; the selection is the shared filters
(:class:`inspection.cliutil.Filters`), bound as parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from dossier_runtime.store import Store
from inspection import worktime_sql as wt

HOUR_US: Final = 3_600_000_000
HANDOVERS: Final = ("DossierTransferred", "StepHandedOver", "StepReturned", "InterAgencyTransferred")
SKIPPED: Final = ("SyncedToNational",)


@dataclasses.dataclass(frozen=True)
class ProcessQuery:
    """``condition``/``params``: the dossier selection (Filters.dossier_condition)."""

    condition: str = "1"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    by: str = "procedure,unit"  # grouping of variants: procedure | unit | procedure,unit | all
    top: int = 10
    with_sync: bool = False


def _skip(q: ProcessQuery) -> str:
    return "1" if q.with_sync else "event_type NOT IN ('SyncedToNational')"


def variants_sql(q: ProcessQuery) -> str:
    keys = {"procedure": ["procedure"], "unit": ["unit"], "procedure,unit": ["procedure", "unit"], "all": []}[q.by]
    out = "".join(f"{k} AS {k}_code, " for k in keys)
    group = ", ".join([*keys, "variant"])
    part = ", ".join(keys) if keys else "1"
    # Identifiers come from the fixed map above; values are bound parameters.
    return f"""
SELECT {out}variant, dossiers, events, example_dossier,
    round(100 * dossiers / sum(dossiers) OVER (PARTITION BY {part}), 2) AS share_pct,
    row_number() OVER (PARTITION BY {part} ORDER BY dossiers DESC, variant) AS rank
FROM (
    SELECT {group}, count() AS dossiers, any(n) AS events, min(dossier_id) AS example_dossier
    FROM (
        SELECT dossier_id, argMin(procedure_code, seq) AS procedure,
            argMinIf(unit_code, seq, event_type = 'DossierReceived') AS received_by,
            if(received_by = '', argMin(unit_code, seq), received_by) AS unit,
            arrayStringConcat(arrayMap(x -> tupleElement(x, 2), arraySort(groupArray((seq, event_type)))), ' > ')
                AS variant,
            count() AS n
        FROM events
        WHERE {q.condition} AND {_skip(q)}
        GROUP BY dossier_id
    )
    GROUP BY {group}
)
QUALIFY rank <= {{top:UInt32}}
ORDER BY {"".join(f"{k}_code, " for k in keys)}rank
"""  # noqa: S608


def _pairs_sql(q: ProcessQuery) -> str:
    """Consecutive event pairs of each selected dossier with the working time between them."""
    pos = wt.pos_sql("occurred_at")
    return f"""
SELECT dossier_id, tupleElement(a, 2) AS from_type, tupleElement(b, 2) AS to_type, tupleElement(b, 1) AS seq,
    tupleElement(b, 3) - tupleElement(a, 3) AS wait_us,
    tupleElement(a, 4) AS from_unit, tupleElement(a, 5) AS to_unit, tupleElement(a, 6) AS handover_seq
FROM (
    SELECT dossier_id, arraySort(groupArray((seq, event_type, {pos},
        unit_code, if(event_type IN ({", ".join(f"'{h}'" for h in HANDOVERS)}), coalesce(to_unit, unit_code), ''),
        seq))) AS ev
    FROM events
    WHERE {q.condition} AND {_skip(q)}
    GROUP BY dossier_id
)
ARRAY JOIN arrayPopBack(ev) AS a, arrayPopFront(ev) AS b
"""  # noqa: S608


def edges_sql(q: ProcessQuery) -> str:
    return f"""
SELECT from_type, to_type, count() AS count,
    round(quantileExact(0.5)(wait_us) / {HOUR_US}, 2) AS median_wh,
    round(quantileExact(0.9)(wait_us) / {HOUR_US}, 2) AS p90_wh,
    round(avg(wait_us) / {HOUR_US}, 2) AS mean_wh
FROM ({_pairs_sql(q)})
GROUP BY from_type, to_type
ORDER BY count DESC, from_type, to_type
"""  # noqa: S608


def slow_handovers_sql(q: ProcessQuery) -> str:
    return f"""
SELECT to_unit AS unit_code, rank, dossier_id, handover_seq, from_type AS handover, from_unit, to_type AS next_event,
    round(wait_us / {HOUR_US}, 2) AS waited_wh
FROM (
    SELECT *, row_number() OVER (PARTITION BY to_unit ORDER BY wait_us DESC, dossier_id, handover_seq) AS rank
    FROM ({_pairs_sql(q)})
    WHERE to_unit != ''
)
WHERE rank <= {{top:UInt32}}
ORDER BY unit_code, rank
"""  # noqa: S608


def variants(store: Store, q: ProcessQuery) -> list[dict[str, Any]]:
    return store.query(variants_sql(q), {**q.params, "top": q.top}).named()


def edges(store: Store, q: ProcessQuery) -> list[dict[str, Any]]:
    return store.query(edges_sql(q), {**q.params, **wt.params()}).named()


def slow_handovers(store: Store, q: ProcessQuery) -> list[dict[str, Any]]:
    rows = store.query(slow_handovers_sql(q), {**q.params, **wt.params(), "top": q.top}).named()
    for row in rows:
        row["evidence"] = f"dossier inspect replay {row['dossier_id']}"
    return rows
