"""What every ``dossier inspect`` command shares: options, the store, provenance, output.

* ``--format table|json|jsonl|csv`` with a stable row order; a table on a
  terminal, machine formats on request.
* The filters ``--unit``, ``--unit-level``, ``--procedure``, ``--from``/``--to``
  (reception date, Asia/Ho_Chi_Minh), always bound as query parameters.
* Provenance: every report says what it was computed on (events and dossiers
  in the store, the last ingested event and Kafka offsets), so a second
  inspector can reproduce it. Table output prints it above the table; JSON
  wraps rows as ``{"computed_on": …, "<rows>": […]}``; JSON Lines and CSV keep
  stdout to rows and print it on stderr (unless ``--quiet``).
* The access log: every command that opens the store with :func:`reader` is recorded in the store's access
  log after it ran (:mod:`inspection.cli_access`), and refused when it could not be.
* Store problems (no store yet, the store busy in another process, a server
  that cannot be reached) become one actionable sentence, exit code 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

import click

from dossier_runtime.errors import StoreError
from dossier_runtime.progress import Progress as Progress  # the inspect commands' stamped lines
from dossier_runtime.settings import Settings
from dossier_runtime.store import Store, StoreQueryError, open_store
from schemas import ddlfiles
from schemas.rendering import limited, output_options, render, table_view, wrapped
from schemas.workingtime import HCMC_TZ

EXIT_FINDINGS: Final = 3
#: Where the ``inspect`` group keeps the command's access session (:class:`inspection.cli_access.AccessSession`).
ACCESS_KEY: Final = "dossier.access"
UNIT_LEVELS: Final = ("city", "department", "district", "commune")

F = TypeVar("F", bound=Callable[..., Any])
pass_settings = click.make_pass_decorator(Settings, ensure=True)


#: ``--format``, ``--wide``; :data:`listing_options` adds ``--limit`` (see :mod:`schemas.rendering`).
format_option = output_options()
listing_options = output_options(limit=True)


def quiet_option(func: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="No progress or provenance on stderr.")(func)


@dataclasses.dataclass(frozen=True)
class Filters:
    """The selection an inspector asks for; every value is bound, never spliced into SQL."""

    unit: str | None = None
    unit_level: str | None = None
    procedure: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def describe(self) -> dict[str, str]:
        out = {
            "unit": self.unit,
            "unit_level": self.unit_level,
            "procedure": self.procedure,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }
        return {k: v for k, v in out.items() if v is not None}

    def dossier_condition(self, column: str = "dossier_id") -> tuple[str, dict[str, Any]]:
        """``<column> IN (dossiers matching the filters)`` and its parameters ('1' when unfiltered).

        A dossier matches by its reception event: received by ``--unit`` (or a unit
        of ``--unit-level``), for ``--procedure``, on a reception date in range.
        """
        if not any((self.unit, self.unit_level, self.procedure, self.date_from, self.date_to)):
            return "1", {}
        where = ["event_type = 'DossierReceived'"]
        params: dict[str, Any] = {}
        if self.unit:
            where.append("unit_code = {f_unit:String}")
            params["f_unit"] = self.unit
        if self.unit_level:
            where.append("unit_code IN (SELECT unit_code FROM units FINAL WHERE level = {f_level:String})")
            params["f_level"] = self.unit_level
        if self.procedure:
            where.append("procedure_code = {f_procedure:String}")
            params["f_procedure"] = self.procedure
        if self.date_from:
            where.append("toDate(occurred_at, 'Asia/Ho_Chi_Minh') >= {f_from:Date}")
            params["f_from"] = self.date_from
        if self.date_to:
            where.append("toDate(occurred_at, 'Asia/Ho_Chi_Minh') <= {f_to:Date}")
            params["f_to"] = self.date_to
        # Conditions are fixed text with bound placeholders; no input reaches the SQL text.
        return f"{column} IN (SELECT dossier_id FROM events WHERE {' AND '.join(where)})", params  # noqa: S608

    def require(self, store: Store) -> None:
        """Refuse (exit 1) a selection that matches no dossier, naming the filter that matched nothing.

        A report over nothing is not "no finding": an inspector who mistyped a unit code must be told.
        """
        scope, params = self.dossier_condition()
        if scope == "1":
            return
        sql = f"SELECT count() FROM events WHERE event_type = 'DossierReceived' AND {scope}"  # noqa: S608 (bound)
        if int(store.query(sql, params).scalar() or 0):
            return
        raise click.ClickException(self._nothing(store))

    def _nothing(self, store: Store) -> str:
        """Which filter alone matches no received dossier (or that only their combination matches none)."""
        alone = [
            (f"--unit {self.unit}", Filters(unit=self.unit)),
            (f"--unit-level {self.unit_level}", Filters(unit_level=self.unit_level)),
            (f"--procedure {self.procedure}", Filters(procedure=self.procedure)),
            (self._period(), Filters(date_from=self.date_from, date_to=self.date_to)),
        ]
        for label, one in alone:
            scope, params = one.dossier_condition()
            if scope == "1":
                continue
            sql = f"SELECT count() FROM events WHERE event_type = 'DossierReceived' AND {scope}"  # noqa: S608
            if not int(store.query(sql, params).scalar() or 0):
                known = ""
                if one.unit:
                    in_units = store.query("SELECT count() FROM units WHERE unit_code = {u:String}", {"u": one.unit})
                    known = "" if in_units.scalar() else " (the units catalogue does not know it either)"
                return (
                    f"{label}: no dossier in the store was received there{known}; nothing to report"
                    if (one.unit or one.unit_level)
                    else f"{label}: no dossier in the store matches it; nothing to report"
                )
        together = " ".join(label for label, one in alone if one.dossier_condition()[0] != "1")
        return f"no dossier matches {together} together (each matches some); nothing to report"

    def _period(self) -> str:
        first = self.date_from.isoformat() if self.date_from else "…"
        last = self.date_to.isoformat() if self.date_to else "…"
        return f"--from {first} --to {last}"


def nothing_matched(selection: Mapping[str, Any]) -> None:
    """A report whose filters matched nothing ends here (exit 1), naming them; without filters it is not an error."""
    given = {k: v for k, v in selection.items() if v and k in ("unit", "procedure", "from", "to")}
    if given:
        named = " ".join(f"--{k} {v.isoformat() if isinstance(v, date) else v}" for k, v in given.items())
        raise click.ClickException(f"{named}: no dossier in the store matches; nothing to report")


def date_range(date_from: datetime | None, date_to: datetime | None) -> tuple[date | None, date | None]:
    """The --from/--to dates of the command line, refused (exit 2) when --from is after --to."""
    if date_from and date_to and date_from > date_to:
        raise click.BadParameter("--from is after --to", param_hint="--from/--to")
    return (date_from.date() if date_from else None, date_to.date() if date_to else None)


def aware(value: datetime | None) -> datetime | None:
    """A command-line instant without an offset is read as UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def filter_options(func: F) -> F:
    """Add --unit, --unit-level, --procedure, --from, --to; the command receives ``filters: Filters``."""
    options = [
        click.option("--unit", help="Electronic unit code, e.g. 000.00.31.H29."),
        click.option("--unit-level", type=click.Choice(UNIT_LEVELS), help="Only units of this level."),
        click.option("--procedure", help="Procedure code (MaTTHC), e.g. 1.001776."),
        click.option(
            "--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="Received on or after (YYYY-MM-DD)."
        ),
        click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Received on or before (YYYY-MM-DD)."),
    ]

    def wrapper(*args: Any, unit: Any, unit_level: Any, procedure: Any, date_from: Any, date_to: Any, **kw: Any) -> Any:
        first, last = date_range(date_from, date_to)
        kw["filters"] = Filters(
            unit=unit or None, unit_level=unit_level, procedure=procedure or None, date_from=first, date_to=last
        )
        return func(*args, **kw)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    # Options declared by decorators applied below this one live on ``func``: keep them.
    wrapper.__click_params__ = list(getattr(func, "__click_params__", []))  # type: ignore[attr-defined]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def reader(settings: Settings) -> Iterator[Store]:
    """The store opened read-only, with store problems turned into one sentence (exit 1)."""
    try:
        store = open_store(settings, role="reader")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    kept = _kept_for_the_record(store, settings)
    try:
        yield store
    except StoreQueryError as exc:
        behind = _migrations_behind(store) if _SCHEMA_ERRORS.search(str(exc)) else None
        if behind:
            raise click.ClickException(behind) from None
        if "UNKNOWN_TABLE" in str(exc) or "Unknown table" in str(exc):
            raise click.ClickException(
                f"the store ({store.location}) has no event log yet: run `dossier consume migrate`, then load events "
                "(`dossier consume run` or `dossier consume load FILE…`)"
            ) from None
        raise click.ClickException(f"query failed: {exc}") from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if not kept:
            store.close()


