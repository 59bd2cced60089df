"""The query request: what a client asks for, typed and checked once, the same from every face.

The Python API (``ws.query(...)``), the CLI, the REST API (query string or JSON body), dashboards
and alerts all build a :class:`QueryRequest`; it serializes to JSON and back (``to_json`` /
``from_json``), filters included, so a query sent to a running `rta run` is the query asked. The
REST API's OpenAPI parameters are made from :data:`OPTIONS`, the one table of the options.

Every value is type-checked here, once; what the values mean (metric and dimension names, ranges,
limits) :func:`~rta.query.metric_query.make_query` checks against the plan. Errors are
:class:`~rta.errors.QueryError`, which the API answers with 400.

Filters (``where``) travel as JSON trees, PostHog/Mixpanel style::

    {"field": "country", "op": "==", "value": "US"}       # also != < <= > >=
    {"field": "country", "in": ["US", "DE"]}
    {"and": [..., ...]}  {"or": [..., ...]}  {"not": ...}
    {"country": ["US", "DE"], "device": "mobile"}          # shorthand: every dimension matches
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeAlias, get_args

from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS
from rta.errors import QueryError

COMPARES = ("previous_period", "previous_day", "previous_week", "previous_year")
GRAIN_CHOICES = ("auto", *GRAINS, "total")
OPS: tuple[str, ...] = get_args(ex.CompareOp)
MAX_FILTER_NODES = 1_000  # a filter deeper or larger than this is a hostile client, not an analyst

# Client values are shown short in errors: a megabyte of text or deep nesting stays out of the reply.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 80, 80, 3, 5, 5
_WHOLE = re.compile(r"\s*[+-]?\d{1,100}\s*", re.ASCII)
_YES, _NO = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")  # "?total" alone means yes


def shown(value: object) -> str:
    """A client's value for an error message: its repr, shortened."""
    return _SHORT.repr(value)


def _fail(message: str) -> QueryError:
    return QueryError(message)


def text(name: str, value: object, example: str) -> str:
    """``value`` if it is a string that can be sent on as UTF-8."""
    if not isinstance(value, str):
        raise _fail(f"{name} takes a string, got {shown(value)}; for example {example}")
    try:
        value.encode()
    except UnicodeEncodeError:  # JSON can carry lone surrogates ("\ud800"), which no store accepts
        raise _fail(f"{name}={shown(value)} is not valid Unicode (it holds a lone surrogate); send UTF-8 text") from None
    return value


