"""IEEE 1849 (XES) event-log writing, streamed: one trace per dossier, one event per stored event.

Standard extensions declared and used: Concept (``concept:name``), Time
(``time:timestamp``), Organizational (``org:resource``, ``org:role``,
``org:group``) and Lifecycle (``lifecycle:transition``, always
``complete``: each stored event is a completed activity). Two classifiers
(activity; activity + lifecycle) let process-mining tools pick the event
name. Rows must arrive ordered by dossier and seq, so a trace is written as
soon as the next dossier starts and nothing accumulates in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any, Final
from xml.sax.saxutils import quoteattr

EXTENSIONS: Final = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
)
#: Event attributes beyond the standard ones: (XES type, column).
EXTRA: Final = (
    ("int", "seq"),
    ("int", "status"),
    ("string", "procedure_code"),
    ("string", "channel"),
    ("string", "to_unit"),
    ("string", "to_actor"),
    ("string", "step_code"),
    ("int", "step_budget_minutes"),
    ("date", "due_at"),
    ("date", "recorded_at"),
    ("string", "event_id"),
)
COLUMNS: Final = (
    "dossier_id", "event_type", "occurred_at", "actor_id", "actor_role", "unit_code", *(c for _t, c in EXTRA),
)  # fmt: skip


def _attr(kind: str, key: str, value: Any) -> str:
    if isinstance(value, datetime):
        value = value.isoformat(timespec="milliseconds")
    return f"<{kind} key={quoteattr(key)} value={quoteattr(str(value))}/>"


def header(source: Mapping[str, Any]) -> str:
    ext = "".join(
        f"  <extension name={quoteattr(n)} prefix={quoteattr(p)} uri={quoteattr(u)}/>\n" for n, p, u in EXTENSIONS
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">\n'
        f"{ext}"
        '  <global scope="trace">\n    <string key="concept:name" value="__INVALID__"/>\n  </global>\n'
        '  <global scope="event">\n'
        '    <string key="concept:name" value="__INVALID__"/>\n'
        '    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>\n'
        '    <string key="lifecycle:transition" value="complete"/>\n'
        "  </global>\n"
        '  <classifier name="Activity" keys="concept:name"/>\n'
        '  <classifier name="Activity and lifecycle" keys="concept:name lifecycle:transition"/>\n'
        f"  {_attr('string', 'concept:name', 'dossier-audit event log')}\n"
        f"  {_attr('string', 'source', source.get('store', ''))}\n"
        f"  {_attr('int', 'source:events', source.get('events', 0))}\n"
    )


def event(row: Mapping[str, Any]) -> str:
    parts = [
        _attr("string", "concept:name", row["event_type"]),
        _attr("date", "time:timestamp", row["occurred_at"]),
        _attr("string", "lifecycle:transition", "complete"),
        _attr("string", "org:resource", row["actor_id"]),
        _attr("string", "org:role", row["actor_role"]),
        _attr("string", "org:group", row["unit_code"]),
    ]
    parts += [_attr(kind, col, row[col]) for kind, col in EXTRA if row.get(col) is not None]
    return "    <event>" + "".join(parts) + "</event>\n"


def write(out: IO[str], rows: Iterable[Mapping[str, Any]], source: Mapping[str, Any]) -> int:
    """Write the log; ``rows`` ordered by (dossier_id, seq). Returns the number of events."""
    out.write(header(source))
    current: str | None = None
    n = 0
    for row in rows:
        if row["dossier_id"] != current:
            if current is not None:
                out.write("  </trace>\n")
            current = str(row["dossier_id"])
            out.write(f"  <trace>{_attr('string', 'concept:name', current)}\n")
        out.write(event(row))
        n += 1
    if current is not None:
        out.write("  </trace>\n")
    out.write("</log>\n")
    return n