#: What ClickHouse says when a query names a table or column the store does not have.
_SCHEMA_ERRORS: Final = re.compile(r"UNKNOWN_TABLE|UNKNOWN_IDENTIFIER|NO_SUCH_COLUMN_IN_TABLE|Missing columns")


def _migrations_behind(store: Store) -> str | None:
    """A sentence naming the migrations this version ships that the store has not had; None when it has them all.

    A query of this version can name what a later migration adds (a table, a column): on a store left behind
    it fails on that name, which says nothing to an inspector.
    """
    try:
        applied = {int(row[0]) for row in store.query("SELECT version FROM schema_migrations").rows}
    except StoreError:  # no migration table: a store never migrated (the caller says so)
        return None
    missing = [(version, name) for version, name, _sql in ddlfiles.shipped() if version not in applied]
    if not applied or not missing:
        return None
    names = ", ".join(ddlfiles.filename(*m).removesuffix(".sql") for m in missing)
    return (
        f"the store ({store.location}) has not had migration(s) {names} of this version of dossier-audit: "
        "run `dossier consume migrate` (with the loaders stopped), then this command again"
    )


def _kept_for_the_record(store: Store, settings: Settings) -> bool:
    """Hand ``store`` to the command's access session (True: the session closes it after recording the access).

    Fails closed: a store that cannot record this access is not read (exit 1, the store closed).
    """
    ctx = click.get_current_context(silent=True)
    session = ctx.meta.get(ACCESS_KEY) if ctx is not None else None
    if session is None:
        return False
    try:
        refusal = store.access_refusal()
    except StoreError as exc:
        refusal = str(exc)
    if refusal is not None:
        store.close()
        raise click.ClickException(f"not run, since this inspection could not be recorded in the access log: {refusal}")
    return bool(session.attach(store, settings))


