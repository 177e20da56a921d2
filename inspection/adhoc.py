"""Ad-hoc read-only SQL for inspectors who know SQL (``dossier inspect sql``).

A statement goes through four steps. The first three run on the store's own
engine when it has ClickHouse's parser (26.9: the embedded store, the
loader's endpoint, a 26.9 server), so what is checked is what runs. A server
of 26.3 to 26.8 has none; there they run on this client's chDB
(:mod:`dossier_runtime.sqlparser`) and the server gets the formatted text.
Where the two releases' grammars differ, the server may refuse that text
(ClickHouse's own error) or, in principle, read it otherwise; it runs on
step 4's locked session all the same.

1. ClickHouse parses it into a tree (``parseQueryToJSON``); more than one
   statement, or a statement the engine cannot express as a tree (``GRANT``,
   ``KILL``, ``SHOW PROCESSLIST`` …), is refused.
2. The tree is checked against the allow-list of
   :mod:`dossier_runtime.sqlguard` (reading statements, pure functions,
   generator table functions, the store's own tables).
3. The engine formats the checked tree back into SQL (``formatQueryFromJSON``)
   and parses that text again; the two trees must be equal, so a quirk of the
   formatter cannot turn the checked statement into another one.
4. That text runs through :meth:`Store.query_console`: a session of its own,
   with :class:`ConsoleLimits` set and then ``readonly = 1``.

``DESCRIBE [TABLE] t``, which the engine cannot express as a tree, is matched
on its text, and the statement that runs is rebuilt from the table's name.

Values come in as ``--param name=value`` and are bound to the query's own
``{name:Type}`` placeholders: ClickHouse parses each value as the type the
placeholder names, so a value never becomes SQL.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from dossier_runtime import sqlparser
from dossier_runtime.sqlguard import (
    READING_STATEMENTS,
    ConsoleLimits,
    ConsoleRefusal,
    check_tree,
    describe_target,
    statement_name,
)
from dossier_runtime.store import QueryResult, Store, StoreQueryError

READONLY_CODE: Final = 164
UNKNOWN_PARAMETER_CODE: Final = 456
TOO_MANY_ROWS_CODE: Final = 158
TIMEOUT_CODE: Final = 159
MEMORY_CODE: Final = 241
DEFAULT_MAX_ROWS: Final = ConsoleLimits.max_result_rows
_PARAM_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The engine's words for a statement it cannot give as a tree (then not a reading one): its kind, or INSERT … VALUES.
_NO_TREE: Final = re.compile(
    r"AST node of type '([^']+)' does not support JSON serialization|INSERT with inline data is not supported"
)
_STORE_SQL: Final = """
SELECT currentDatabase(),
       (SELECT groupArray(name) FROM system.databases),
       (SELECT groupArray(name) FROM system.tables WHERE database = currentDatabase()),
       version(),
       (SELECT count() FROM system.functions WHERE name IN ('parseQueryToJSON', 'formatQueryFromJSON'))
"""


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


def explain_error(exc: StoreQueryError, limits: ConsoleLimits | None = None) -> str:
    """ClickHouse's refusal as a sentence an inspector can act on."""
    text = str(exc).split(": In scope SELECT parseQueryToJSON", 1)[0]
    code = getattr(exc, "code", None)
    if code == READONLY_CODE or "READONLY" in text:
        return f"refused: inspector sessions are read-only. {READING_STATEMENTS}"
    if code == UNKNOWN_PARAMETER_CODE or "UNKNOWN_QUERY_PARAMETER" in text:
        missing = re.search(r"Substitution `([^`]+)` is not set", text)
        name = missing.group(1) if missing else "NAME"
        return f"the query has a placeholder {{{name}:Type}} without a value: add --param {name}=VALUE"
    if limits is not None and (code == TIMEOUT_CODE or "TIMEOUT_EXCEEDED" in text):
        return f"stopped after {limits.timeout_s} s (--timeout): narrow the query, or raise --timeout (at most 3600)"
    if limits is not None and (code == MEMORY_CODE or "MEMORY_LIMIT_EXCEEDED" in text):
        return (
            f"stopped: the query needs more than {limits.max_memory / 1024**3:g} GiB of memory (--max-memory); "
            "narrow it, or raise --max-memory (at most 16G)"
        )
    if limits is not None and (code == TOO_MANY_ROWS_CODE or "TOO_MANY_ROWS" in text):
        return (
            f"stopped: the query reads more than {limits.max_rows_to_read:,} rows (--max-rows-to-read); "
            "narrow it, or raise --max-rows-to-read"
        )
    return f"query failed: {text}"


