"""What each part of storing a batch costs, and what two alternatives would: the levers of the live loader.

Run (from the repository root; any Avro container of events, a simulator file for instance)::

    .venv/bin/python -m bench.bench_store_parts /tmp/sim10m/events-00000.avro

On a fresh embedded store with the released migrations, the file's events are
staged once into a MergeTree table; then, best CPU seconds of three runs each:

* staging: the file into the loader's staging table, from Avro (what the owner
  does now) and from ClickHouse's Native format (what it would do if the
  reader converted the containers);
* each derived view's own statement (``INSERT INTO <target> <the view's
  SELECT>`` over the staged events), and the whole feed through
  ``events_feed`` with the views side by side (as the loader runs it) and one
  after another;
* daily counts: groups per event, and what keeping them in a table of their own
  would cost: 0004's ``daily_counts`` (a set of event-id hashes per group) or a
  plain ``count()`` (which a replayed batch would double). 0009's
  ``daily_events`` (one row per event) was among the views until migration
  0018, since which ``daily_counts_view`` counts ``events`` itself.

Every insert runs with the loader's ``optimize_on_insert=0``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.benchdata import fresh_store
from consumers.sink import FEED_COLUMNS, Sink, stored_columns
from dossier_runtime.store import Store
from schemas.events import FIELD_NAMES

_DAY_KEYS = (
    "toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, unit_code, procedure_code, channel, event_type AS outcome, status"
)
_DAY_GROUP = "day, unit_code, procedure_code, channel, outcome, status"
_DAY_COLUMNS = "day Date, unit_code String, procedure_code String, channel String, outcome String, status Int32"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _best(run: Callable[[], None], before: Callable[[], None] | None = None, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        started = _cpu()
        run()
        best = min(best, _cpu() - started)
    return best


def _line(what: str, cpu: float, events: int) -> None:
    print(f"  {what:58s} {cpu:6.3f} CPU-s  {1e6 * cpu / events:5.2f} µs/event")


def _views(store: Store) -> list[tuple[str, str]]:
    """(target table, SELECT over the staged events) of every materialized view on ``events_feed``."""
    rows = store.query(
        "SELECT name, as_select, arrayElement(dependencies_table, 1) FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY name"
    ).rows
    out = []
    for name, select, _ in rows:
        create = store.query(f"SHOW CREATE TABLE `{name}`").rows[0][0]
        target = str(create).split(" TO ", 1)[1].split()[0].split(".")[-1].strip("`")
        out.append((target, str(select).replace(f"{store.database}.events_feed", "stage")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path, help="an Avro container of dossier events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_store() as store:
        into, columns = stored_columns(FIELD_NAMES)
        sink = Sink(store)
        store.command("CREATE TABLE stage AS events ENGINE = MergeTree ORDER BY (dossier_id, seq)")
        store.command(
            f"INSERT INTO stage ({into}) SELECT {columns} FROM file({{path:String}}, 'Avro', {{structure:String}})",  # noqa: S608
            {"path": str(args.file), "structure": sink.file_structure()},
        )
        events = int(store.query("SELECT count() FROM stage").scalar())
        print(f"{events:,} events of {args.file}")

        native = Path(tmp) / "stage.native"
        store.command("INSERT INTO FUNCTION file({path:String}, 'Native') SELECT * FROM stage", {"path": str(native)})
        truncate = sink.truncate
        # Names come from code (the sink's staging table, the contract's fields); values are bound.
        avro = (
            f"INSERT INTO {sink.staging} ({into}, _topic, _partition, _offset) "  # noqa: S608
            f"SELECT {columns}, 't', 0, _row_number FROM file({{path:String}}, 'Avro', {{structure:String}})"
        )
        print("staging (the loader's staging table):")
        _line(
            "from Avro (now)",
            _best(lambda: store.command(avro, {"path": str(args.file), "structure": sink.file_structure()}), truncate),
            events,
        )
        from_native = f"INSERT INTO {sink.staging} SELECT * FROM file({{path:String}}, 'Native')"  # noqa: S608
        _line("from Native", _best(lambda: store.command(from_native, {"path": str(native)}), truncate), events)
        sink.close()

        print("derived views, each on its own, then the feed as the loader runs it:")
        for target, select in _views(store):

            def view(statement: str = f"INSERT INTO {target} {select}") -> None:
                store.command(statement, settings={"optimize_on_insert": 0})  # as the loader feeds the views

            _line(target, _best(view), events)
        feed = ", ".join(FEED_COLUMNS)
        for parallel, how in ((1, "side by side"), (0, "one after another")):

            def fed(parallel: int = parallel) -> None:
                store.command(
                    f"INSERT INTO events_feed ({feed}) SELECT {feed} FROM stage",  # noqa: S608 (names from code)
                    settings={"parallel_view_processing": parallel, "optimize_on_insert": 0},
                )

            _line(f"events_feed (every view, {how})", _best(fed), events)

        grouped = f"SELECT count() FROM (SELECT {_DAY_KEYS} FROM stage GROUP BY {_DAY_GROUP})"  # noqa: S608
        groups = int(store.query(grouped).scalar())
        print(f"daily counts: {groups:,} groups, {events / groups:.2f} events per group; kept otherwise:")
        store.command(
            f"CREATE TABLE hash_sets ({_DAY_COLUMNS}, event_ids AggregateFunction(uniqExact, UInt64)) ENGINE = "
            f"AggregatingMergeTree PARTITION BY toYYYYMM(day) ORDER BY ({_DAY_GROUP})"
        )
        sets = (
            f"INSERT INTO hash_sets SELECT {_DAY_KEYS}, uniqExactState(sipHash64(event_id)) "  # noqa: S608
            f"FROM stage GROUP BY {_DAY_GROUP}"
        )
        loader = {"optimize_on_insert": 0}
        _line("a set of event-id hashes per group (0004)", _best(lambda: store.command(sets, settings=loader)), events)
        store.command(
            f"CREATE TABLE counted ({_DAY_COLUMNS}, n SimpleAggregateFunction(sum, UInt64)) ENGINE = "
            f"AggregatingMergeTree PARTITION BY toYYYYMM(day) ORDER BY ({_DAY_GROUP})"
        )
        count = f"INSERT INTO counted SELECT {_DAY_KEYS}, count() AS n FROM stage GROUP BY {_DAY_GROUP}"  # noqa: S608
        _line(
            "count() (a replayed batch would count twice)", _best(lambda: store.command(count, settings=loader)), events
        )


if __name__ == "__main__":
    main()