def returned(rows: int) -> None:
    """Tell the command's access session how many rows the command returned."""
    ctx = click.get_current_context(silent=True)
    session = ctx.meta.get(ACCESS_KEY) if ctx is not None else None
    if session is not None:
        session.returned(rows)


def provenance(store: Store, *, dossiers: bool = True) -> dict[str, Any]:
    """What the store held when the report was computed.

    Counting the dossiers groups every event's id (about 11 of the 16-19 s this took at a year of the city,
    BENCHMARKS.md), so a command about one dossier, or a query of the inspector's own, leaves them out
    (``dossiers=False``: no "dossiers" key); the events, the latest event and the Kafka offsets pin the store's
    state either way.
    """
    counted = "uniqExact(dossier_id), " if dossiers else ""
    sql = f"SELECT count(), {counted}max(_ingested_at), max(recorded_at) FROM events"  # noqa: S608 (no input in it)
    totals = store.query(sql).rows[0]
    events, ingested, recorded = int(totals[0]), totals[-2], totals[-1]
    offsets = store.query(
        "SELECT _topic, _partition, max(_offset) FROM events WHERE _topic NOT LIKE 'file:%' "
        "GROUP BY _topic, _partition ORDER BY _topic, _partition"
    ).rows
    return {
        "store": store.location,
        "events": events,
        **({"dossiers": int(totals[1])} if dossiers else {}),
        "last_ingested_at": ingested.isoformat() if events else None,
        "last_recorded_at": recorded.isoformat() if events else None,
        "kafka_offsets": {f"{t}/{p}": int(o) for t, p, o in offsets},
    }


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str],
    computed_on: Mapping[str, Any],
    key: str = "rows",
    title: str | None = None,
    quiet: bool = False,
    hide_first: Sequence[str] = (),
) -> None:
    """Print a report's rows with its provenance, in the chosen format.

    A table fits the terminal and a listing is limited (``--wide``, ``--limit``; :func:`schemas.rendering.table_view`);
    ``hide_first`` names the columns to leave out first when the table cannot fit otherwise.
    """
    view = table_view(fmt)
    rows, more = limited(rows, view.limit)
    returned(len(rows))
    if fmt == "json":
        data = [{c: r.get(c) for c in columns} for r in rows]
        body = json.loads(render(data, "json", columns)) if data else []
        click.echo(json.dumps({"computed_on": computed_on, key: body}, ensure_ascii=False, indent=2, default=str))
        return
    if fmt == "table":
        if title:
            click.echo(wrapped(title, view.width))
        click.echo(provenance_block(computed_on, view.width))
        click.echo("")
        click.echo(
            render(rows, "table", columns, width=view.width, hide_first=hide_first) if rows else "(nothing found)"
        )
        if more:
            click.echo(more)
        return
    if not quiet:
        click.echo(describe_provenance(computed_on), err=True)
    if rows:
        click.echo(render(rows, fmt, columns))


