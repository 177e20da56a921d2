"""What an inspector's own SQL may do: an allow-list over ClickHouse's parse tree, and the limits it runs under.

``dossier inspect sql`` runs SQL typed by a person on the store that is the
evidence. The engine's ``readonly`` setting alone is not enough: on ClickHouse
26.9, ``readonly = 2`` lets ``INSERT INTO FUNCTION file(…)``/``url(…)`` write
files and send data out, and no ``readonly`` level stops the scalar ``file()``
from reading any file the engine's process can read (``/proc/self/environ``
included, where the secrets are). So the console accepts a statement only
when every part of ClickHouse's own parse of it (``parseQueryToJSON``) is on
an allow-list:

* the statement is a ``SELECT`` (with ``WITH``, ``UNION``, ``INTERSECT``,
  ``EXCEPT``, subqueries, joins, windows), an ``EXPLAIN`` of one, ``SHOW
  TABLES``/``SHOW COLUMNS`` of the store, or ``DESCRIBE`` of one of its tables
  (:func:`describe_target`);
* every node of the tree is of a kind listed in :data:`NODE_TYPES`; anything
  else, a ``SETTINGS`` clause, ``INTO OUTFILE`` or ``FORMAT`` included, is
  refused;
* every function is in ``data/console_functions.tsv``: pure functions of
  their arguments, reviewed from the engine's ``system.functions``; what
  reads files, the network, the server's state or configuration, or sleeps is
  in ``data/console_refused.tsv`` with the reason the inspector is told. A
  function in neither file (a newer engine's) is refused;
* every table function is a generator from :data:`TABLE_FUNCTIONS`
  (``numbers``, ``values`` …), never one that reaches a file or a server;
* every table is the store's own: a name qualified with another database
  (``system.processes``, ``INFORMATION_SCHEMA.tables``) is refused, in
  ``FROM`` and on the right of ``IN`` alike.

The checks read the tree, never the text, so case, quoting, comments and
nesting (subqueries, CTEs, lambdas, ``APPLY``) change nothing. The
statement that runs is the engine's formatting of the checked tree, and it
runs under :class:`ConsoleLimits` on a session where ``readonly = 1`` is set
after the limits, so it can change no setting, write nothing and call no
table function that reaches outside (the engine refuses those too).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Collection, Mapping
from importlib import resources
from typing import Any, Final

#: Table functions that only generate rows from their arguments.
TABLE_FUNCTIONS: Final = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generateseries", "generate_series", "primes"}
)

#: Kinds of parse-tree node a reading statement is made of (``parseQueryToJSON``'s ``type``).
NODE_TYPES: Final = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ExpressionList",
        "Identifier",
        "TableIdentifier",
        "Literal",
        "Function",
        "QueryParameter",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "QualifiedColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsListMatcher",
        "ColumnsTransformerList",
        "ColumnsExceptTransformer",
        "ColumnsReplaceTransformer",
        "ColumnsReplaceTransformerReplacement",
        "ColumnsApplyTransformer",
        "Subquery",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableExpression",
        "TableJoin",
        "ArrayJoin",
        "OrderByElement",
        "InterpolateElement",
        "WithElement",
        "WindowDefinition",
        "WindowListElement",
        "SampleRatio",
        "ExplainQuery",
        "ShowTablesQuery",
        "ShowColumnsQuery",
    }
)
EXPLAIN_KINDS: Final = frozenset(
    {
        "EXPLAIN",
        "EXPLAIN AST",
        "EXPLAIN SYNTAX",
        "EXPLAIN PLAN",
        "EXPLAIN PIPELINE",
        "EXPLAIN QUERY TREE",
        "EXPLAIN ESTIMATE",
    }
)
#: Keys of ``SHOW TABLES`` that keep it about the store's tables (``SHOW DATABASES``, ``SHOW SETTINGS`` … set others).
_SHOW_TABLES_KEYS: Final = frozenset({"type", "from", "like", "not_like", "case_insensitive_like", "limit_length"})
_SHOW_COLUMNS_KEYS: Final = frozenset({"type", "database", "table", "like", "not_like", "case_insensitive_like"})
_OUTFILE_FLAGS: Final = frozenset({"is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"})
#: Aggregate combinators (``system.aggregate_function_combinators``), longest first.
_COMBINATORS: Final = (
    "SimpleState",
    "MergeState",
    "OrDefault",
    "Resample",
    "Distinct",
    "ForEach",
    "ArgMin",
    "ArgMax",
    "OrNull",
    "State",
    "Merge",
    "Array",
    "Tuple",
    "Null",
    "Map",
    "If",
)
READING_STATEMENTS: Final = (
    "`dossier inspect sql` runs SELECT (with WITH, UNION, subqueries, joins), EXPLAIN, "
    "SHOW TABLES, SHOW COLUMNS and DESCRIBE; the store is changed only by `dossier consume …`"
)
_NAME: Final = r"`?[A-Za-z_][A-Za-z0-9_]*`?"
_DESCRIBE: Final = re.compile(
    rf"^\s*(?:DESCRIBE|DESC)(?:\s+TABLE)?\s+(?:(?P<db>{_NAME})\s*\.\s*)?(?P<table>{_NAME})\s*;?\s*$", re.IGNORECASE
)


#: Bounds of the limits an inspector may choose (``--timeout``, ``--max-memory``, ``--max-rows-to-read``).
TIMEOUT_RANGE: Final = (1, 3600)
MEMORY_RANGE: Final = (64 * 1024**2, 16 * 1024**3)
ROWS_TO_READ_RANGE: Final = (1, 100_000_000_000)


class ConsoleRefusal(ValueError):
    """A statement the console does not run; the message names the construct and says what to do instead."""


@dataclasses.dataclass(frozen=True)
class ConsoleLimits:
    """What one console query may spend. Defaults and bounds are documented in the README and ``--help``."""

    timeout_s: int = 60
    max_memory: int = 4 * 1024**3
    max_rows_to_read: int = 2_000_000_000
    max_result_rows: int = 100_000

    def settings(self) -> dict[str, str]:
        """The session settings, applied before ``readonly = 1`` locks them.

        One row more than asked is let through so the caller can tell a cut result from an exact one.
        """
        return {
            "max_execution_time": str(self.timeout_s),
            "timeout_overflow_mode": "throw",
            "max_memory_usage": str(self.max_memory),
            "max_rows_to_read": str(self.max_rows_to_read),
            "read_overflow_mode": "throw",
            "max_result_rows": str(self.max_result_rows + 1),
            "result_overflow_mode": "break",
            # events stores hash and prev_hash in one column (migration 0014) and shows them as ALIAS columns:
            # an inspector's SELECT * still lists them under their contract names.
            "asterisk_include_alias_columns": "1",
        }


@dataclasses.dataclass(frozen=True)
class _Catalogue:
    allowed: frozenset[str]
    allowed_ci: frozenset[str]  # lower-cased names the engine matches in any case
    aggregates: frozenset[str]
    aggregates_ci: frozenset[str]  # lower-cased aggregates the engine matches in any case
    refused: Mapping[str, str]  # lower-cased name -> reason


@functools.cache
def catalogue() -> _Catalogue:
    """The reviewed function lists shipped with the package."""
    data = resources.files("dossier_runtime") / "data"
    allowed, allowed_ci, aggregates = set(), set(), set()
    for line in (data / "console_functions.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, flags = line.partition("\t")
        allowed.add(name)
        marks = set(flags.split(","))
        if "ci" in marks:
            allowed_ci.add(name.lower())
        if "aggregate" in marks:
            aggregates.add(name)
    refused = {}
    for line in (data / "console_refused.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, reason = line.partition("\t")
            refused[name.lower()] = reason
    aggregates_ci = frozenset(a.lower() for a in aggregates if a.lower() in allowed_ci)
    return _Catalogue(frozenset(allowed), frozenset(allowed_ci), frozenset(aggregates), aggregates_ci, refused)


def function_refusal(name: str) -> str | None:
    """Why the function ``name`` may not run in the console, or None when it may."""
    cat = catalogue()
    reason = cat.refused.get(name.lower())
    if reason is not None:
        return f"function {name}() is not allowed: it {reason}"
    if name in cat.allowed or name.lower() in cat.allowed_ci or _aggregate_with_combinators(name, cat):
        return None
    return (
        f"function {name}() is not on the console's list of functions that only compute from their arguments; "
        "if it is one, it can be added to dossier_runtime/data/console_functions.tsv after review"
    )


def _aggregate_with_combinators(name: str, cat: _Catalogue) -> bool:
    """``countIf``, ``uniqExactStateIf``, ``sumMapMerge`` …: an allowed aggregate with combinator suffixes."""
    base = name
    while True:
        for suffix in _COMBINATORS:
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        else:
            return False
        if base in cat.aggregates or base.lower() in cat.aggregates_ci:
            return True


def check_tree(tree: Any, *, database: str, databases: Collection[str], tables: Collection[str]) -> None:
    """Refuse (:class:`ConsoleRefusal`) a parse tree that is not a reading statement over the store.

    ``database`` is the store's; ``databases`` every database the engine has (names qualified with any
    other are refused); ``tables`` the store's tables (for ``SHOW COLUMNS``).
    """
    if not isinstance(tree, dict):
        raise ConsoleRefusal("the query could not be read as one statement")
    kind = str(tree.get("type", ""))
    if kind not in {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "ExplainQuery", "ShowTablesQuery"} | {
        "ShowColumnsQuery"
    }:
        raise ConsoleRefusal(f"refused: {statement_name(kind)} is not a reading statement. {READING_STATEMENTS}")
    others = {d.lower() for d in databases if d != database}
    _Walker(database, others, frozenset(tables)).node(tree, "")


def statement_name(node_type: str) -> str:
    """``InsertQuery`` → ``INSERT``, ``KillQueryQuery`` → ``KILL QUERY``: what a person calls the statement."""
    words = re.findall(r"[A-Z][a-z]*", re.sub(r"Query$", "", node_type)) or [node_type]
    return " ".join(words).upper()


@dataclasses.dataclass(frozen=True)
class _Walker:
    database: str
    other_databases: frozenset[str] | set[str]
    tables: frozenset[str]

    def node(self, node: Any, key: str) -> None:
        if isinstance(node, list):
            for item in node:
                self.node(item, key)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind is None:  # a plain record inside a node (a join's kind, a window frame): look inside it
            for child_key, child in node.items():
                self.node(child, child_key)
            return
        kind = str(kind)
        if kind == "SetQuery":
            raise ConsoleRefusal(
                "SETTINGS clauses are not allowed: the console's limits are set with --timeout, --max-memory "
                "and --max-rows-to-read, and nothing else may change"
            )
        if kind not in NODE_TYPES:
            raise ConsoleRefusal(f"{statement_name(kind)} is not allowed inside a query. {READING_STATEMENTS}")
        {
            "Literal": self._value,
            "QueryParameter": self._parameter,
            "SelectWithUnionQuery": self._select,
            "ExplainQuery": self._explain,
            "Function": self._function,
            "ColumnsApplyTransformer": self._apply,
            "TableIdentifier": self._table,
            "Identifier": self._identifier,
            "ShowTablesQuery": self._show_tables,
            "ShowColumnsQuery": self._show_columns,
        }.get(kind, self._plain)(node, key)

    def _plain(self, node: dict[str, Any], key: str) -> None:
        for child_key, child in node.items():
            if child_key != "type":
                self.node(child, child_key)

    def _value(self, node: dict[str, Any], key: str) -> None:
        return None  # a literal: a value, never SQL

    def _parameter(self, node: dict[str, Any], key: str) -> None:
        if str(node.get("param_type", "")).strip().lower() == "identifier":
            raise ConsoleRefusal(
                f"{{{node.get('name')}:Identifier}} is not allowed: a value would choose a table or column; "
                "write the name in the query and bind values only"
            )

    def _select(self, node: dict[str, Any], key: str) -> None:
        if node.get("out_file") is not None or node.get("is_into_outfile_with_stdout"):
            raise ConsoleRefusal("INTO OUTFILE is not allowed: use --format and redirect stdout instead")
        if node.get("format_ast") is not None:
            raise ConsoleRefusal("drop the FORMAT clause: choose the output with --format")
        self._plain({k: v for k, v in node.items() if k not in _OUTFILE_FLAGS}, key)

    def _explain(self, node: dict[str, Any], key: str) -> None:
        if node.get("kind") not in EXPLAIN_KINDS:
            raise ConsoleRefusal(f"{node.get('kind')} is not allowed: EXPLAIN [AST|SYNTAX|PLAN|PIPELINE] SELECT … is")
        if node.get("settings") is not None:
            raise ConsoleRefusal("EXPLAIN options are not allowed: write EXPLAIN [AST|SYNTAX|PLAN|PIPELINE] SELECT …")
        self._plain(node, key)

    def _function(self, node: dict[str, Any], key: str) -> None:
        name = str(node.get("name", ""))
        if key == "table_function":
            if name.lower() not in TABLE_FUNCTIONS:
                raise ConsoleRefusal(
                    f"table function {name}() is not allowed: it reads outside the store (files, network, other "
                    "servers). Query the store's tables: events, dossier_state, daily_counts_view, units, "
                    "officials, procedures"
                )
        else:
            reason = function_refusal(name)
            if reason is not None:
                raise ConsoleRefusal(reason)
        self._plain(node, key)

    def _apply(self, node: dict[str, Any], key: str) -> None:
        name = node.get("func_name")
        if name is not None:
            reason = function_refusal(str(name))
            if reason is not None:
                raise ConsoleRefusal(reason)
        self._plain(node, key)

    def _table(self, node: dict[str, Any], key: str) -> None:
        parts = [str(p) for p in node.get("name_parts") or [node.get("name", "")]]
        qualified = len(parts) == 2 and parts[0] == self.database and "." not in parts[1]
        if (len(parts) > 1 and not qualified) or (len(parts) == 1 and "." in parts[0]):
            raise ConsoleRefusal(
                f"table {'.'.join(parts)} is not in the store: the console reads the store's own tables "
                f"(database {self.database}), nothing else on the server"
            )
        self._plain(node, key)  # a name from a placeholder: {t:Identifier}

    def _identifier(self, node: dict[str, Any], key: str) -> None:
        parts = [str(p) for p in node.get("name_parts") or []]
        if len(parts) > 1 and parts[0].lower() in self.other_databases:
            raise ConsoleRefusal(
                f"{'.'.join(parts)} reads database {parts[0]}, not the store: the console reads the store's own "
                f"tables (database {self.database}), nothing else on the server"
            )
        self._plain(node, key)

    def _show_tables(self, node: dict[str, Any], key: str) -> None:
        extra = set(node) - _SHOW_TABLES_KEYS - _OUTFILE_FLAGS
        if extra:
            raise ConsoleRefusal(f"only SHOW TABLES of the store is allowed, not SHOW {sorted(extra)[0].upper()}")
        source = node.get("from")
        if source is not None and (not isinstance(source, dict) or source.get("name") != self.database):
            raise ConsoleRefusal(f"SHOW TABLES lists the store's tables only: drop FROM (database {self.database})")
        self._plain({k: v for k, v in node.items() if k not in _OUTFILE_FLAGS | {"from"}}, key)

    def _show_columns(self, node: dict[str, Any], key: str) -> None:
        extra = set(node) - _SHOW_COLUMNS_KEYS - _OUTFILE_FLAGS
        if extra:
            raise ConsoleRefusal(f"SHOW COLUMNS with {sorted(extra)[0].upper()} is not allowed: SHOW COLUMNS FROM t is")
        if node.get("database") not in (None, "", self.database) or node.get("table") not in self.tables:
            raise ConsoleRefusal(f"SHOW COLUMNS works on the store's tables: {', '.join(sorted(self.tables))}")


def describe_target(sql: str, *, database: str, tables: Collection[str]) -> str | None:
    """The table of ``DESCRIBE [TABLE] name`` (the engine gives no JSON parse of it), or None for another statement.

    Only a plain name of one of the store's tables is accepted; the statement that runs is rebuilt from it.
    """
    match = _DESCRIBE.match(sql)
    if match is None:
        return None
    db = (match.group("db") or "").strip("`")
    table = match.group("table").strip("`")
    if db not in ("", database) or table not in tables:
        raise ConsoleRefusal(f"DESCRIBE works on the store's tables: {', '.join(sorted(tables))}")
    return table
