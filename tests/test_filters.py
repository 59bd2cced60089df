"""Every face of a filter answers the same: ClickHouse SQL, the flow's Polars and the row-by-row oracle.

Also the nodes' code, their JSON trees and compact text, the refusals, and metrics filtered with
the new nodes through the real flow.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta import col, count, metric, rollup, stream, total
from rta.compiler import compile
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl import expr as ex
from rta.dsl.definitions import definitions
from rta.errors import DefinitionError, QueryError
from rta.flows.filters import to_polars
from rta.flows.runner import run_flow
from rta.query.where_json import MAX_FILTER_NODES, OPS, TEXT_OPS, parse_where, where_json
from rta.store.schema import apply
from rta.testing import BatchSource, filter_mask, frame_batches
from tests.flowcheck import assert_matches_oracle

pytestmark = [pytest.mark.store]

PATHS = ["", "/", "/blog", "/blog/a", "/blogs", "/shop", "/shop/blog", "b", "Blog"]
COUNTRIES = ["", "US", "DE", "FR", "USA"]
NUMBERS = [-1.5, 0, 0.0, 1, 9.99, 10, 10.5, 50, 100]
TEXTS = ["/", "/blog", "b", "log", "blog/", "U", "S", "B"]
DIMS = frozenset({"path", "country"})

# Leaves as the contract has them: dimensions are text (never null), measures numbers or null.
text_values = st.sampled_from(PATHS + COUNTRIES)
numbers = st.sampled_from(NUMBERS)
text_leaf = st.one_of(
    st.builds(ex.Compare, st.sampled_from(sorted(DIMS)), st.sampled_from(OPS), text_values),
    st.builds(lambda f, vs: col(f).isin(vs), st.sampled_from(sorted(DIMS)), st.lists(text_values, min_size=1, max_size=3)),
    st.builds(lambda f, a, b: col(f).between(min(a, b), max(a, b)), st.sampled_from(sorted(DIMS)), text_values, text_values),
    st.builds(lambda f, op, t: getattr(col(f), op)(t), st.sampled_from(sorted(DIMS)), st.sampled_from(TEXT_OPS), st.sampled_from(TEXTS)),
)
number_leaf = st.one_of(
    st.builds(ex.Compare, st.just("revenue"), st.sampled_from(OPS), numbers),
    st.builds(lambda vs: col("revenue").isin(vs), st.lists(numbers, min_size=1, max_size=3)),
    st.builds(lambda a, b: col("revenue").between(min(a, b), max(a, b)), numbers, numbers),
    st.just(col("revenue").is_null()),
    st.just(col("revenue").is_not_null()),
)
filters = st.recursive(
    st.one_of(text_leaf, number_leaf),
    lambda inner: st.one_of(st.builds(ex.And, inner, inner), st.builds(ex.Or, inner, inner), st.builds(ex.Not, inner)),
    max_leaves=8,
)
rows = st.lists(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(COUNTRIES), st.none() | numbers.map(float)),
    min_size=1,
    max_size=30,
)


def _frame(items: list[tuple[str, str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"i": range(len(items)), "path": [r[0] for r in items], "country": [r[1] for r in items], "revenue": [r[2] for r in items]},
        schema={"i": pl.Int64, "path": pl.String, "country": pl.String, "revenue": pl.Float64},
    )


@pytest.fixture
def events_table(client):
    client.command(
        "CREATE TABLE filter_events (i Int64, path LowCardinality(String), country LowCardinality(String), "
        "revenue Nullable(Float64)) ENGINE = MergeTree ORDER BY i"
    )
    return client


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=filters, items=rows)
def test_sql_polars_and_oracle_agree(events_table, node: ex.Expr, items) -> None:
    client = events_table
    frame = _frame(items)
    client.command("TRUNCATE TABLE filter_events")
    client.insert("filter_events", frame.rows(), column_names=frame.columns)
    params = Params()
    condition = filter_sql(node, params, as_string=DIMS).sql(dialect="clickhouse")
    sql_rows = [
        r[0] for r in client.query(f"SELECT i FROM filter_events WHERE {condition} ORDER BY i", parameters=params.values).result_rows
    ]
    polars_rows = frame.filter(to_polars(node))["i"].to_list()
    oracle_rows = frame.filter(filter_mask(node, frame))["i"].to_list()
    assert sql_rows == polars_rows == oracle_rows, node.code()
    carried = parse_where(json.loads(json.dumps(where_json(node))))  # and/or chains come back folded left: the same rows
    assert frame.filter(to_polars(carried))["i"].to_list() == oracle_rows


def test_a_negated_comparison_drops_missing_values_everywhere(events_table) -> None:
    """``~(revenue > 10)``: SQL's three-valued logic in every face, so an event without revenue is not kept."""
    frame = _frame([("/", "US", None), ("/", "US", 5.0), ("/", "US", 20.0)])
    events_table.insert("filter_events", frame.rows(), column_names=frame.columns)
    node = ~(col("revenue") > 10)
    params = Params()
    condition = filter_sql(node, params).sql(dialect="clickhouse")
    got = events_table.query(f"SELECT i FROM filter_events WHERE {condition}", parameters=params.values).result_rows
    assert [r[0] for r in got] == frame.filter(to_polars(node))["i"].to_list() == [1]
    assert frame.filter(to_polars(col("revenue").is_null()))["i"].to_list() == [0]


