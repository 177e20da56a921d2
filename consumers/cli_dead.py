"""``dossier consume dead-letters``: what the loaders refused to store, and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import click

from consumers.cliutil import emit, format_option, pass_settings, quiet_option, user_errors
from dossier_runtime.settings import Settings
from dossier_runtime.store import opened_store

#: The kinds a loader dead-letters (migration 0003), in the order a person fixes them.
KINDS: Final = ("conflict", "invalid", "undecodable", "unknown-fingerprint", "bad-magic")
COLUMNS: Final = ["dead_at", "kind", "topic", "partition", "offset", "dossier_id", "seq", "event_id", "error"]
EXIT_DEAD_LETTERS: Final = 3
_LIST_SQL: Final = """
SELECT dead_at, kind, topic, partition, offset, dossier_id, seq, event_id, error
FROM dead_letters FINAL
WHERE ({kind:String} = '' OR kind = {kind:String}) AND ({source:String} = '' OR topic = {source:String})
ORDER BY dead_at DESC, topic, partition, offset
LIMIT {limit:UInt64}
"""


def list_command(source: str) -> str:
    """The command that lists a run's dead letters (``source``: ``file:<name>`` or a topic)."""
    return f"dossier consume dead-letters --source {source}"


def dead_letter_summary(counts: Counter[str], sources: Sequence[str]) -> str:
    """The last line of a run that dead-lettered events: how many, of which kinds, how to list them."""
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    listing = list_command(sources[0]) if len(sources) == 1 else "dossier consume dead-letters"
    return f"{sum(counts.values()):,} event(s) not stored, dead-lettered ({kinds}); list them with `{listing}`"


@click.command("dead-letters")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--source", metavar="TOPIC|file:NAME", help="Only what came from this topic or file.")
@click.option(
    "--limit", type=click.IntRange(0), default=100, show_default=True, help="At most this many rows (0: all)."
)
@format_option
@quiet_option
@pass_settings
def dead_letters_cmd(
    settings: Settings, kind: str | None, source: str | None, limit: int, fmt: str, quiet: bool
) -> None:
    """List the dead letters: what a loader refused to store, where it came from and why, newest first.

    A dead letter keeps the message or record as received (the raw bytes are
    in the store's dead_letters table); the event id, dossier and seq are
    shown when the event could be read. Kinds: conflict (another event is
    stored under this identity), invalid (breaks the contract), undecodable,
    unknown-fingerprint, bad-magic.

    \b
    Examples:
      dossier consume dead-letters
      dossier consume dead-letters --kind conflict --source file:events-00000.avro --format csv
    """
    params = {"kind": kind or "", "source": source or "", "limit": limit or 2**63 - 1}
    with user_errors(), opened_store(settings) as store:
        rows: list[dict[str, Any]] = store.query(_LIST_SQL, params).named()
        totals = store.query("SELECT kind, count() FROM dead_letters FINAL GROUP BY kind ORDER BY kind").rows
    if not quiet:
        total = sum(int(n) for _k, n in totals)
        by_kind = ", ".join(f"{k} {int(n):,}" for k, n in totals) or "none"
        shown = f"; showing {len(rows):,}" if len(rows) < total else ""
        click.echo(f"{total:,} dead letter(s) in the store ({by_kind}){shown}", err=True)
    for row in rows:
        row["dead_at"] = row["dead_at"].isoformat() if row["dead_at"] is not None else None
    emit(rows, fmt, COLUMNS)
