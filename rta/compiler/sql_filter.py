"""Filter expressions to ClickHouse SQL, with values always passed as ``{name:Type}`` parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sqlglot.expressions as exp

from rta.dsl import expr as ex
from rta.dsl.filter_kinds import dimension_problem
from rta.errors import QueryError, UnsupportedFilter

# Literal text matching, case-sensitive: functions, never LIKE (whose % and _ in user text are patterns).
_TEXT_FUNCTIONS = {"startswith": "startsWith", "endswith": "endsWith"}
_COMPARE: dict[str, type[exp.Binary]] = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


def _type_of(value: ex.Scalar) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    return "String"


def _list_type(values: tuple[ex.Scalar, ...]) -> str:
    """One element type for an ``IN`` list: a float among integers makes them all Float64."""
    types = {_type_of(v) for v in values}
    if types == {"Int64", "Float64"}:
        return "Float64"
    return _type_of(values[0]) if len(types) == 1 else "String"


class Params:
    """Collects query parameters and hands out their placeholders."""

    def __init__(self, prefix: str = "p") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def add(self, value: Any, type_: str) -> exp.Placeholder:
        """A placeholder ``{pN:type_}`` bound to ``value``."""
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name, kind=_data_type(type_).copy())


Resolver = Callable[[str, bool], exp.Expr | None]
_NUMERIC = frozenset({"Int64", "Float64"})


@functools.lru_cache(maxsize=64)
def _data_type(type_: str) -> exp.DataType:
    return exp.DataType.build(type_, dialect="clickhouse")


def filter_sql(
    node: ex.Expr,
    params: Params,
    *,
    as_string: frozenset[str] = frozenset(),
    table: str | None = None,
    resolve: Resolver | None = None,
) -> exp.Expr:
    """Translate a filter; fields in ``as_string`` are compared as strings (dimensions).

    ``table`` qualifies column names, so output aliases of the same name cannot capture them.
    ``resolve(field, numeric)`` gives the expression of a field that is no column (an undeclared
    property: its text, or its number when compared with a number), or None for a column.
    Missing values follow SQL's three-valued logic, as the Polars translation does (``rta/dsl/expr.py``).
    """
    problem = dimension_problem(node, as_string) if as_string else None
    if problem is not None:
        raise QueryError(problem)

    def column(name: str, numeric: bool = False) -> exp.Expr:
        found = resolve(name, numeric) if resolve is not None else None
        return found if found is not None else exp.column(exp.to_identifier(name), table=exp.to_identifier(table) if table else None)

    def visit(n: ex.Expr) -> exp.Expr:
        match n:
            case ex.Compare(field=f, op=op, value=v):
                typ = "String" if f in as_string else _type_of(v)
                value = str(v) if typ == "String" else v
                return _COMPARE[op](this=column(f, typ in _NUMERIC), expression=params.add(value, typ))
            case ex.IsIn(field=f, values=vs):
                typ = "String" if f in as_string else _list_type(vs)
                items = [str(v) for v in vs] if typ == "String" else [float(v) for v in vs] if typ == "Float64" else list(vs)
                return exp.In(this=column(f, typ in _NUMERIC), field=params.add(items, f"Array({typ})"))
            case ex.Between(field=f, low=lo, high=hi):
                text = f in as_string or isinstance(lo, str)
                low, high = (params.add(str(v), "String") if text else params.add(v, _type_of(v)) for v in (lo, hi))
                return exp.Paren(this=exp.Between(this=column(f, not text), low=low, high=high))
            case ex.IsNull(field=f):
                return exp.Anonymous(this="isNull", expressions=[column(f)])
            case ex.TextMatch(field=f, op="contains", text=t):
                found = exp.Anonymous(this="position", expressions=[column(f), params.add(t, "String")])
                return exp.GT(this=found, expression=exp.Literal.number(0))
            case ex.TextMatch(field=f, op=op, text=t):
                return exp.Anonymous(this=_TEXT_FUNCTIONS[op], expressions=[column(f), params.add(t, "String")])
            case ex.And(left=a, right=b):
                return exp.and_(visit(a), visit(b), copy=False)  # fresh nodes: copying them is wasted time
            case ex.Or(left=a, right=b):
                return exp.Paren(this=exp.or_(visit(a), visit(b), copy=False))
            case ex.Not(operand=o):
                return exp.not_(exp.Paren(this=visit(o)), copy=False)
        name = type(n).__name__
        msg = (
            f"no ClickHouse translation for filter node {name!r}; filters are built from col(...) comparisons, "
            ".isin(), .between(), .is_null(), .contains(), .startswith(), .endswith(), &, | and ~"
        )
        raise UnsupportedFilter(msg)

    return visit(node)


def show_filter(node: ex.Expr) -> str:
    """A filter as readable SQL with its values inline, for plans and explanations only."""
    params = Params()
    sql = filter_sql(node, params)
    inline = sql.transform(
        lambda n: exp.convert(params.values[n.name]) if isinstance(n, exp.Placeholder) else n,
    )
    return inline.sql(dialect="clickhouse")