@pytest.mark.parametrize(
    ("node", "code"),
    [
        (col("revenue").between(10, 50.5), 'col("revenue").between(10, 50.5)'),
        (col("path").between("/a", "/c"), 'col("path").between("/a", "/c")'),
        (col("revenue").is_null(), 'col("revenue").is_null()'),
        (col("revenue").is_not_null(), 'col("revenue").is_not_null()'),
        (~col("revenue").is_null(), 'col("revenue").is_not_null()'),
        (col("path").contains("blog"), 'col("path").contains("blog")'),
        (col("path").startswith("/blog"), 'col("path").startswith("/blog")'),
        (col("path").endswith(".html"), 'col("path").endswith(".html")'),
        (~col("path").startswith("/b") & (col("revenue") > 10), '~col("path").startswith("/b") & (col("revenue") > 10)'),
        (col("revenue").is_not_null() | col("path").contains("x"), 'col("revenue").is_not_null() | col("path").contains("x")'),
    ],
)
def test_code_of_each_node(node: ex.Expr, code: str) -> None:
    assert node.code() == code
    assert eval(code, {"col": col}) == node  # noqa: S307 (our own code strings)


def test_reprs_of_new_nodes_are_their_dataclass_reprs() -> None:
    assert repr(col("r").between(1, 2)) == "Between(field='r', low=1, high=2)"
    assert repr(col("r").is_not_null()) == "Not(operand=IsNull(field='r'))"
    assert repr(col("p").contains("a")) == "TextMatch(field='p', op='contains', text='a')"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: col("revenue").between(50, 10), "low is above high"),
        (lambda: col("revenue").between(1, "z"), "two numbers or two strings"),
        (lambda: col("revenue").between(True, 2), "two numbers or two strings"),
        (lambda: col("path").contains(""), r"non-empty literal text"),
        (lambda: col("path").startswith(3), r"non-empty literal text"),
    ],
)
def test_builders_refuse_bad_arguments(build, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()


@pytest.mark.parametrize(
    "node",
    [
        col("revenue").between(1, 2.5),
        col("revenue").is_null(),
        col("revenue").is_not_null(),
        col("path").contains("b"),
        col("path").startswith("/b"),
        col("path").endswith("g"),
        ~(col("revenue") >= 3) | col("country").isin(["US", "DE"]),
    ],
)
def test_where_json_round_trip(node: ex.Expr) -> None:
    assert parse_where(json.loads(json.dumps(where_json(node)))) == node


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"field": "revenue", "between": [10]}, r"takes \[low, high\]"),
        ({"field": "revenue", "between": [50, 10]}, "low is above high"),
        ({"field": "revenue", "between": [1, float("inf")]}, "finite number"),
        ({"field": "revenue", "is_null": "yes"}, "takes true or false"),
        ({"field": "path", "contains": ""}, "non-empty literal text"),
        ({"field": "path", "startswith": 5}, "takes a string"),
        ({"field": 3, "endswith": "x"}, "where field takes a string"),
    ],
)
def test_bad_trees_are_refused_as_query_errors(tree, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_where(tree)


def test_the_node_budget_counts_new_nodes() -> None:
    tree = {"or": [{"field": "path", "contains": f"x{i}"} for i in range(MAX_FILTER_NODES + 1)]}
    with pytest.raises(QueryError, match="terms"):
        parse_where(tree)
    with pytest.raises(QueryError, match="terms"):
        parse_where([f"contains(path,x{i})" for i in range(MAX_FILTER_NODES + 1)])


@pytest.mark.parametrize(
    ("item", "node"),
    [
        ("revenue>10", col("revenue") > 10),
        ("revenue>=10.5", col("revenue") >= 10.5),
        ("revenue<-2", col("revenue") < -2),
        ("revenue<=1e3", col("revenue") <= 1000.0),
        ('version>="10"', col("version") >= "10"),
        ("country>M", col("country") > "M"),
        ("country!=US", col("country") != "US"),
        ("country!=US,DE", ~col("country").isin(["US", "DE"])),
        ("url=a>b", col("url") == "a>b"),
        ("between(revenue,10,50)", col("revenue").between(10, 50)),
        ("between(country,A,M)", col("country").between("A", "M")),
        ("contains(path,/blog,2)", col("path").contains("/blog,2")),
        ("startswith(path,/blog)", col("path").startswith("/blog")),
        ("endswith(path,.html)", col("path").endswith(".html")),
        ("is_null(revenue)", col("revenue").is_null()),
        ("is_not_null(revenue)", col("revenue").is_not_null()),
    ],
)
def test_compact_text(item: str, node: ex.Expr) -> None:
    assert parse_where(item) == node


def test_compact_items_combine_with_and_and_group_equalities() -> None:
    got = parse_where(["country=US", "revenue>10", "country=DE"])
    assert got == ex.And(col("revenue") > 10, col("country").isin(["US", "DE"]))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("country", "where takes dim=value or dim=a,b, got 'country'"),
        (">10", "where takes dim=value"),
        ("between(revenue,10)", r"between takes \(field,low,high\)"),
        ("between(revenue,50,10)", "low is above high"),
        ("between(revenue,1,z)", "two numbers or two strings"),
        ("contains(path)", r"contains takes \(field,text\)"),
        ("contains(path,)", "non-empty literal text"),
        ("country!=", "where takes dim=value"),
    ],
)
def test_bad_compact_text_is_refused(item: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_where(item)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (col("country") > 10, r"compares the dimension 'country' with 10; dimensions are text"),
        (col("country").between(1, 5), "dimensions are text"),
        (col("country").is_null(), r"write col\('country'\) == \"\""),
    ],
)
def test_queries_refuse_numbers_ordered_against_dimensions(node: ex.Expr, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        filter_sql(node, Params(), as_string=frozenset({"country"}))


def test_equality_with_a_number_on_a_dimension_still_compares_text_in_queries() -> None:
    params = Params()
    filter_sql(col("country") == 10, params, as_string=frozenset({"country"}))
    assert params.values == {"p0": "10"}


def _events():
    return stream("events", dimensions={"country": str, "path": str}, measures={"revenue": float}, keep_raw="7d")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda: col("country") > 10, "compares the dimension 'country' with 10; dimensions are text"),
        (lambda: col("country") == 3, "compares the dimension 'country' with 3"),
        (lambda: col("path").is_null(), "dimensions are text whose missing value is"),
        (lambda: col("revenue") > "10", "'revenue' is a measure, and measures are numbers"),
        (lambda: col("revenue").contains("1"), "'revenue' is a measure"),
    ],
)
def test_metric_definitions_refuse_values_that_do_not_suit_the_field(where, message: str) -> None:
    events = _events()
    with pytest.raises(DefinitionError, match=f"metric 'm' where=: .*{message}"):
        metric("m", count(), where=where(), stream=events)


