"""The query request: what a client asks for, typed and checked once, the same from every face.

The Python API (``ws.query(...)``), the CLI, the REST API (query string or JSON body), dashboards
and alerts all build a :class:`QueryRequest`; it serializes to JSON and back (``to_json`` /
``from_json``), filters included (``rta.query.where_json``), so a query sent to a running
`rta run` is the query asked. The REST API's OpenAPI parameters are made from :data:`OPTIONS`,
the one table of the options.

Every value is type-checked here, once (``rta.query.client_values``); what the values mean
(metric and dimension names, ranges, limits) :func:`~rta.query.metric_query.make_query` checks
against the plan. Errors are :class:`~rta.errors.QueryError`, which the API answers with 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeAlias

from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS
from rta.query.client_values import choice, flag, names, refused, shown, text, time_of, whole
from rta.query.where_json import FILTER_SCHEMA, parse_where, where_json

COMPARES = ("previous_period", "previous_day", "previous_week", "previous_year")
GRAIN_CHOICES = ("auto", *GRAINS, "total")


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
            raise refused(f"unknown query option {shown(unknown[0])}; valid options are: {', '.join(_BY_NAME)}")
        if data.get("metrics") is None:
            raise refused("metrics is required, e.g. ?metrics=page_views,revenue")
        values = {name: _BY_NAME[name].parse(value) for name, value in data.items() if value is not None}
        if not values["metrics"]:
            raise refused("metrics is required, e.g. ?metrics=page_views,revenue")
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
    Option("metrics", lambda v: names("metrics", v, "metrics=page_views,revenue"), {"type": "string"},
           "Metric names, comma-separated (required).", listed=True),
    Option("last", lambda v: text("last", v, "last=7d"), {"type": "string", "default": "7d"},
           "Range back from end (or now): 1h, 24h, 7d, 30d."),
    Option("start", time_of("start"), {"type": "string", "format": "date-time"}, "Range start (ISO 8601 with a zone)."),
    Option("end", time_of("end"), {"type": "string", "format": "date-time"}, "Range end, exclusive (default now)."),
    Option("grain", choice("grain", GRAIN_CHOICES, "unknown grain {}; valid grains are: {}"),
           {"type": "string", "enum": list(GRAIN_CHOICES), "default": "auto"},
           "Bucket size; total gives one row per group over the whole range."),
    Option("by", lambda v: names("by", v, "by=country,device"), {"type": "string"}, "Dimensions, comma-separated.", listed=True),
    Option("where", parse_where, {"type": "string"},
           'dim=value or dim=a,b (repeat for more; all must hold), dim!=a,b, revenue>10 (>= < <=), between(revenue,10,50), '
           'contains(path,text), startswith(path,/blog), endswith(path,.html), is_null(revenue), is_not_null(revenue), '
           'or a JSON filter such as {"or": [{"field": "country", "in": ["US"]}, '
           '{"not": {"field": "device", "op": "==", "value": "bot"}}]}.', listed=True),
    Option("compare", choice("compare", COMPARES, "unknown compare={}; valid values are: {}"), {"type": "string", "enum": list(COMPARES)},
           "Adds <metric>_previous columns from the earlier range."),
    Option("top", whole, {"type": "integer", "minimum": 1}, "Only the N biggest groups (needs by)."),
    Option("order_by", lambda v: text("order_by", v, "order_by=revenue"), {"type": "string"}, "The metric top and the order rank by."),
    Option("fill_gaps", flag("fill_gaps"), {"type": "boolean", "default": True}, "A row for every bucket of the range."),
    Option("total", flag("total"), {"type": "boolean", "default": False}, "One row per group over the range, at grain's alignment."),
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


__all__ = ["FILTER_SCHEMA", "OPTIONS", "Asked", "QueryRequest", "openapi_body", "openapi_parameters", "shown", "text"]
