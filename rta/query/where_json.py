"""Filters as JSON trees, PostHog/Mixpanel style: how a ``where`` travels between processes.

    {"field": "country", "op": "==", "value": "US"}       # also != < <= > >=
    {"field": "country", "in": ["US", "DE"]}
    {"and": [..., ...]}  {"or": [..., ...]}  {"not": ...}
    {"country": ["US", "DE"], "device": "mobile"}          # shorthand: every dimension matches

:func:`parse_where` reads those, the shorthand, query-string items (``dim=a,b``) and filter
expressions; :func:`where_json` writes an expression back; :data:`FILTER_SCHEMA` is the OpenAPI
schema of the tree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from rta.dsl import expr as ex
from rta.errors import DefinitionError, QueryError
from rta.query.client_values import refused, shown, text
from rta.query.where_text import parse_item

OPS: tuple[str, ...] = get_args(ex.CompareOp)
TEXT_OPS: tuple[str, ...] = get_args(ex.TextOp)
MAX_FILTER_NODES = 1_000  # a filter deeper or larger than this is a hostile client, not an analyst


def _scalar(where: str, value: object) -> ex.Scalar:
    if isinstance(value, str):
        return text(where, value, "'US'")
    if isinstance(value, float) and not math.isfinite(value):
        raise refused(f"{where} compares with {shown(value)}; send a finite number")
    if isinstance(value, bool | int | float):
        return value
    raise refused(f"{where} compares with {shown(value)}; send a string, number or boolean")


def _all(node: type[ex.And] | type[ex.Or], terms: list[ex.Expr]) -> ex.Expr:
    result = terms[0]
    for term in terms[1:]:
        result = node(result, term)
    return result


class _Budget:
    """Counts filter nodes as they are read, so a hostile filter is refused before it is built."""

    def __init__(self) -> None:
        self.left = MAX_FILTER_NODES

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise refused(f"where has over {MAX_FILTER_NODES:,} terms; filter on fewer values, or group values in one `in` list")


def _node(value: object, budget: _Budget) -> ex.Expr:
    budget.take()
    if isinstance(value, ex.Expr):
        return value
    if not isinstance(value, dict) or not value:
        raise refused(
            f"where takes {{dim: value or [values]}} or dim=value items, got {shown(value)}; "
            "or a filter tree such as {'field': 'country', 'in': ['US', 'DE']}"
        )
    keys = set(value)
    if keys in ({"and"}, {"or"}):
        (op,) = keys
        terms = value[op]
        if not isinstance(terms, list) or not terms:
            raise refused(f"where {op!r} takes a non-empty list of filters, got {shown(terms)}")
        return _all(ex.And if op == "and" else ex.Or, [_node(t, budget) for t in terms])
    if keys == {"not"}:
        return ex.Not(_node(value["not"], budget))
    if len(keys) == 2 and "field" in keys and keys - {"field"} <= {"between", "is_null", *TEXT_OPS}:
        return _call(text("where field", value["field"], "'country'"), value)
    if keys in ({"field", "op", "value"}, {"field", "in"}):
        field = text("where field", value["field"], "'country'")
        if "in" in value:
            values = value["in"]
            if not isinstance(values, list | tuple) or not values:
                raise refused(f"where {{'field': {field!r}, 'in': ...}} takes a non-empty list, got {shown(values)}")
            return ex.IsIn(field, tuple(_scalar(f"where {field} in", v) for v in values))
        op = value["op"]
        if op not in OPS:
            raise refused(f"where op {shown(op)} is not a comparison; valid ops are: {' '.join(OPS)}")
        return ex.Compare(field, op, _scalar(f"where {field} {op}", value["value"]))
    return _shorthand(value, budget)


def _call(field: str, value: dict[str, Any]) -> ex.Expr:
    """``between``, ``is_null`` and the text matches, built (and checked) by ``col(field)``."""
    (kind,) = set(value) - {"field"}
    arg = value[kind]
    try:
        if kind == "between":
            if not isinstance(arg, list | tuple) or len(arg) != 2:
                raise refused(f"where {{'field': {field!r}, 'between': ...}} takes [low, high], got {shown(arg)}")
            return ex.col(field).between(*(_scalar(f"where {field} between", v) for v in arg))
        if kind == "is_null":
            if not isinstance(arg, bool):
                raise refused(f"where {{'field': {field!r}, 'is_null': ...}} takes true or false, got {shown(arg)}")
            return ex.col(field).is_null() if arg else ex.col(field).is_not_null()
        matched = text(f"where {field} {kind}", arg, "'/blog'")
        column = ex.col(field)
        return {"contains": column.contains, "startswith": column.startswith, "endswith": column.endswith}[kind](matched)
    except DefinitionError as error:  # the builder's reason, as a 400
        raise refused(f"where: {error}") from None


def _shorthand(value: Mapping[Any, object], budget: _Budget) -> ex.Expr:
    """``{dim: value | [values], ...}``: every dimension matches one of its values."""
    terms: list[ex.Expr] = []
    for name, values in value.items():
        budget.take()
        field = text("where", name, "country")
        items = list(values) if isinstance(values, list | tuple) else [values]
        if not all(isinstance(v, str) for v in items):  # dimensions hold strings; other comparisons take the tree form
            raise refused(
                f"where[{shown(field)}] takes a string or a list of strings, got {shown(values)}; e.g. {{'country': ['US', 'DE']}}"
            )
        if not items:
            raise refused(f"where={{{field!r}: []}} matches nothing; give at least one value")
        scalars = tuple(_scalar(f"where[{shown(field)}]", v) for v in items)
        terms.append(ex.Compare(field, "==", scalars[0]) if len(scalars) == 1 else ex.IsIn(field, scalars))
    return _all(ex.And, terms)


def _items(items: Sequence[object], budget: _Budget) -> ex.Expr:
    """Query-string items: compact text (:data:`~rta.query.where_text.WHERE_TEXT`) or a JSON filter object."""
    terms: list[ex.Expr] = []
    grouped: dict[str, list[str]] = {}
    for item in items:
        raw = text("where", item, "country=US")
        if raw.lstrip().startswith("{"):
            try:
                decoded = json.loads(raw)
            except (ValueError, RecursionError):
                raise refused(f"where={shown(raw)} is not a JSON filter object") from None
            terms.append(_node(decoded, budget))
            continue
        budget.take()
        term = parse_item(raw)
        if isinstance(term, ex.Expr):
            terms.append(term)
        else:
            grouped.setdefault(term[0], []).extend(term[1])
    if grouped:
        terms.append(_shorthand(grouped, budget))
    return _all(ex.And, terms)


def parse_where(value: object) -> ex.Expr:
    """A filter from Python (an expression, or the shorthand dict), JSON, or query-string items."""
    budget = _Budget()
    try:
        if isinstance(value, str | list | tuple):
            items = [value] if isinstance(value, str) else list(value)
            if not items:
                raise refused("where got an empty list; leave it out to filter nothing")
            return _items(items, budget)
        return _node(value, budget)
    except RecursionError:
        raise refused("where nests too deeply; flatten the filter") from None


def where_json(node: ex.Expr) -> dict[str, Any]:
    """A filter as the JSON tree :func:`parse_where` reads (chains of and/or flattened)."""
    if isinstance(node, ex.Compare):
        return {"field": node.field, "op": node.op, "value": node.value}
    if isinstance(node, ex.IsIn):
        return {"field": node.field, "in": list(node.values)}
    if isinstance(node, ex.Between):
        return {"field": node.field, "between": [node.low, node.high]}
    if isinstance(node, ex.IsNull):
        return {"field": node.field, "is_null": True}
    if isinstance(node, ex.TextMatch):
        return {"field": node.field, node.op: node.text}
    if isinstance(node, ex.Not):
        return {"not": where_json(node.operand)}
    if isinstance(node, ex.And | ex.Or):
        kind, op = type(node), "and" if isinstance(node, ex.And) else "or"
        terms: list[dict[str, Any]] = []
        stack: list[ex.Expr] = [node]
        while stack:
            item = stack.pop()
            if type(item) is kind:
                stack += [item.right, item.left]  # type: ignore[attr-defined]
            else:
                terms.append(where_json(item))
        return {op: terms}
    msg = f"no JSON form for filter node {type(node).__name__}"
    raise QueryError(msg)


_SCALAR = {"type": ["string", "number", "boolean"]}
_FILTER = {"$ref": "#/components/schemas/Filter"}
FILTER_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "object", "required": ["field", "op", "value"],
         "properties": {"field": {"type": "string"}, "op": {"enum": list(OPS)}, "value": _SCALAR}},
        {"type": "object", "required": ["field", "in"],
         "properties": {"field": {"type": "string"}, "in": {"type": "array", "items": _SCALAR}}},
        {"type": "object", "required": ["field", "between"], "description": "low <= field <= high, both ends included.",
         "properties": {"field": {"type": "string"}, "between": {"type": "array", "items": _SCALAR, "minItems": 2, "maxItems": 2}}},
        {"type": "object", "required": ["field", "is_null"], "description": "The field has no value (true) or has one (false).",
         "properties": {"field": {"type": "string"}, "is_null": {"type": "boolean"}}},
        *({"type": "object", "required": ["field", op], "description": f"Literal, case-sensitive text match ({op}).",
           "properties": {"field": {"type": "string"}, op: {"type": "string", "minLength": 1}}} for op in TEXT_OPS),
        {"type": "object", "required": ["and"], "properties": {"and": {"type": "array", "items": _FILTER}}},
        {"type": "object", "required": ["or"], "properties": {"or": {"type": "array", "items": _FILTER}}},
        {"type": "object", "required": ["not"], "properties": {"not": _FILTER}},
        {"type": "object", "description": "Shorthand: {dimension: value or [values]}, every one matching.",
         "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
    ]
}  # fmt: skip