#: Keys of a report's selection, named on one line of the table's header.
_SELECTION: Final = ("level", "unit", "unit_level", "procedure", "from", "to", "period", "by", "view", "top")
#: Left out of the table's header (the machine formats carry them): offsets, load times, per-rule detail.
_MACHINE_ONLY: Final = ("kafka_offsets", "last_ingested_at", "coverage", "indicators")


def describe_provenance(computed_on: Mapping[str, Any]) -> str:
    """The full record of what a report was computed on, one JSON line: on stderr beside a machine format."""
    return "computed on: " + json.dumps(computed_on, ensure_ascii=False, default=str)


def provenance_block(computed_on: Mapping[str, Any], width: int | None) -> str:
    """What a report was computed on, for people above a table: store, events, data as of, selection, rule versions
    and what the command adds, a line each, wrapped to ``width`` (None: not wrapped); the machine formats carry
    the full record (Kafka offsets, load times, coverage)."""
    lines = [("computed on", _stored(computed_on))]
    if computed_on.get("last_recorded_at"):
        lines.append(("data as of", f"{_local(computed_on['last_recorded_at'])} (the latest event recorded)"))
    if computed_on.get("as_of"):
        lines.append(("judged at", _local(computed_on["as_of"])))
    selection = {**{k: computed_on[k] for k in _SELECTION if computed_on.get(k)}, **(computed_on.get("filters") or {})}
    lines.append(("selection", ", ".join(f"{k} {_human(v)}" for k, v in selection.items()) or "every dossier"))
    if computed_on.get("rules"):
        by_version: dict[Any, list[str]] = {}
        for rule, version in computed_on["rules"].items():
            by_version.setdefault(version, []).append(rule)
        lines.append(("rules", "; ".join(f"v{v}: {', '.join(ids)}" for v, ids in by_version.items())))
    kept = len(lines)
    done = {"store", "events", "dossiers", "last_recorded_at", "as_of", "filters", "rules", *_SELECTION}
    lines += [
        (k.replace("_", " "), _human(v))
        for k, v in computed_on.items()
        if k not in done and k not in _MACHINE_ONLY and v not in (None, 0, "", {}, [])
    ]
    label = max(len(name) for name, _ in lines) + 2
    out = []
    for i, (name, text) in enumerate(lines):
        parts = textwrap.wrap(text, max(width - label, 20), break_on_hyphens=False) if width else [text]
        if i >= kept and len(parts) > 2:  # what a command adds takes two lines at most; --format json has it all
            parts = [parts[0], parts[1][: max(width or 0, 40) - label - 1] + "…"]
        out.append(f"{name:<{label}}{(parts or [''])[0]}")
        out.extend(" " * label + more for more in parts[1:])
    return "\n".join(out)


def _stored(computed_on: Mapping[str, Any]) -> str:
    events, dossiers = computed_on.get("events"), computed_on.get("dossiers")
    counts = f": {events:,} events" if isinstance(events, int) else ""
    if counts and isinstance(dossiers, int):
        counts += f" of {dossiers:,} dossiers"
    return f"{computed_on.get('store', 'the store')}{counts}"


def _local(instant: Any) -> str:
    """An ISO instant as Asia/Ho_Chi_Minh local time to the minute (as given when it does not parse)."""
    try:
        parsed = instant if isinstance(instant, datetime) else datetime.fromisoformat(str(instant))
    except ValueError:
        return str(instant)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(HCMC_TZ).strftime("%Y-%m-%d %H:%M +07")


def _human(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_human(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_human(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def exit_with_findings(found: bool, no_fail: bool) -> None:
    if found and not no_fail:
        sys.exit(EXIT_FINDINGS)