def _names(name: str, value: object, example: str) -> tuple[str, ...]:
    """Names as a comma-separated string or a list of them; duplicates are left to make_query."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise _fail(f"{name} takes names as a comma-separated string or a list of strings, got {shown(value)}; for example {example}")
    return tuple(part.strip() for item in items for part in text(name, item, example).split(",") if part.strip())


def _choice(name: str, choices: Sequence[str], refusal: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        found = text(name, value, f"{name}={choices[0]}")
        if found not in choices:
            raise _fail(refusal.format(shown(found), ", ".join(choices)))
        return found

    return parse


def _time(name: str) -> Callable[[object], datetime]:
    def parse(value: object) -> datetime:
        if isinstance(value, datetime):
            when = value
        else:
            example = "2026-11-28T00:00:00Z"
            string = text(name, value, example)
            try:
                when = datetime.fromisoformat(string)
            except ValueError:
                raise _fail(f"{name}={shown(value)} is not an ISO 8601 time, e.g. {example}") from None
        if when.tzinfo is None:
            raise _fail(f"{name}={shown(value)} has no time zone; add Z or +00:00 (datetime(..., tzinfo=UTC) in Python)")
        return when

    return parse


def _top(value: object) -> int:
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():  # JSON 10.0; never inf or nan
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"top={shown(value)} is not a whole number; ask for a number of groups, e.g. top=10")
    return value


def _flag(name: str) -> Callable[[object], bool]:
    def parse(value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in (*_YES, *_NO):
            return value.strip().lower() in _YES
        raise _fail(f"{name} takes true or false, got {shown(value)}; for example {name}=true")

    return parse


# --- filters ------------------------------------------------------------------------------------


def _scalar(where: str, value: object) -> ex.Scalar:
    if isinstance(value, str):
        return text(where, value, "'US'")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(f"{where} compares with {shown(value)}; send a finite number")
    if isinstance(value, bool | int | float):
        return value
    raise _fail(f"{where} compares with {shown(value)}; send a string, number or boolean")


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
            raise _fail(f"where has over {MAX_FILTER_NODES:,} terms; filter on fewer values, or group values in one `in` list")


def _node(value: object, budget: _Budget) -> ex.Expr:
    budget.take()
    if isinstance(value, ex.Expr):
        return value
    if not isinstance(value, dict) or not value:
        raise _fail(
            f"where takes {{dim: value or [values]}} or dim=value items, got {shown(value)}; "
            "or a filter tree such as {'field': 'country', 'in': ['US', 'DE']}"
        )
    keys = set(value)
    if keys in ({"and"}, {"or"}):
        (op,) = keys
        terms = value[op]
        if not isinstance(terms, list) or not terms:
            raise _fail(f"where {op!r} takes a non-empty list of filters, got {shown(terms)}")
        return _all(ex.And if op == "and" else ex.Or, [_node(t, budget) for t in terms])
    if keys == {"not"}:
        return ex.Not(_node(value["not"], budget))
    if keys in ({"field", "op", "value"}, {"field", "in"}):
        field = text("where field", value["field"], "'country'")
        if "in" in value:
            values = value["in"]
            if not isinstance(values, list | tuple) or not values:
                raise _fail(f"where {{'field': {field!r}, 'in': ...}} takes a non-empty list, got {shown(values)}")
            return ex.IsIn(field, tuple(_scalar(f"where {field} in", v) for v in values))
        op = value["op"]
        if op not in OPS:
            raise _fail(f"where op {shown(op)} is not a comparison; valid ops are: {' '.join(OPS)}")
        return ex.Compare(field, op, _scalar(f"where {field} {op}", value["value"]))
    return _shorthand(value, budget)


def _shorthand(value: Mapping[Any, object], budget: _Budget) -> ex.Expr:
    """``{dim: value | [values], ...}``: every dimension matches one of its values."""
    terms: list[ex.Expr] = []
    for name, values in value.items():
        budget.take()
        field = text("where", name, "country")
        items = list(values) if isinstance(values, list | tuple) else [values]
        if not all(isinstance(v, str) for v in items):  # dimensions hold strings; other comparisons take the tree form
            raise _fail(f"where[{shown(field)}] takes a string or a list of strings, got {shown(values)}; e.g. {{'country': ['US', 'DE']}}")
        if not items:
            raise _fail(f"where={{{field!r}: []}} matches nothing; give at least one value")
        scalars = tuple(_scalar(f"where[{shown(field)}]", v) for v in items)
        terms.append(ex.Compare(field, "==", scalars[0]) if len(scalars) == 1 else ex.IsIn(field, scalars))
    return _all(ex.And, terms)


def _items(items: Sequence[object], budget: _Budget) -> ex.Expr:
    """Query-string items: ``dim=value``, ``dim=a,b``, or a JSON filter object."""
    terms: list[ex.Expr] = []
    grouped: dict[str, list[str]] = {}
    for item in items:
        raw = text("where", item, "country=US")
        if raw.lstrip().startswith("{"):
            try:
                decoded = json.loads(raw)
            except (ValueError, RecursionError):
                raise _fail(f"where={shown(raw)} is not a JSON filter object") from None
            terms.append(_node(decoded, budget))
            continue
        name, sep, values = raw.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise _fail(f"where takes dim=value or dim=a,b, got {shown(item)}")
        grouped.setdefault(name.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
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
                raise _fail("where got an empty list; leave it out to filter nothing")
            return _items(items, budget)
        return _node(value, budget)
    except RecursionError:
        raise _fail("where nests too deeply; flatten the filter") from None


def where_json(node: ex.Expr) -> dict[str, Any]:
    """A filter as the JSON tree :func:`parse_where` reads (chains of and/or flattened)."""
    if isinstance(node, ex.Compare):
        return {"field": node.field, "op": node.op, "value": node.value}
    if isinstance(node, ex.IsIn):
        return {"field": node.field, "in": list(node.values)}
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


# --- the request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One query option: how it is read from a client, written to JSON, and documented."""

    name: str
    parse: Callable[[object], object]
    schema: dict[str, Any]
    doc: str
    listed: bool = False  # in a query string every repeat counts (else the last one)


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """Metrics over a time range, by dimensions, with a filter: what a client asks, not yet
    checked against the plan (:func:`~rta.query.metric_query.make_query` does that).

    ``grain="total"`` asks for one row per group over the whole range (``total=True`` with a
    grain keeps that grain's bucket alignment and table).

    >>> r = QueryRequest.of("revenue", by="country", where={"country": ["US", "DE"]}, top=3)
    >>> r.to_json()
    {'metrics': ['revenue'], 'by': ['country'], 'where': {'field': 'country', 'in': ['US', 'DE']}, 'top': 3}
    >>> QueryRequest.from_json(r.to_json()) == r
    True
    """

    metrics: tuple[str, ...]
    last: str | None = None  # back from end (or now); 7d when neither last nor start is given
    start: datetime | None = None
    end: datetime | None = None
    grain: str = "auto"
    by: tuple[str, ...] = ()
    where: ex.Expr | None = None
    compare: str | None = None
    top: int | None = None
    order_by: str | None = None
    fill_gaps: bool = True
    total: bool = False

    def __post_init__(self) -> None:
        if self.grain == "total":  # one spelling inside: total=True over the auto grain
            object.__setattr__(self, "grain", "auto")
            object.__setattr__(self, "total", True)

    @classmethod
    def of(cls, metrics: object, **options: object) -> QueryRequest:
        """From Python values (``where`` an expression or ``{dim: value | [values]}``); ``None`` means unset."""
        return cls.from_json({"metrics": metrics, **options})

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> QueryRequest:
        """From a JSON object (a POST body); unknown options are refused by name."""
        unknown = sorted(str(k) for k in data if k not in _BY_NAME)
        if unknown:
            raise _fail(f"unknown query option {shown(unknown[0])}; valid options are: {', '.join(_BY_NAME)}")
        if data.get("metrics") is None:
            raise _fail("metrics is required, e.g. ?metrics=page_views,revenue")
        values = {name: _BY_NAME[name].parse(value) for name, value in data.items() if value is not None}
        if not values["metrics"]:
            raise _fail("metrics is required, e.g. ?metrics=page_views,revenue")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> QueryRequest:
        """From a query string's lists of strings (and a JSON body merged over them)."""
        data: dict[str, object] = {}
        for name, value in params.items():
            option = _BY_NAME.get(name)
            if isinstance(value, list) and option is not None and not option.listed:
                value = value[-1] if value else None  # a single-valued option: the last one counts
            data[name] = value
        return cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The options that differ from the defaults, as JSON values (``from_json`` reads them back)."""
        out: dict[str, Any] = {}
        defaults = QueryRequest(metrics=self.metrics)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "metrics" and value == getattr(defaults, f.name):
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, ex.Expr):
                value = where_json(value)
            out[f.name] = value
        if out.pop("total", False):
            if out.get("grain", "auto") == "auto":
                out["grain"] = "total"
            else:
                out["total"] = True
        return out

    def but(self, **changes: object) -> QueryRequest:
        """A copy with some options changed, checked as :meth:`of` checks them."""
        return QueryRequest.from_json({**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


OPTIONS: tuple[Option, ...] = (
    Option("metrics", lambda v: _names("metrics", v, "metrics=page_views,revenue"), {"type": "string"},
           "Metric names, comma-separated (required).", listed=True),
    Option("last", lambda v: text("last", v, "last=7d"), {"type": "string", "default": "7d"},
           "Range back from end (or now): 1h, 24h, 7d, 30d."),
    Option("start", _time("start"), {"type": "string", "format": "date-time"}, "Range start (ISO 8601 with a zone)."),
    Option("end", _time("end"), {"type": "string", "format": "date-time"}, "Range end, exclusive (default now)."),
    Option("grain", _choice("grain", GRAIN_CHOICES, "unknown grain {}; valid grains are: {}"),
           {"type": "string", "enum": list(GRAIN_CHOICES), "default": "auto"},
           "Bucket size; total gives one row per group over the whole range."),
    Option("by", lambda v: _names("by", v, "by=country,device"), {"type": "string"}, "Dimensions, comma-separated.", listed=True),
    Option("where", parse_where, {"type": "string"},
           'dim=value or dim=a,b (repeat for more), or a JSON filter such as {"or": [{"field": "country", "in": ["US"]}, '
           '{"not": {"field": "device", "op": "==", "value": "bot"}}]}.', listed=True),
    Option("compare", _choice("compare", COMPARES, "unknown compare={}; valid values are: {}"), {"type": "string", "enum": list(COMPARES)},
           "Adds <metric>_previous columns from the earlier range."),
    Option("top", _top, {"type": "integer", "minimum": 1}, "Only the N biggest groups (needs by)."),
    Option("order_by", lambda v: text("order_by", v, "order_by=revenue"), {"type": "string"}, "The metric top and the order rank by."),
    Option("fill_gaps", _flag("fill_gaps"), {"type": "boolean", "default": True}, "A row for every bucket of the range."),
    Option("total", _flag("total"), {"type": "boolean", "default": False}, "One row per group over the range, at grain's alignment."),
)  # fmt: skip
_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
Asked: TypeAlias = "str | Sequence[str] | QueryRequest"  # metric names (with options as keywords), or a whole request
assert list(_BY_NAME) == [f.name for f in fields(QueryRequest)], "OPTIONS and QueryRequest name the same options, in order"


def openapi_parameters() -> list[dict[str, Any]]:
    """The REST API's query-string parameters (``GET /v1/query``), made from :data:`OPTIONS`."""
    return [
        {"name": o.name, "in": "query", "schema": o.schema, "description": o.doc, **({"required": True} if o.name == "metrics" else {})}
        for o in OPTIONS
    ]


