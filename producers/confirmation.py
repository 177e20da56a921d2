"""On the embedded stack, "delivered" means stored: acknowledgements confirmed against the store.

The embedded broker keeps messages in memory only (platform.md A-0). An event it acknowledged is safe only
once the running loader has stored it: if the broker dies first (killed, out of memory), the event dies with it,
and a publisher that said "delivered" would have reported a loss as a success. So after publishing to the
embedded broker, :func:`confirm_stored` waits for the loader to store what the broker acknowledged and asks the
store, by identity (``dossier_id``, ``event_id``; the lookup walks the primary key), which events it holds:

* an event the store holds is delivered;
* an event the loader refused is reported with the loader's reason (a dead letter: ``dossier consume
  dead-letters`` lists it), not as delivered;
* an event still missing when the loader stops making progress (``patience_s`` without one more event stored)
  is reported undelivered, so the undelivered file holds it and publishing that file completes the store.
  Re-sending is safe: the loader stores an event once per identity.

On a Kafka cluster (``acks=all``) an acknowledged record is replicated and kept; "delivered" keeps meaning what
the cluster acknowledged, and nothing here runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from dossier_runtime.errors import StoreError
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, opened_store
from producers.publish import Delivered, DeliveryReport, OutboundEvent, Undelivered

#: Dossiers per lookup: the bound arrays stay small, each lookup reads the granules of these dossiers only.
CHUNK: Final = 5_000
#: Seconds without one more acknowledged event stored before the rest is reported as not stored; shorter once a
#: send failed (the broker is likely gone: the loader can store only what it had already fetched).
PATIENCE_S: Final = 60.0
PATIENCE_AFTER_FAILURE_S: Final = 15.0
_POLL_S: Final = 0.5

_STORED_SQL: Final = (
    "SELECT DISTINCT event_id FROM events "
    "WHERE dossier_id IN {dossiers:Array(String)} AND event_id IN {ids:Array(String)}"
)
_REFUSED_SQL: Final = (
    "SELECT event_id, any(kind), any(error) FROM dead_letters WHERE event_id IN {ids:Array(String)} GROUP BY event_id"
)


def _chunks(items: Sequence[Delivered]) -> Iterable[Sequence[Delivered]]:
    by_dossier: dict[str, list[Delivered]] = {}
    for item in items:
        by_dossier.setdefault(item.dossier_id, []).append(item)
    groups = list(by_dossier.values())
    for start in range(0, len(groups), CHUNK):
        yield [item for group in groups[start : start + CHUNK] for item in group]


def _stored(store: Store, waiting: Sequence[Delivered]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(waiting):
        params = {"dossiers": sorted({d.dossier_id for d in chunk}), "ids": [d.event_id for d in chunk]}
        found.update(str(row[0]) for row in store.query(_STORED_SQL, params).rows)
    return found


def _refused(store: Store, waiting: Sequence[Delivered]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(waiting):
        for event_id, kind, error in store.query(_REFUSED_SQL, {"ids": [d.event_id for d in chunk]}).rows:
            out[str(event_id)] = f"refused by the loader ({kind}: {error}); `dossier consume dead-letters` lists it"
    return out


def confirm_stored(
    settings: Settings,
    report: DeliveryReport,
    events: dict[str, OutboundEvent],
    *,
    patience_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeliveryReport:
    """``report`` with every acknowledged event the store does not hold moved to ``failed`` (see module doc).

    ``events``: the sent events by ``event_id`` (a failed entry carries the event, for the undelivered file).
    ``progress(stored, acknowledged)`` is called once the wait begins and whenever the count of stored events grows.
    """
    waiting = list(report.delivered)
    if not waiting:
        return report
    if patience_s is None:
        patience_s = PATIENCE_S if report.ok else PATIENCE_AFTER_FAILURE_S
    stored: set[str] = set()
    try:
        with opened_store(settings) as store:
            last_gain = time.monotonic()
            if progress is not None:
                progress(0, len(report.delivered))
            while waiting:
                found = _stored(store, waiting)
                if found:
                    stored |= found
                    waiting = [d for d in waiting if d.event_id not in found]
                    last_gain = time.monotonic()
                    if progress is not None:
                        progress(len(stored), len(report.delivered))
                elif time.monotonic() - last_gain > patience_s:
                    break
                if waiting:
                    time.sleep(_POLL_S)
            refused = _refused(store, waiting) if waiting else {}
    except StoreError as exc:
        refused = {}
        reason = f"acknowledged by the embedded broker; whether it was stored is unknown: {exc}"
        return _moved(report, waiting, events, refused, reason)
    reason = (
        f"acknowledged by the embedded broker but not stored after {patience_s:g} s without progress (the broker "
        "keeps messages in memory only: is `dossier consume run` storing? `dossier consume status` says)"
    )
    return _moved(report, waiting, events, refused, reason)


def _moved(
    report: DeliveryReport,
    waiting: Sequence[Delivered],
    events: dict[str, OutboundEvent],
    refused: dict[str, str],
    reason: str,
) -> DeliveryReport:
    if not waiting:
        return report
    missing = {d.event_id for d in waiting}
    delivered = tuple(d for d in report.delivered if d.event_id not in missing)
    moved = [Undelivered(events[d.event_id], refused.get(d.event_id, reason), True) for d in waiting]
    order = {event_id: index for index, event_id in enumerate(events)}  # input order, for the undelivered file
    failed = sorted([*moved, *report.failed], key=lambda item: order.get(item.event_id, len(order)))
    return DeliveryReport(report.topic, delivered, tuple(failed))


__all__ = ["PATIENCE_S", "confirm_stored"]
