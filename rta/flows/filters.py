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
    """A Polars boolean expression; null fields never match (as in SQL).

    >>> frame = pl.DataFrame({"event": ["purchase", "purchase", None], "country": ["US", "DE", "DE"]})
    >>> frame.filter(to_polars((ex.col("event") == "purchase") & ~ex.col("country").isin(["US"])))["country"].to_list()
    ['DE']
    """
    match node:
        case ex.Compare(field=f, op=op, value=v):
            return _COMPARE[op](pl.col(f), pl.lit(v)).fill_null(False)
        case ex.IsIn(field=f, values=vs):
            return pl.col(f).is_in(list(vs)).fill_null(False)
        case ex.And(left=a, right=b):
            return to_polars(a) & to_polars(b)
        case ex.Or(left=a, right=b):
            return to_polars(a) | to_polars(b)
        case ex.Not(operand=o):
            return ~to_polars(o)
    msg = f"no Polars translation for filter node {type(node).__name__!r}; filters are built from col(...) comparisons, .isin(), &, | and ~"
    raise UnsupportedFilter(msg)
