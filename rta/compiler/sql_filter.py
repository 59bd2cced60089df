"""Filter expressions to ClickHouse SQL, with values always passed as ``{name:Type}`` parameters."""

from __future__ import annotations

import functools
from typing import Any

import sqlglot.expressions as exp

from rta.dsl import expr as ex
from rta.errors import UnsupportedFilter

_COMPARE: dict[str, type[exp.Binary]] = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


def _type_of(value: ex.Scalar) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    return "String"


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


@functools.lru_cache(maxsize=64)
def _data_type(type_: str) -> exp.DataType:
    return exp.DataType.build(type_, dialect="clickhouse")


def filter_sql(node: ex.Expr, params: Params, *, as_string: frozenset[str] = frozenset(), table: str | None = None) -> exp.Expr:
    """Translate a filter; fields in ``as_string`` are compared as strings (dimensions).

    ``table`` qualifies column names, so output aliases of the same name cannot capture them.
    """

    def column(name: str) -> exp.Column:
        return exp.column(exp.to_identifier(name), table=exp.to_identifier(table) if table else None)

    def visit(n: ex.Expr) -> exp.Expr:
        match n:
            case ex.Compare(field=f, op=op, value=v):
                typ = "String" if f in as_string else _type_of(v)
                value = str(v) if typ == "String" else v
                return _COMPARE[op](this=column(f), expression=params.add(value, typ))
            case ex.IsIn(field=f, values=vs):
                typ = "String" if f in as_string else _type_of(vs[0])
                items = [str(v) for v in vs] if typ == "String" else list(vs)
                return exp.In(this=column(f), field=params.add(items, f"Array({typ})"))
            case ex.And(left=a, right=b):
                return exp.and_(visit(a), visit(b), copy=False)  # fresh nodes: copying them is wasted time
            case ex.Or(left=a, right=b):
                return exp.Paren(this=exp.or_(visit(a), visit(b), copy=False))
            case ex.Not(operand=o):
                return exp.not_(exp.Paren(this=visit(o)), copy=False)
        name = type(n).__name__
        msg = f"no ClickHouse translation for filter node {name!r}; filters are built from col(...) comparisons, .isin(), &, | and ~"
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
