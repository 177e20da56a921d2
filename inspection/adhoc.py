"""Ad-hoc read-only SQL for inspectors who know SQL (``dossier inspect sql``).

Safety rests on ClickHouse itself: the reader's session is ``readonly = 2``,
so any write, DDL or attempt to lift ``readonly`` is refused by the server
(``Code: 164 … READONLY``), and that refusal becomes a plain sentence here.
Two things ``readonly`` does not stop are checked on ClickHouse's own parse
of the query (``EXPLAIN AST``), not with regular expressions:

* ``INTO OUTFILE`` writes a file on the machine running the engine;
* table functions that reach outside the store (``file``, ``url``, ``s3``,
  ``remote``, ``mysql`` …) read local files or the network. Only the
  generators in :data:`SAFE_TABLE_FUNCTIONS` are allowed.

The query is first normalised by ClickHouse's own formatter (``formatQuery``),
which refuses more than one statement; the checked, normalised text is what
runs, so nothing after a ``;`` can slip past the checks.

Values come in as ``--param name=value`` and are bound to the query's own
``{name:Type}`` placeholders: ClickHouse parses each value as the type the
placeholder names, so a value never becomes SQL.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

from dossier_runtime.store import QueryResult, Store, StoreQueryError

READONLY_CODE: Final = 164
UNKNOWN_PARAMETER_CODE: Final = 456
SAFE_TABLE_FUNCTIONS: Final = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generateseries", "generate_series", "null"}
)
DEFAULT_MAX_ROWS: Final = 100_000
_PARAM_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AST_LINE: Final = re.compile(r"^( *)(\S+)(?: (\S+))?")


class AdhocQueryError(ValueError):
    """A query refused before or by ClickHouse; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class AdhocResult:
    result: QueryResult
    truncated: bool
    max_rows: int


def parse_params(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``name=value`` pairs; the value stays a string that ClickHouse parses as the placeholder's type."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _PARAM_NAME.match(name):
            raise AdhocQueryError(
                f"--param {pair!r}: expected NAME=VALUE with NAME a placeholder name, e.g. unit=000.00.31.H29"
            )
        out[name] = value
    return out


def check_query(store: Store, sql: str, params: Mapping[str, str]) -> None:
    """Refuse INTO OUTFILE and table functions that leave the store, from ClickHouse's own parse tree."""
    try:
        lines = [str(row[0]) for row in store.query("EXPLAIN AST " + sql, dict(params)).rows]
    except StoreQueryError as exc:
        raise AdhocQueryError(explain_error(exc)) from None
    parents: list[tuple[int, str]] = []  # (indent, node kind) of the ancestors of the current line
    for line in lines:
        match = _AST_LINE.match(line)
        if match is None:
            continue
        indent, kind, name = len(match.group(1)), match.group(2), (match.group(3) or "")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        parent = parents[-1][1] if parents else ""
        if kind == "Function" and parent == "TableExpression" and name.lower() not in SAFE_TABLE_FUNCTIONS:
            raise AdhocQueryError(
                f"table function {name}() is not allowed: it reads outside the store (files, network, other "
                "servers). Query the store's tables: events, dossier_state, daily_counts_view, units, officials, "
                "procedures"
            )
        if indent == 1 and parents and parents[0][1].startswith("Select"):
            if kind == "Literal":
                raise AdhocQueryError("INTO OUTFILE is not allowed: use --format and redirect stdout instead")
            if kind == "Identifier":
                raise AdhocQueryError("drop the FORMAT clause: choose the output with --format")
        parents.append((indent, kind))


def explain_error(exc: StoreQueryError) -> str:
    """ClickHouse's refusal as a sentence an inspector can act on."""
    text = str(exc)
    code = getattr(exc, "code", None)
    if code == READONLY_CODE or "READONLY" in text:
        return (
            "refused: inspector sessions are read-only, so this statement would change the store. "
            "`dossier inspect sql` runs queries that read (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN); "
            "the store is changed only by `dossier consume …`"
        )
    if code == UNKNOWN_PARAMETER_CODE or "UNKNOWN_QUERY_PARAMETER" in text:
        missing = re.search(r"Substitution `([^`]+)` is not set", text)
        name = missing.group(1) if missing else "NAME"
        return f"the query has a placeholder {{{name}:Type}} without a value: add --param {name}=VALUE"
    return f"query failed: {text}"


def normalise(store: Store, sql: str) -> str:
    """ClickHouse's formatting of the one statement in ``sql`` (more than one is refused)."""
    try:
        return str(store.query("SELECT formatQuery({q:String})", {"q": sql}).scalar())
    except StoreQueryError as exc:
        if "Multi-statements" in str(exc):
            raise AdhocQueryError("one statement at a time: remove the ';' and what follows it") from None
        text = str(exc).split(": In scope SELECT formatQuery", 1)[0]
        raise AdhocQueryError(f"query failed: {text}") from None


def run_query(store: Store, sql: str, params: Mapping[str, str], *, max_rows: int = DEFAULT_MAX_ROWS) -> AdhocResult:
    """Normalise, check, then run one read-only query; at most ``max_rows`` rows come back."""
    if not sql.strip():
        raise AdhocQueryError('no query given: dossier inspect sql "SELECT …"')
    sql = normalise(store, sql)
    check_query(store, sql, params)
    settings = {"max_result_rows": max_rows + 1, "result_overflow_mode": "break"}
    try:
        result = store.query(sql, dict(params), settings=settings)
    except StoreQueryError as exc:
        raise AdhocQueryError(explain_error(exc)) from None
    truncated = len(result.rows) > max_rows
    if truncated:
        result = QueryResult(result.column_names, result.rows[:max_rows])
    return AdhocResult(result, truncated, max_rows)
