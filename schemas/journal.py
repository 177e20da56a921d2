"""The file-load journal (migration 0012): what ``dossier consume load`` writes, and what reports read of it.

A load marks every file started before anything of it is stored and completed once it all is; the latest
row of a file's topic (``file:<name>``) is its state. A file still marked started was cut short: part of it
may be stored, and loading it again completes it (nothing is stored twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

STARTED: Final = "started"
COMPLETED: Final = "completed"
#: (topic, path, at) of every load marked started and never completed, oldest first.
UNFINISHED_LOADS_SQL: Final = """
SELECT topic, path, at FROM file_loads FINAL WHERE state = 'started' ORDER BY at, topic
"""


def unfinished_sentence(rows: Sequence[Sequence[Any]]) -> str:
    """What to tell a person about loads cut short ('' when there is none)."""
    if not rows:
        return ""
    names = ", ".join(str(r[0]).removeprefix("file:") for r in rows[:5]) + (" …" if len(rows) > 5 else "")
    paths = " ".join(str(r[1]) for r in rows[:5])
    return (
        f"{len(rows)} file load(s) cut short, part of them may be stored: {names}; "
        f"complete them with `dossier consume load {paths}`"
    )


#: (table, parts) of the parts ClickHouse found damaged when it opened the store and set aside (``detached/broken*``).
BROKEN_PARTS_SQL: Final = """
SELECT table, count() FROM system.detached_parts
WHERE database = currentDatabase() AND startsWith(ifNull(reason, ''), 'broken') GROUP BY table ORDER BY table
"""


def broken_sentence(broken: dict[str, int]) -> str:
    """What to tell a person about parts set aside as broken ('' when there is none)."""
    if not broken:
        return ""
    where = ", ".join(f"{table} {n}" for table, n in broken.items())
    return (
        f"ClickHouse found broken parts when it opened the store and set them aside ({where}; "
        "system.detached_parts): their rows are not in the store. `dossier consume run` reads the topic again "
        "from its earliest offsets for new ones by itself; events that came from files: load them again (nothing "
        "stored is stored twice). Then check with `dossier inspect verify`; the parts stay in the store's "
        "detached/ directories as evidence until an operator moves them out"
    )
