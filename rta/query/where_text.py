"""The compact filter text of query strings and ``rta query --where``: one term per item.

Every item must hold; the grammar is :data:`WHERE_TEXT`. ``dim=a,b`` items are handed back as
(dimension, values) so the caller can group repeats of a dimension into one ``isin``, as before.
Values are never patterns: ``contains`` and the like match literal text.
"""

from __future__ import annotations

import math
import re

from rta.dsl import expr as ex
from rta.errors import DefinitionError
from rta.query.client_values import refused, shown

WHERE_TEXT = (
    "dim=a,b (one of), dim!=a,b (none of), field>10 (also >= < <=: numbers, else text; "
    '"10" in quotes is text), between(field,10,50) (both ends included), contains(field,text), '
    "startswith(field,text), endswith(field,text) (literal, case-sensitive), is_null(field), is_not_null(field)"
)

_CALL = re.compile(r"\s*(between|contains|startswith|endswith|is_null|is_not_null)\((.*)\)\s*", re.DOTALL)
_OP = re.compile(r"!=|>=|<=|>|<|=")  # the earliest operator wins; at one place the longer spelling
_WHOLE = re.compile(r"[+-]?\d{1,18}", re.ASCII)


def _value(raw: str) -> ex.Scalar:
    """A number when the text is one (``10``, ``-2.5``), text otherwise; ``"10"`` in quotes stays text."""
    stripped = raw.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return stripped[1:-1]
    if _WHOLE.fullmatch(stripped):
        return int(stripped)
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return number if math.isfinite(number) else stripped  # "inf" and "nan" are words here


def _field(name: str, item: str) -> str:
    field = name.strip()
    if not field:
        raise refused(f"where={shown(item)} names no field; write it as {WHERE_TEXT}")
    return field


def _call(name: str, args: str, item: str) -> ex.Expr:
    if name in ("is_null", "is_not_null"):
        column = ex.col(_field(args, item))
        return column.is_null() if name == "is_null" else column.is_not_null()
    if name == "between":
        parts = args.split(",")
        if len(parts) != 3 or not all(p.strip() for p in parts[1:]):
            raise refused(f"where={shown(item)}: between takes (field,low,high), e.g. between(revenue,10,50)")
        return ex.col(_field(parts[0], item)).between(_value(parts[1]), _value(parts[2]))
    field, sep, matched = args.partition(",")  # the text may hold commas: only the first one separates
    if not sep:
        raise refused(f"where={shown(item)}: {name} takes (field,text), e.g. {name}(path,/blog)")
    column = ex.col(_field(field, item))
    return (
        column.contains(matched) if name == "contains" else column.startswith(matched) if name == "startswith" else column.endswith(matched)
    )


def parse_item(item: str) -> ex.Expr | tuple[str, list[str]]:
    """One compact item: a filter, or ``(dimension, values)`` for ``dim=a,b``."""
    called = _CALL.fullmatch(item)
    try:
        if called is not None:
            return _call(called.group(1), called.group(2), item)
        found = _OP.search(item)
        if found is None or not item[: found.start()].strip() or not item[found.end() :].strip():
            raise refused(f"where takes dim=value or dim=a,b, got {shown(item)}; the forms are: {WHERE_TEXT}")
        field, op, rest = item[: found.start()].strip(), found.group(), item[found.end() :]
        if op == "=":
            return field, [v.strip() for v in rest.split(",") if v.strip()]
        if op == "!=":
            values = [v.strip() for v in rest.split(",") if v.strip()]
            if not values:
                raise refused(f"where={shown(item)} gives no value after !=; e.g. country!=US,DE")
            return ex.col(field) != values[0] if len(values) == 1 else ~ex.col(field).isin(tuple(values))
        value = _value(rest)
        column = ex.col(field)
        return column < value if op == "<" else column <= value if op == "<=" else column > value if op == ">" else column >= value
    except DefinitionError as error:  # the builder's reason, as a 400
        raise refused(f"where={shown(item)}: {error}") from None
