"""A statement with its ``{name:Type}`` parameters written in as typed literals.

The SQL console refuses parameters (a client could not be told apart from a query string), so
a statement rta built with bound values travels to a process that owns the store as plain SQL:
each value a sqlglot literal cast to the parameter's type, which sqlglot quotes and escapes.
The console then checks it as it checks everything it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlglot
import sqlglot.expressions as exp

from rta.errors import QueryError


def _literal(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, Sequence):
        return exp.Array(expressions=[_literal(v) for v in value])
    msg = f"cannot write a {type(value).__name__} parameter into SQL: {value!r}"
    raise QueryError(msg)


def bound_sql(sql: str, params: Mapping[str, object]) -> str:
    """``sql`` with every ``{name:Type}`` replaced by ``CAST(value AS Type)`` (a bare number in LIMIT).

    >>> bound_sql("SELECT * FROM t WHERE c IN {p0:Array(String)} AND n > {p1:UInt32} LIMIT {n:UInt32}", {"p0": ["a'b"], "p1": 2, "n": 5})
    "SELECT * FROM t WHERE c IN CAST(['a''b'] AS Array(String)) AND n > CAST(2 AS UInt32) LIMIT 5"
    """
    tree = sqlglot.parse_one(sql, dialect="clickhouse")

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Placeholder):
            return node
        name = node.name
        if name not in params:
            msg = f"the statement names parameter {name!r}, which was not given"
            raise QueryError(msg)
        literal = _literal(params[name])
        in_limit = isinstance(node.parent, exp.Limit | exp.Offset)
        kind = node.args.get("kind")
        return literal if in_limit or kind is None else exp.Cast(this=literal, to=kind.copy())

    return tree.transform(replace).sql(dialect="clickhouse")
