"""Parts of ``events`` the store set aside as broken, and the replay of the topic that restores their rows.

ClickHouse checks parts when it opens a store; a damaged one (a write that failed under it, platform.md and
RELIABILITY.md: chDB acknowledges an insert whose file write failed with EFBIG) is moved to ``detached/`` with
a ``broken`` reason and its rows leave the table without an error. On the Kafka path their events are still in
the topic (as far as its retention reaches), and storing is idempotent, so ``dossier consume run`` reads the
topic again from its earliest offsets when it finds such a part it has not replayed for. The parts stay in
``detached/`` as evidence of the fault (``consume status`` and ``inspect verify`` keep naming them) until the
operator drops them; the names replayed for are kept in the data directory, so a later start does not read the
whole topic again for the same parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from dossier_runtime.outfile import write_output
from dossier_runtime.store import Store

RECORD: Final = "replayed-broken-parts.json"

_EVENT_PARTS_SQL: Final = """
SELECT name FROM system.detached_parts
WHERE database = currentDatabase() AND table = 'events' AND startsWith(ifNull(reason, ''), 'broken') ORDER BY name
"""


def _replayed(data_dir: Path) -> set[str]:
    try:
        names = json.loads((data_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {str(n) for n in names} if isinstance(names, list) else set()


def unreplayed(store: Store, data_dir: Path) -> list[str]:
    """Broken parts of ``events`` no replay of the topic has covered yet."""
    done = _replayed(data_dir)
    return [str(r[0]) for r in store.query(_EVENT_PARTS_SQL).rows if str(r[0]) not in done]


def record_replayed(data_dir: Path, names: list[str]) -> None:
    """Remember that a replay that reached the end of the topic covered ``names`` (written whole, then renamed)."""
    write_output(data_dir / RECORD, json.dumps(sorted(_replayed(data_dir) | set(names))))


def replay_sentence(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
    return (
        f"ClickHouse set aside {len(names)} broken part(s) of events when it opened the store ({shown}): their "
        "rows are gone from the table. Reading the topic again from its earliest offsets to store them again"
    )


__all__ = ["RECORD", "record_replayed", "replay_sentence", "unreplayed"]
