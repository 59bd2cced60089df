"""The SQL console: one read-only SELECT over the project's tables, checked, then run with limits.

ClickHouse's read-only mode alone is not enough: measured on chdb, `readonly=2` still lets a
SELECT read `file('/etc/passwd')`, override limits with `SETTINGS`, and write a file with
`INTO OUTFILE`. So the statement is parsed (sqlglot) and only a plain SELECT over an allow-list
of tables passes; what runs (on the workspace's read-only client) is the re-rendered statement
that was checked, never the raw text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp

from rta.compiler.ddl import ALERT_HISTORY_TABLE, STATS_TABLE
from rta.compiler.plan import Plan
from rta.errors import QueryError, did_you_mean

MAX_SQL_CHARS = 100_000
# Functions that reach outside the database (files, network, dictionaries with external sources).
DENIED_FUNCTIONS = ("file", "url", "remote", "s3", "hdfs", "azure", "gcs", "mysql", "postgres", "jdbc", "odbc", "mongo", "redis", "sqlite")
DENIED_EXACT = frozenset(
    {"input", "executable", "executablepool", "cluster", "clusterallreplicas", "joinget", "joingetornull", "dictionary"}
)


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    """Per-statement limits, enforced by ClickHouse on the read-only client."""

    max_seconds: int = 10
    max_rows: int = 100_000
    max_memory_bytes: int = 2_000_000_000

    def settings(self) -> dict[str, object]:
        """Settings of the read-only client (readonly=2 keeps ClickHouse's own writes possible, ours not)."""
        return {
            "readonly": 2,
            "max_execution_time": self.max_seconds,
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
        }


def table_aliases(plan: Plan) -> dict[str, str]:
    """Names analysts may use: stream names for raw events, ``<rollup>_<grain>``, and the real names."""
    names: dict[str, str] = {STATS_TABLE: STATS_TABLE, "ingest_stats": STATS_TABLE}
    for s in plan.streams:
        if s.raw_table:
            names[s.name] = s.raw_table
            names[s.raw_table] = s.raw_table
    for r in plan.rollups:
        for t in r.tables:
            names[f"{r.name}_{t.grain}"] = t.table
            names[t.table] = t.table
    if plan.definitions.alerts:
        names |= {"alert_history": ALERT_HISTORY_TABLE, ALERT_HISTORY_TABLE: ALERT_HISTORY_TABLE}
    return names


def _refuse(reason: str, hint: str = "") -> QueryError:
    return QueryError(f"refused: {reason}" + (f"; {hint}" if hint else ""))


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.this)
    if isinstance(node, exp.Func):
        return node.sql_name()
    return None


def check_sql(text: str, tables: Mapping[str, str]) -> exp.Expr:
    """The checked statement with table aliases resolved, or a QueryError that says why not."""
    if not isinstance(text, str) or not text.strip():
        raise _refuse("empty statement", "write one SELECT")
    if len(text) > MAX_SQL_CHARS:
        raise _refuse(f"the statement has {len(text):,} characters, over the limit of {MAX_SQL_CHARS:,}")
    try:
        statements = [s for s in sqlglot.parse(text, dialect="clickhouse") if s is not None]
    except sqlglot.errors.SqlglotError as err:
        raise _refuse(f"cannot parse the statement: {str(err).splitlines()[0]}", "only plain SELECT statements are accepted") from None
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements given", "send one SELECT at a time")
    (statement,) = statements
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise _refuse(f"{type(statement).__name__.upper()} statements are not allowed", "the console is read-only: SELECT only")
    ctes = {str(c.alias_or_name) for c in statement.find_all(exp.CTE)}
    for node in statement.walk():
        if isinstance(node, exp.Select | exp.SetOperation):
            for clause in ("settings", "format", "into"):
                if node.args.get(clause):
                    raise _refuse(f"a {clause.upper()} clause", "limits and output format are fixed by rta")
        if isinstance(node, exp.Command | exp.Insert | exp.Create | exp.Drop | exp.Alter | exp.Delete | exp.Update | exp.Set):
            raise _refuse(f"{type(node).__name__.upper()} inside the statement", "SELECT only")
        name = _function_name(node)
        if name is not None:
            lowered = name.lower()
            if lowered in DENIED_EXACT or lowered.startswith(("dict", "joinget")) or any(lowered.startswith(p) for p in DENIED_FUNCTIONS):
                raise _refuse(f"function {name!r} reaches outside the database")
        if isinstance(node, exp.Table):
            _check_table(node, tables, ctes)
    return statement


def _check_table(node: exp.Table, tables: Mapping[str, str], ctes: set[str]) -> None:
    if not isinstance(node.this, exp.Identifier):
        raise _refuse(f"table function {node.this.sql(dialect='clickhouse')[:60]!r}", "query the project's tables by name")
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        raise _refuse(f"table {node.sql(dialect='clickhouse')!r} is outside the project", "use the project's tables")
    name = node.name
    if name in ctes:
        return
    if name not in tables:
        raise _refuse(f"unknown table {name!r}", did_you_mean(name, sorted(tables)))
    node.set("this", exp.to_identifier(tables[name]))