NOW = datetime.now(UTC).replace(second=30, microsecond=0)


def test_metrics_filtered_with_new_nodes_match_the_oracle_through_the_flow(client) -> None:
    events = _events()
    metrics = [
        metric("mid_orders", count(), where=col("revenue").between(10, 50), stream=events),
        metric("blog_revenue", total("revenue"), where=col("path").startswith("/blog"), stream=events),
        metric("no_revenue", count(), where=col("revenue").is_null(), stream=events),
        metric("html_paid", count(), where=col("path").endswith(".html") & col("revenue").is_not_null(), stream=events),
        metric("not_big", count(), where=~(col("revenue") > 20) | col("path").contains("shop"), stream=events),
        metric("cheap", total("revenue"), where=col("revenue") < 15, stream=events),
    ]
    plan = compile(definitions([rollup("filtered", metrics, by=["country"])]))
    apply(plan, client)
    n = 600
    frame = pl.DataFrame(
        {
            "timestamp": [NOW - timedelta(seconds=37 * i) for i in range(n)],
            "country": [COUNTRIES[i % 5] for i in range(n)],
            "path": [["/blog/a.html", "/shop", "/blog", "/x.html", ""][i % 7 % 5] for i in range(n)],
            "revenue": pl.Series([None if i % 4 == 0 else float(i % 60) for i in range(n)], dtype=pl.Float64),
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC")},
    )
    run_flow(plan, BatchSource(frame_batches("events", [frame.slice(i, 150) for i in range(0, n, 150)])), client, clock=lambda: NOW)
    assert assert_matches_oracle(client, plan, frame, NOW) > 0
