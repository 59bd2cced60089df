"""Filter expressions to Polars expressions (the flow's side of the compiler's lookup tables)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import polars as pl

from rta.dsl import expr as ex
from rta.errors import UnsupportedFilter

_COMPARE: dict[str, Callable[[Any, Any], pl.Expr]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def to_polars(node: ex.Expr) -> pl.Expr:
    """A Polars boolean mask: true where the filter holds, false where it fails or is unknown.

    Missing values are unknown inside the filter, as in SQL (``rta/dsl/expr.py``): Polars' Kleene
    ``&``, ``|`` and ``~`` agree with ClickHouse's, so ``~(col("x") > 1)`` drops a null ``x`` in both.

    >>> frame = pl.DataFrame({"event": ["purchase", "purchase", None], "country": ["US", "DE", "DE"]})
    >>> frame.filter(to_polars((ex.col("event") == "purchase") & ~ex.col("country").isin(["US"])))["country"].to_list()
    ['DE']
    >>> frame.filter(to_polars(~(ex.col("event") == "view")))["country"].to_list()
    ['US', 'DE']
    """
    return _visit(node).fill_null(False)


def _visit(node: ex.Expr) -> pl.Expr:
    match node:
        case ex.Compare(field=f, op=op, value=v):
            return _COMPARE[op](pl.col(f), pl.lit(v))
        case ex.IsIn(field=f, values=vs):
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vs):
                # Polars 2 compares Float64 measures only with a list of floats: [0] would be refused.
                return pl.col(f).cast(pl.Float64).is_in([float(v) for v in vs])
            return pl.col(f).is_in(list(vs))
        case ex.Between(field=f, low=lo, high=hi):
            return pl.col(f).is_between(pl.lit(lo), pl.lit(hi), closed="both")
        case ex.IsNull(field=f):
            return pl.col(f).is_null()
        case ex.TextMatch(field=f, op="contains", text=t):
            return pl.col(f).str.contains(t, literal=True)
        case ex.TextMatch(field=f, op="startswith", text=t):
            return pl.col(f).str.starts_with(t)
        case ex.TextMatch(field=f, op="endswith", text=t):
            return pl.col(f).str.ends_with(t)
        case ex.And(left=a, right=b):
            return _visit(a) & _visit(b)
        case ex.Or(left=a, right=b):
            return _visit(a) | _visit(b)
        case ex.Not(operand=o):
            return ~_visit(o)
    msg = (
        f"no Polars translation for filter node {type(node).__name__!r}; filters are built from col(...) comparisons, "
        ".isin(), .between(), .is_null(), .contains(), .startswith(), .endswith(), &, | and ~"
    )
    raise UnsupportedFilter(msg)