def openapi_body() -> dict[str, Any]:
    """The JSON body of ``POST /v1/query``: the same options, lists as arrays, where as a filter tree."""
    properties: dict[str, Any] = {}
    for o in OPTIONS:
        schema = dict(o.schema)
        if o.listed and o.name != "where":
            schema = {"oneOf": [schema, {"type": "array", "items": {"type": "string"}}]}
        if o.name == "where":
            schema = {"$ref": "#/components/schemas/Filter"}
        properties[o.name] = {**schema, "description": o.doc}
    return {"type": "object", "required": ["metrics"], "properties": properties, "additionalProperties": False}


_SCALAR = {"type": ["string", "number", "boolean"]}
_FILTER = {"$ref": "#/components/schemas/Filter"}
FILTER_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "object", "required": ["field", "op", "value"],
         "properties": {"field": {"type": "string"}, "op": {"enum": list(OPS)}, "value": _SCALAR}},
        {"type": "object", "required": ["field", "in"],
         "properties": {"field": {"type": "string"}, "in": {"type": "array", "items": _SCALAR}}},
        {"type": "object", "required": ["and"], "properties": {"and": {"type": "array", "items": _FILTER}}},
        {"type": "object", "required": ["or"], "properties": {"or": {"type": "array", "items": _FILTER}}},
        {"type": "object", "required": ["not"], "properties": {"not": _FILTER}},
        {"type": "object", "description": "Shorthand: {dimension: value or [values]}, every one matching.",
         "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
    ]
}  # fmt: skip

__all__ = ["OPTIONS", "Asked", "QueryRequest", "openapi_body", "openapi_parameters", "parse_where", "shown", "text", "where_json"]
