"""The SQL console: one read-only SELECT over the project's tables, checked, then run with limits.

ClickHouse's read-only mode alone is not enough: measured on chdb, `readonly=2` still lets a
SELECT read `file('/etc/passwd')`, override limits with `SETTINGS`, and write a file with
`INTO OUTFILE`. So the statement is parsed (sqlglot) and passes only through allow-lists:

- one plain SELECT (or UNION of them), without SETTINGS, FORMAT or INTO;
- tables resolved by scope (sqlglot's `traverse_scope`): a CTE name stands for the CTE only in
  the query whose WITH defines it and in that query's subqueries; anywhere else the same name is a
  table and must be one of the project's. No table function (VALUES rows aside), no other
  database, no bare name after IN (ClickHouse reads it as a table), no query parameters;
- functions by their ClickHouse name (`rta.query.console_functions`, aggregates with their combinators);
  calls written as syntax (CASE, CAST, `[...]`, AND, EXISTS, ...) by node type.

What runs (on the workspace's read-only client) is the re-rendered statement that was checked,
never the raw text: every table carries its real name and every CTE a fresh one, so ClickHouse
cannot resolve a name to something the check did not. The rendering is parsed and checked once
more, so no function or table appears in it that the check did not pass. ``SHOW TABLES`` lists the
names it takes (:mod:`rta.query.console_show`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel
from sqlglot.optimizer.scope import Scope, traverse_scope

from rta.compiler.ddl import ALERT_HISTORY_TABLE, STATS_TABLE
from rta.compiler.people_ddl import ALIASES_TABLE, TRAITS_TABLE, has_people
from rta.compiler.plan import Plan
from rta.errors import QueryError, did_you_mean
from rta.query.console_functions import check_function, check_name, refusal
from rta.query.console_show import is_show_tables, refuse_before_parsing, show_tables

MAX_SQL_CHARS = 100_000


_WRITES = (exp.Command, exp.Insert, exp.Create, exp.Drop, exp.Alter, exp.Delete, exp.Update, exp.Set)
_NOT_VISIBLE = "a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it"


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
    """Names analysts may use: stream names for raw events, ``<stream>_sessions(_1m)``, ``<rollup>_<grain>``, and the real names."""
    names: dict[str, str] = {STATS_TABLE: STATS_TABLE, "ingest_stats": STATS_TABLE}
    for s in plan.streams:
        if s.raw_table:
            names[s.name] = s.raw_table
            names[s.raw_table] = s.raw_table
        if s.sessions:  # the flow's signed visit rows (rta/flows/sessions.py): <stream>_sessions
            names[f"{s.name}_sessions"] = s.sessions.table
            names[s.sessions.table] = s.sessions.table
            names[f"{s.name}_sessions_1m"] = s.sessions.rollup  # their signed sums per minute
            names[s.sessions.rollup] = s.sessions.rollup
    for r in plan.rollups:
        for t in r.tables:
            names[f"{r.name}_{t.grain}"] = t.table
            names[t.table] = t.table
    if plan.definitions.alerts:
        names |= {"alert_history": ALERT_HISTORY_TABLE, ALERT_HISTORY_TABLE: ALERT_HISTORY_TABLE}
    if has_people(plan.streams):  # traits and aliases (erasure records stay out: they are not analysts' data)
        names |= {"person_traits": TRAITS_TABLE, TRAITS_TABLE: TRAITS_TABLE, "person_aliases": ALIASES_TABLE, ALIASES_TABLE: ALIASES_TABLE}
    return names


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def check_sql(text: str, tables: Mapping[str, str]) -> exp.Expr:
    """The checked statement with tables and CTEs renamed, or a QueryError that says why not."""
    if not isinstance(text, str) or not text.strip():
        raise refusal("empty statement", "write one SELECT")
    if len(text) > MAX_SQL_CHARS:
        raise refusal(f"the statement has {len(text):,} characters, over the limit of {MAX_SQL_CHARS:,}")
    try:
        statement = show_tables(tables) if is_show_tables(text) else _parse(text)
        for node in statement.walk():  # comments are not re-rendered: nothing ClickHouse could parse otherwise
            node.pop_comments()
        _check(statement, tables)
        rendered = statement.sql(dialect="clickhouse", unsupported_level=ErrorLevel.RAISE)
        _check(_parse(rendered), {**tables, **{real: real for real in tables.values()}})  # what runs passes too
    except QueryError:
        raise
    except sqlglot.errors.UnsupportedError as err:  # rendering would drop part of it
        raise refusal(f"the console cannot pass it on unchanged: {_first_line(err)}", "write it another way") from None
    except RecursionError:  # sqlglot parses and renders recursively
        raise refusal("the statement nests too deeply to parse", "flatten it or split it in steps") from None
    except Exception as err:  # a statement the checker cannot follow is refused, never run (nor a 500)
        raise refusal(f"the statement could not be checked ({type(err).__name__}: {_first_line(err)})", "simplify it") from None
    return statement


def _parse(text: str) -> exp.Expr:
    refuse_before_parsing(text)  # SHOW, DESCRIBE, several statements: sqlglot would warn about what it cannot parse
    try:
        statements = [s for s in sqlglot.parse(text, dialect="clickhouse") if s is not None]
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, TypeError, AttributeError) as err:
        # sqlglot also raises plain IndexError/ValueError on some malformed calls, e.g. `map(x)`.
        raise refusal(f"cannot parse the statement: {_first_line(err)}", "only plain SELECT statements are accepted") from None
    if len(statements) != 1:
        raise refusal(f"{len(statements)} statements given", "send one SELECT at a time")
    (statement,) = statements
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise refusal(f"{type(statement).__name__.upper()} statements are not allowed", "the console is read-only: SELECT only")
    return statement


def _check(statement: exp.Expr, tables: Mapping[str, str]) -> None:
    for node in statement.walk():
        if isinstance(node, exp.Select | exp.SetOperation):
            for clause in ("settings", "format", "into"):
                if node.args.get(clause):
                    raise refusal(f"a {clause.upper()} clause", "limits and output format are fixed by rta")
        if isinstance(node, _WRITES):
            raise refusal(f"{type(node).__name__.upper()} inside the statement", "SELECT only")
        if isinstance(node, exp.Placeholder):
            raise refusal(f"a query parameter {node.sql(dialect='clickhouse')!r}", "the console takes no parameters: write the value")
        if isinstance(node, exp.From) or (isinstance(node, exp.Join) and node.text("kind").upper() != "ARRAY"):
            _check_source(node.this)
    _resolve_tables(statement, tables)
    for node in statement.walk():
        if isinstance(node, exp.In):
            _check_in(node)
        elif isinstance(node, exp.Apply):  # `* APPLY(f)` calls f on every column; `APPLY(x -> ...)` is checked inside
            if isinstance(node.expression, exp.Var | exp.Identifier | exp.Column):
                check_name(node.expression.name)
        elif isinstance(node, exp.Func):
            check_function(node)


def _resolve_tables(statement: exp.Expr, tables: Mapping[str, str]) -> None:
    """Rename each table to its real name and each CTE (and its uses) to a fresh one, by scope."""
    try:
        scopes = traverse_scope(statement)
    except Exception as err:  # sqlglot's OptimizeError, e.g. for one alias used twice in a FROM
        raise refusal(f"cannot resolve the statement's tables: {_first_line(err)}", "give each source in a FROM its own alias") from None
    fresh = _fresh_cte_names(statement)
    ctes = {c.alias: bool(c.args.get("scalar")) for c in statement.find_all(exp.CTE)}
    renames: dict[int, tuple[exp.Table, str]] = {}
    for scope in scopes:
        for table in scope.tables:
            cte = _visible_cte(scope, table)
            renames[id(table)] = (table, fresh[id(cte)] if cte is not None else _real_table(table, tables, ctes))
    for node in statement.find_all(exp.Table):
        if id(node) not in renames:  # fail closed: a table no scope accounts for, e.g. inside `(a JOIN b)`
            raise refusal(f"cannot tell which table {node.sql(dialect='clickhouse')[:60]!r} reads", "write joins without parentheses")
    for table, name in renames.values():
        _rename(table, name)
    for cte in statement.find_all(exp.CTE):
        if id(cte) in fresh:
            cte.args["alias"].set("this", exp.to_identifier(fresh[id(cte)]))


def _check_source(source: exp.Expr) -> None:
    # Fail closed: sqlglot parses a FROM inside ARRAY JOIN (SELECT ... FROM t) as a column `t`, which
    # no scope counts as a table; a FROM or JOIN reads a table, a subquery or VALUES, nothing else.
    inner = source.this if isinstance(source, exp.Final) else source
    if not isinstance(inner, exp.Table | exp.Subquery | exp.Values):
        join, array_join = source.find_ancestor(exp.Join), False
        while join is not None and not array_join:
            array_join, join = join.text("kind").upper() == "ARRAY", join.find_ancestor(exp.Join)
        hint = "compute the array in a CTE and ARRAY JOIN its column" if array_join else "write FROM table or FROM (SELECT ...)"
        raise refusal(f"cannot tell which table {source.sql(dialect='clickhouse')[:60]!r} reads", hint)


def _fresh_cte_names(statement: exp.Expr) -> dict[int, str]:
    # Fresh names start with an underscore, which no table of the project does (they start with rta_).
    fresh: dict[int, str] = {}
    for with_ in statement.find_all(exp.With):
        seen: set[str] = set()
        for cte in with_.expressions:
            if cte.alias in seen:
                raise refusal(f"the CTE name {cte.alias!r} is defined twice in one WITH", "give each CTE its own name")
            seen.add(cte.alias)
            if not cte.args.get("scalar"):
                fresh[id(cte)] = f"_cte{len(fresh) + 1}_{cte.alias}"
    return fresh


def _visible_cte(scope: Scope, table: exp.Table) -> exp.CTE | None:
    """The CTE this table reference names, as sqlglot resolves it (innermost visible WITH)."""
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return None
    source = scope.cte_sources.get(table.name)
    cte = source.expression.find_ancestor(exp.CTE) if isinstance(source, Scope) else None
    # Measured on chdb: `WITH (SELECT 1) AS t SELECT * FROM t` reads the table t, so a scalar
    # WITH never names a table (sqlglot's scope would take it for one).
    if cte is None or cte.args.get("scalar") or cte.alias != table.name:
        return None
    return cte


def _real_table(table: exp.Table, tables: Mapping[str, str], ctes: Mapping[str, bool]) -> str:
    if isinstance(table.this, exp.Func):
        raise refusal(f"table function {table.this.sql(dialect='clickhouse')[:60]!r}", "query the project's tables by name")
    if not isinstance(table.this, exp.Identifier):
        raise refusal(f"table {table.this.sql(dialect='clickhouse')[:60]!r} is not a name", "query the project's tables by name")
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        raise refusal(f"table {table.sql(dialect='clickhouse')!r} is outside the project", "use the project's tables")
    name = table.name
    if name not in tables:
        if name not in ctes:
            hint = did_you_mean(name, sorted(tables))
        elif ctes[name]:
            hint = f"WITH (...) AS {name} names a value, not a table; write WITH {name} AS (SELECT ...)"
        else:
            hint = f"{name!r} names a CTE that is not visible here: {_NOT_VISIBLE}"
        raise refusal(f"unknown table {name!r}", hint)
    return tables[name]


def _rename(table: exp.Table, name: str) -> None:
    if table.name == name:
        return
    if not table.alias:  # keeps `events.country` and `t.n` pointing at the renamed source
        table.set("alias", exp.TableAlias(this=table.this.copy()))
    table.set("this", exp.to_identifier(name))


def _check_in(node: exp.In) -> None:
    # Measured on chdb: `x IN t` and `x IN (t)` read the table (or CTE) t, so a bare name after IN
    # would be a table read the scope check never sees.
    rhs = node.args.get("field") or (node.expressions[0] if len(node.expressions) == 1 else None)
    while isinstance(rhs, exp.Paren):
        rhs = rhs.this
    if isinstance(rhs, exp.Column | exp.Dot | exp.Identifier | exp.Table):
        raise refusal(
            f"IN {rhs.sql(dialect='clickhouse')[:60]!r}: ClickHouse reads a bare name after IN as a table",
            "write IN (SELECT column FROM table), or has(array, value) for an array",
        )
