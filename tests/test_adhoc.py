"""Ad-hoc queries over raw events and rollup tables equal the same question asked of Polars."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from rta import col, count, distinct, maximum, quantile, total
from rta.errors import QueryError
from rta.query.adhoc import events_query
from tests.conftest import QUERY_NOW

pytestmark = pytest.mark.store


def test_group_and_aggregate_raw_events(shop_ws, shop_events):
    got = (
        shop_ws.events.where(col("event") == "purchase")
        .group_by("country")
        .agg(orders=count(), revenue=total("revenue"), buyers=distinct("user_id"), biggest=maximum("revenue"))
        .order_by("revenue", descending=True)
        .limit(5)
        .collect()
    )
    want = (
        shop_events.filter(pl.col("event") == "purchase")
        .group_by("country")
        .agg(orders=pl.len(), revenue=pl.col("revenue").sum(), buyers=pl.col("user_id").n_unique(), biggest=pl.col("revenue").max())
        .sort("revenue", descending=True)
        .head(5)
    )
    assert got["country"].to_list() == want["country"].to_list()
    assert got["orders"].to_list() == want["orders"].to_list()
    assert got["buyers"].to_list() == want["buyers"].to_list()  # exact on raw events
    assert got["revenue"].to_list() == pytest.approx(want["revenue"].to_list())


def test_time_buckets_ranges_and_keyword_filters(shop_ws, shop_events):
    got = shop_ws.events.last("6h", now=QUERY_NOW).where(country="US").group_by(every="1h").agg(n=count()).order_by("bucket").collect()
    start = QUERY_NOW - timedelta(hours=6)
    want = (
        shop_events.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") <= QUERY_NOW) & (pl.col("country") == "US"))
        .group_by(pl.col("timestamp").dt.truncate("1h").alias("bucket"))
        .agg(n=pl.len())
        .sort("bucket")
    )
    assert got["n"].to_list() == want["n"].to_list()
    assert got.height == want.height > 3


def test_quantiles_are_exact_on_raw_events(shop_ws, shop_events):
    got = shop_ws.events.where(event="page_view").agg(p50=quantile("load_ms", 0.5)).collect()["p50"][0]
    values = sorted(shop_events.filter(pl.col("event") == "page_view")["load_ms"].drop_nulls().to_list())
    assert values[len(values) // 2 - 1] <= got <= values[len(values) // 2 + 1]


def test_rollup_tables_aggregate_metrics_by_name(shop_ws):
    got = (
        shop_ws.rollup("traffic", "1d").where(country="US").group_by("device").agg("page_views", "avg_load_ms").order_by("device").collect()
    )
    want = shop_ws.query(
        ["page_views", "avg_load_ms"], start=QUERY_NOW - timedelta(days=5), end=QUERY_NOW, grain="1d", by="device", where={"country": "US"}
    )
    totals = want.group_by("device").agg(pl.col("page_views").sum()).sort("device")
    assert got["page_views"].to_list() == totals["page_views"].to_list()


def test_builders_return_new_queries(shop_ws):
    base = shop_ws.events.where(country="US")
    narrowed = base.where(device="mobile")
    assert len(base.filters) == 1 and len(narrowed.filters) == 2


def test_values_are_parameters(shop_ws):
    sql, params = shop_ws.events.where(country="US' OR 1=1 --").agg(n=count()).to_sql()
    assert "OR 1=1" not in sql and "{p0: String}" in sql and params == {"p0": "US' OR 1=1 --"}
    assert shop_ws.events.where(country="US' OR 1=1 --").agg(n=count()).collect()["n"][0] == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda q: q.where(col("contry") == "US"),
            r"where\(\): unknown column 'contry' in the raw events of stream 'events'; did you mean 'country'",
        ),
        (lambda q: q.group_by("devise"), r"group_by\(\): unknown column 'devise'.*did you mean 'device'"),
        (lambda q: q.agg(x=total("revnue")), r"agg\(x=...\): unknown column 'revnue'"),
        (lambda q: q.agg("page_views"), r"agg\(\) on raw events takes named aggregations"),
        (lambda q: q.agg(n=count()).order_by("m").to_sql(), r"order_by\(\): 'm' is not an output column; output columns are: n"),
        (lambda q: q.limit(0), r"limit\(\) takes a positive number of rows, got 0"),
        (lambda q: q.last("a while"), r"invalid last\(\): got 'a while'"),
    ],
)
def test_builder_errors(shop_ws, build, message):
    with pytest.raises(QueryError, match=message):
        build(shop_ws.events)


def test_rollup_builder_errors(shop_ws):
    with pytest.raises(QueryError, match=r"no rollup named 'trafic'; did you mean 'traffic'\?"):
        shop_ws.rollup("trafic", "1h")
    with pytest.raises(QueryError, match=r"metric 'visitors' is not in rollup 'traffic'"):
        shop_ws.rollup("traffic", "1h").agg("visitors")
    with pytest.raises(QueryError, match=r"group_by\(\): unknown column 'contry' in rollup 'traffic' at 1h; did you mean 'country'"):
        shop_ws.rollup("traffic", "1h").group_by("contry")
    no_raw = replace(shop_ws.plan.stream("events"), raw_table=None)
    with pytest.raises(QueryError, match="stream 'events' keeps no raw events; declare it with keep_raw="):
        events_query(shop_ws.plan, no_raw, lambda sql, params: pl.DataFrame())