def _parser(store: Store, version: str, functions: int) -> Store:
    """The engine that parses and formats: the store's own when it can, else this client's chDB."""
    if functions == len(sqlparser.FUNCTIONS):
        return store
    try:
        return sqlparser.local_parser()
    except sqlparser.ParserUnavailableError as exc:
        raise AdhocQueryError(
            f"the store's ClickHouse ({version}) cannot parse a query into a tree (parseQueryToJSON, ClickHouse "
            f"26.9 and later), which the console needs to check a query, and {exc}; it runs none. Use the "
            "inspection commands, or a ClickHouse client with the inspector's read-only user"
        ) from None


def _parse(engine: Store, sql: str) -> tuple[str, Any]:
    """The engine's parse of ``sql`` as (JSON text, tree)."""
    try:
        text, utf8 = engine.query("SELECT parseQueryToJSON({q:String}) AS t, isValidUTF8(t)", {"q": sql}).rows[0]
    except StoreQueryError as exc:
        message = str(exc)
        if "Multi-statements" in message:
            raise AdhocQueryError("one statement at a time: remove the ';' and what follows it") from None
        no_tree = _NO_TREE.search(message)
        if no_tree:
            kind = statement_name(no_tree.group(1).split("__", 1)[0].split("_", 1)[0]) if no_tree.group(1) else "INSERT"
            raise AdhocQueryError(f"refused: {kind} is not a reading statement. {READING_STATEMENTS}") from None
        raise AdhocQueryError(explain_error(exc)) from None
    if not utf8:
        raise AdhocQueryError(
            "the query holds bytes that are not UTF-8 (an x'…' or b'…' literal?): write them with unhex('…')"
        )
    try:
        return str(text), json.loads(str(text))
    except ValueError:
        raise AdhocQueryError("the query could not be read as one statement") from None


def check_query(store: Store, sql: str) -> str:
    """The statement to run for ``sql``, after the checks of the module docstring; :class:`AdhocQueryError` if none."""
    if not sql.strip():
        raise AdhocQueryError('no query given: dossier inspect sql "SELECT …"')
    database, databases, tables, version, functions = store.query(_STORE_SQL).rows[0]
    try:
        table = describe_target(sql, database=str(database), tables=[str(t) for t in tables])
        if table is not None:
            return f"DESCRIBE TABLE `{table}`"
        engine = _parser(store, str(version), int(functions))
        text, tree = _parse(engine, sql)
        check_tree(tree, database=str(database), databases=[str(d) for d in databases], tables=tables)
    except ConsoleRefusal as exc:
        raise AdhocQueryError(str(exc)) from None
    try:
        formatted = str(engine.query("SELECT formatQueryFromJSON({t:String})", {"t": text}).scalar())
    except StoreQueryError as exc:
        raise AdhocQueryError(explain_error(exc)) from None
    if _parse(engine, formatted)[1] != tree:
        raise AdhocQueryError("the console could not confirm what this query does once formatted; rewrite it")
    return formatted


def run_query(store: Store, sql: str, params: Mapping[str, str], *, limits: ConsoleLimits | None = None) -> AdhocResult:
    """Check, then run one read-only query under ``limits``; at most ``limits.max_result_rows`` rows come back."""
    limits = limits or ConsoleLimits()
    statement = check_query(store, sql)
    try:
        result = store.query_console(statement, dict(params), limits)
    except StoreQueryError as exc:
        raise AdhocQueryError(explain_error(exc, limits)) from None
    truncated = len(result.rows) > limits.max_result_rows
    if truncated:
        result = QueryResult(result.column_names, result.rows[: limits.max_result_rows])
    return AdhocResult(result, truncated, limits.max_result_rows)
