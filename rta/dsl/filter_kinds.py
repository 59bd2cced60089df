"""Whether a filter's values suit its fields: dimensions (and user ids) are text, measures numbers.

The flow evaluates a metric's ``where=`` with Polars, which cannot compare text with a number, and
ordering text against a number in SQL (``"9" > "10"``) is never what was meant; both are refused
with the field named, when a metric is defined (:func:`check_filter_kinds`) or a query is
translated (:func:`dimension_problem`, by ``rta/compiler/sql_filter.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from rta.dsl import expr as ex
from rta.errors import DefinitionError


def leaves(node: ex.Expr) -> list[ex.Expr]:
    """The nodes under ``node`` that read a field (every node but ``&``, ``|`` and ``~``)."""
    found: list[ex.Expr] = []
    stack = [node]
    while stack:  # not recursive: a filter from a client may be deep
        item = stack.pop()
        if isinstance(item, ex.And | ex.Or):
            stack += [item.right, item.left]
        elif isinstance(item, ex.Not):
            stack.append(item.operand)
        else:
            found.append(item)
    return found


def _values(leaf: ex.Expr) -> tuple[ex.Scalar, ...]:
    if isinstance(leaf, ex.Compare):
        return (leaf.value,)
    if isinstance(leaf, ex.IsIn):
        return leaf.values
    if isinstance(leaf, ex.Between):
        return (leaf.low, leaf.high)
    return ()


def dimension_problem(node: ex.Expr, dims: frozenset[str] | set[str], *, exact: bool = False) -> str | None:
    """Why ``node`` cannot filter the text fields ``dims``, or None.

    Ordering a dimension against a number (``col("country") > 10``) would compare text
    (``"9" > "10"``), and a dimension is never null (missing is ``""``): both are refused.
    ``exact`` also refuses ``==``/``isin`` with numbers, which the flow's Polars cannot compare with text.
    """
    for leaf in leaves(node):
        field = getattr(leaf, "field", None)
        if field not in dims:
            continue
        if isinstance(leaf, ex.IsNull):
            return (
                f'filter {leaf.code()}: {field!r} is a dimension, and dimensions are text whose missing value is ""; '
                f'write col({field!r}) == "" (or != "") instead'
            )
        ordered = isinstance(leaf, ex.Between) or (isinstance(leaf, ex.Compare) and leaf.op not in ("==", "!="))
        numbers = [v for v in _values(leaf) if not isinstance(v, str)]
        if numbers and (ordered or exact):
            return (
                f"filter {leaf.code()} compares the dimension {field!r} with {numbers[0]!r}; dimensions are text, "
                f"so compare with a string (col({field!r}) == {str(numbers[0])!r}), or filter a measure"
            )
    return None


def check_filter_kinds(node: ex.Expr, kinds: Mapping[str, str], owner: str) -> None:
    """Refuse a filter whose values do not suit its fields: text for dimensions, numbers for measures."""
    text_fields = {f for f, k in kinds.items() if k != "measure"}
    problem = dimension_problem(node, text_fields, exact=True)
    if problem is None:
        for leaf in leaves(node):
            field = getattr(leaf, "field", None)
            if kinds.get(str(field)) != "measure":
                continue
            if isinstance(leaf, ex.TextMatch) or any(isinstance(v, str | bool) for v in _values(leaf)):
                problem = f"filter {leaf.code()}: {field!r} is a measure, and measures are numbers; compare it with a number"
                break
    if problem is not None:
        raise DefinitionError(f"{owner}: {problem}")
