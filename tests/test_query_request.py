"""The query request: one typed value every face builds, serialized to JSON and back unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rta import col
from rta.dsl import expr as ex
from rta.errors import QueryError
from rta.query.api import OPENAPI
from rta.query.request import COMPARES, GRAIN_CHOICES, OPTIONS, QueryRequest
from rta.query.where_json import MAX_FILTER_NODES, OPS, parse_where, where_json

pytestmark = pytest.mark.core

names = st.text("abcdefghij_", min_size=1, max_size=8)
scalars = st.one_of(st.text(max_size=6), st.integers(-(10**6), 10**6), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))
leaves = st.one_of(
    st.builds(ex.Compare, names, st.sampled_from(OPS), scalars),
    st.builds(ex.IsIn, names, st.lists(scalars, min_size=1, max_size=4).map(tuple)),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(st.builds(ex.And, inner, inner), st.builds(ex.Or, inner, inner), st.builds(ex.Not, inner)),
    max_leaves=12,
)
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001 (hypothesis bounds are naive)
requests = st.builds(
    QueryRequest,
    metrics=st.lists(names, min_size=1, max_size=3).map(tuple),
    last=st.none() | st.sampled_from(["1h", "24h", "7d"]),
    start=st.none() | times,
    end=st.none() | times,
    grain=st.sampled_from(GRAIN_CHOICES),
    by=st.lists(names, max_size=3).map(tuple),
    where=st.none() | filters,
    compare=st.none() | st.sampled_from(COMPARES),
    top=st.none() | st.integers(1, 1000),
    order_by=st.none() | names,
    fill_gaps=st.booleans(),
    total=st.booleans(),
)


def _balanced(node: ex.Expr) -> ex.Expr:
    """``where_json`` flattens and/or chains; reading them back folds to the left: the same filter."""
    return parse_where(where_json(node))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(requests)
def test_a_request_survives_json(request: QueryRequest) -> None:
    sent = json.loads(json.dumps(request.to_json()))
    back = QueryRequest.from_json(sent)
    expected = request if request.where is None else QueryRequest(**{**_fields(request), "where": _balanced(request.where)})
    assert back == expected
    assert QueryRequest.from_json(json.loads(json.dumps(back.to_json()))) == back  # a fixed point after one trip


def _fields(request: QueryRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in request.__slots__}  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(filters)
def test_and_or_chains_read_back_as_the_same_filter(node: ex.Expr) -> None:
    once = _balanced(node)
    assert _balanced(once) == once
    assert once.fields() == node.fields()


def test_python_forms_and_query_string_forms_meet() -> None:
    python = QueryRequest.of(["revenue"], by="country", where=col("country").isin(["US", "DE"]) & (col("device") == "mobile"), top=3)
    query_string = QueryRequest.from_params(
        {"metrics": ["revenue"], "by": ["country"], "where": ["country=US,DE", "device=mobile"], "top": ["3"]}
    )
    assert python == query_string
    tree = '{"or": [{"field": "country", "in": ["US"]}, {"not": {"field": "device", "op": "==", "value": "bot"}}]}'
    as_json = QueryRequest.from_params({"metrics": ["revenue"], "where": [tree]})
    assert as_json.where == ex.Or(ex.IsIn("country", ("US",)), ex.Not(ex.Compare("device", "==", "bot")))


def test_grain_total_is_total_over_the_auto_grain() -> None:
    assert QueryRequest.of("revenue", grain="total") == QueryRequest.of("revenue", total=True)
    assert QueryRequest.of("revenue", grain="total").to_json() == {"metrics": ["revenue"], "grain": "total"}
    assert QueryRequest.of("revenue", grain="1d", total=True).to_json() == {"metrics": ["revenue"], "grain": "1d", "total": True}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown query option 'colour'"),
        ({"grain": "1w"}, "unknown grain '1w'; valid grains are: auto, 1m, 1h, 1d, total"),
        ({"where": {"field": "country", "op": "~", "value": "US"}}, "where op '~' is not a comparison"),
        ({"where": {"field": "country", "in": []}}, "takes a non-empty list"),
        ({"where": {"and": []}}, "'and' takes a non-empty list of filters"),
        ({"where": {"field": "n", "op": ">", "value": float("inf")}}, "send a finite number"),
        ({"where": {"field": "n", "op": ">", "value": [1]}}, "send a string, number or boolean"),
        ({"start": "2026-11-28T00:00:00"}, "has no time zone"),
        ({"start": datetime(2026, 11, 28)}, "has no time zone"),  # noqa: DTZ001 (the mistake under test)
    ],
)
def test_bad_values_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QueryRequest.of("revenue", **options)


def test_a_huge_filter_is_refused_before_it_is_built() -> None:
    deep: object = {"field": "country", "op": "==", "value": "US"}
    for _ in range(MAX_FILTER_NODES + 5):
        deep = {"not": deep}
    with pytest.raises(QueryError, match="terms|nests too deeply"):
        QueryRequest.of("revenue", where=deep)
    wide = {"or": [{"field": "country", "op": "==", "value": str(i)} for i in range(MAX_FILTER_NODES + 5)]}
    with pytest.raises(QueryError, match=f"over {MAX_FILTER_NODES:,} terms"):
        QueryRequest.of("revenue", where=wide)


def test_the_openapi_document_is_made_from_the_options() -> None:
    get = OPENAPI["paths"]["/v1/query"]["get"]["parameters"]
    assert [p["name"] for p in get] == [o.name for o in OPTIONS]
    body = OPENAPI["paths"]["/v1/query"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {o.name for o in OPTIONS} and body["required"] == ["metrics"]
    assert "Filter" in OPENAPI["components"]["schemas"]
    grain = next(p for p in get if p["name"] == "grain")
    assert grain["schema"]["enum"] == list(GRAIN_CHOICES)


def test_but_returns_a_changed_copy() -> None:
    first = QueryRequest.of("revenue", last="7d")
    later = first.but(last="24h", end=datetime(2026, 11, 28, tzinfo=UTC) + timedelta(hours=1))
    assert first.last == "7d" and later.last == "24h" and later.metrics == first.metrics
