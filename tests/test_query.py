"""Metric queries through the workspace: filters, splits, top-N, comparisons, gaps, finality, explain, cache."""

from __future__ import annotations

import threading
from datetime import timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta import col
from rta.errors import QueryError
from rta.query.metric_query import make_query
from rta.testing import oracle_query
from tests.conftest import QUERY_NOW

pytestmark = pytest.mark.store
NOW = QUERY_NOW


@pytest.fixture(scope="module")
def events(shop_events):
    return shop_events


@pytest.fixture(scope="module")
def ws(shop_ws):
    return shop_ws


def oracle_in_range(ws, events, metrics, grain, last, **kw) -> pl.DataFrame:
    """The oracle's answer over exactly the query's range (late events can fall before its start)."""
    q = make_query(ws.plan, metrics, last=last, grain=grain, now=NOW, **kw)
    want = oracle_query(ws.plan, metrics, grain, events, NOW, **kw)
    return want.filter((pl.col("bucket") >= q.start) & (pl.col("bucket") < q.end))


def assert_frames_close(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    assert got.select(keys).equals(want.select(keys))
    for name in want.columns:
        if name in keys:
            continue
        for g, w in zip(got[name].to_list(), want[name].to_list(), strict=True):
            assert (g is None and w is None) or g == pytest.approx(w, rel=1e-9, abs=1e-9), (name, g, w)


def test_several_metrics_split_and_filtered_equal_the_oracle(ws, events):
    got = ws.query(
        ["page_views", "revenue", "avg_load_ms"],
        last="2d",
        grain="1h",
        by=["device"],
        where={"country": ["US", "DE"]},
        now=NOW,
        fill_gaps=False,
    )
    where = col("country").isin(["US", "DE"])
    want = oracle_in_range(ws, events, ["page_views", "revenue", "avg_load_ms"], "1h", "2d", by=["device"], where=where)
    assert_frames_close(got.drop("final"), want, ["bucket", "device"])


def test_filter_expressions_and_formulas(ws, events):
    where = ~col("device").isin(["mobile"]) & (col("country") != "US")
    got = ws.query(["purchases", "revenue", "conversion"], last="2d", grain="1d", by="country", where=where, now=NOW, fill_gaps=False)
    want = oracle_in_range(ws, events, ["purchases", "revenue"], "1d", "2d", by=["country"], where=where)
    assert_frames_close(got.select("bucket", "country", "purchases", "revenue"), want, ["bucket", "country"])
    # conversion = merged purchases / merged visitors (a sketch): within 5% of the exact ratio
    exact = oracle_in_range(ws, events, ["conversion"], "1d", "2d", by=["country"], where=where)
    for g, w in zip(got["conversion"].to_list(), exact["conversion"].to_list(), strict=True):
        assert (g is None and w is None) or g == pytest.approx(w, rel=0.05)


def test_gaps_are_filled_with_zero_only_where_that_is_the_meaning(ws):
    frame = ws.query(["purchases", "biggest_order"], last="3h", grain="1m", where={"country": "MT"}, now=NOW + timedelta(seconds=25))
    assert frame.height == 180 + 1  # every minute of the range, the current (partial) one included
    assert frame["bucket"].is_sorted() and frame["bucket"].diff().drop_nulls().unique().to_list() == [timedelta(minutes=1)]
    assert frame["purchases"].null_count() == 0  # an empty minute has 0 purchases ...
    empty = frame.filter(pl.col("purchases") == 0)
    assert empty.height and empty["biggest_order"].null_count() == empty.height  # ... and no biggest order


@pytest.mark.parametrize(
    ("metrics", "ranked", "total"),
    [
        (["revenue", "purchases"], "revenue", "sum"),  # ranked inside the series' scan
        (["biggest_order", "purchases"], "biggest_order", "max"),
        (["purchases", "visitors"], "purchases", "sum"),  # visitors live in another table: the same groups
        (["purchases"], "purchases", "sum"),  # small counts: ties go to the first countries in order
    ],
)
def test_top_n_by_exact_range_totals(ws, events, metrics, ranked, total):
    frame = ws.query(metrics, last="2d", grain="1h", by="country", top=5, order_by=ranked, now=NOW, fill_gaps=False)
    series = oracle_in_range(ws, events, [ranked], "1h", "2d", by=["country"])
    totals = series.group_by("country").agg(getattr(pl.col(ranked), total)())
    leaders = totals.sort([ranked, "country"], descending=[True, False], nulls_last=True).head(5)["country"].to_list()
    assert sorted(frame["country"].unique().to_list()) == sorted(leaders)
    want = series.filter(pl.col("country").is_in(leaders)).sort("bucket", "country")
    assert_frames_close(frame.sort("bucket", "country").select("bucket", "country", ranked), want, ["bucket", "country"])
    if "visitors" in metrics:
        alone = ws.query("visitors", last="2d", grain="1h", by="country", where={"country": leaders}, now=NOW, fill_gaps=False)
        assert frame.sort("bucket", "country")["visitors"].to_list() == alone.sort("bucket", "country")["visitors"].to_list()


@pytest.mark.parametrize("ranked", ["visitors", "conversion"])
def test_top_n_by_sketches_and_ratios_ranks_on_the_merged_range(ws, ranked):
    # Distinct counts and ratios of them do not add up over buckets: they rank on the whole range merged.
    frame = ws.query(ranked, last="2d", grain="1h", by="country", top=4, now=NOW, fill_gaps=False)
    leaders = ws.query(ranked, last="2d", grain="1h", by="country", total=True, top=4, now=NOW)["country"].to_list()
    assert sorted(frame["country"].unique().to_list()) == sorted(leaders)


def test_compare_with_the_previous_period(ws):
    now = NOW
    frame = ws.query("page_views", last="12h", grain="1h", compare="previous_period", now=now)
    earlier = ws.query("page_views", start=frame["bucket"][0] - timedelta(hours=13), end=frame["bucket"][0], grain="1h", now=now)
    shifted = dict(zip((earlier["bucket"] + timedelta(hours=13)).to_list(), earlier["page_views"].to_list(), strict=True))
    assert frame["page_views_previous"].to_list() == [shifted[b] for b in frame["bucket"].to_list()]


@pytest.mark.parametrize(
    ("last", "grain"), [("3h", "1m"), ("6h", "1m"), ("7h", "1h"), ("2d", "1h"), ("8d", "1h"), ("9d", "1d"), ("30d", "1d")]
)
def test_auto_grain(ws, last, grain):
    assert ws.explain("page_views", last=last, now=NOW).query.grain == grain


def test_minute_data_beyond_retention_falls_back_to_hours(ws):
    explained = ws.explain("page_views", start=NOW - timedelta(days=8), end=NOW - timedelta(days=7, hours=20), now=NOW)
    assert explained.query.grain == "1h"
    # minutes 8 days back: past the minute tables' 7 days, within the raw events' 30
    minutes = ws.explain("page_views", start=NOW - timedelta(days=8), end=NOW - timedelta(days=7, hours=20), grain="1m", now=NOW)
    assert [e.raw_because for e in minutes.executed] == ["no rollup of page_views by nothing keeps grain 1m for data 8d old"]
    beyond = r"no rollup answers 'page_views' at grain '1m'.*1m kept 7d.*kept 30d and this range starts 40d ago"
    with pytest.raises(QueryError, match=beyond):
        ws.query("page_views", start=NOW - timedelta(days=40), end=NOW - timedelta(days=39, hours=20), grain="1m", now=NOW)


def test_final_buckets_and_freshness(ws, events):
    newest = events["timestamp"].max()
    fresh = ws.freshness(now=NOW + timedelta(seconds=5))
    assert fresh.written_at == NOW and fresh.newest_event == newest
    assert fresh.watermark == newest - timedelta(seconds=10)  # the settle time
    assert fresh.lag_seconds == pytest.approx((NOW - newest).total_seconds() + 5)
    assert ws.freshness(now=NOW, stream="no such stream").newest_event is None
    frame = ws.query("page_views", last="10m", grain="1m", now=NOW)
    for bucket, final in zip(frame["bucket"].to_list(), frame["final"].to_list(), strict=True):
        assert final is (bucket + timedelta(minutes=1) <= fresh.watermark), bucket


def test_explain_names_tables_and_what_they_read(ws):
    first = ws.explain(["page_views", "visitors"], last="2d", grain="1h", by="country", now=NOW)
    tables = {e.table for e in first.executed}
    assert any(t.startswith("rta_traffic_1h_") for t in tables) and any(t.startswith("rta_audience_1h_") for t in tables)
    assert all(e.rows_read > 0 for e in first.executed)  # rows scanned, by ClickHouse's estimate when embedded
    assert first.cache == "miss"
    again = ws.explain(["page_views", "visitors"], last="2d", grain="1h", by="country", now=NOW)
    assert again.cache == "hit" and "cache hit" in str(again)


def test_concurrent_identical_queries_run_once(ws):
    before = ws.cache.computed
    results = []
    threads = [threading.Thread(target=lambda: results.append(ws.query("revenue", last="2d", grain="1h", now=NOW))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and all(r.equals(results[0]) for r in results)
    assert ws.cache.computed == before + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": "nope"}, "no metric named 'nope'"),
        ({"metrics": "revenue", "compare": "last_week"}, "unknown compare='last_week'; valid values are: previous_period"),
        ({"metrics": "revenue", "top": 0}, "top= takes a positive number of groups, got 0"),
        ({"metrics": "revenue", "order_by": "visitors"}, "order_by='visitors' is not among the metrics asked for: revenue"),
        ({"metrics": "revenue", "start": NOW, "end": NOW - timedelta(hours=1)}, "the time range is empty"),
        ({"metrics": "revenue", "where": {"country": []}}, r"where=\{'country': \[\]\} matches nothing"),
        ({"metrics": "revenue", "where": col("path") == "/", "last": "45d"}, "no rollup answers 'revenue'.*raw events .* kept 30d"),
    ],
)
def test_query_errors(ws, kwargs, message):
    metrics = kwargs.pop("metrics")
    with pytest.raises(Exception, match=message):
        ws.query(metrics, now=NOW, **kwargs)


EXACT = ["page_views", "purchases", "revenue", "biggest_order", "avg_load_ms", "clicks"]
SKETCHED = ["visitors", "buyers", "conversion", "revenue_per_visitor"]
filters = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["US", "IN", "GB", "DE", "BR"]), min_size=1, max_size=3, unique=True).map(lambda cs: col("country").isin(cs)),
    st.sampled_from(["mobile", "desktop"]).map(lambda d: col("device") == d),
    st.sampled_from(["mobile", "tablet"]).map(lambda d: ~(col("device") == d) & (col("country") != "US")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metrics=st.lists(st.sampled_from(EXACT + SKETCHED), min_size=1, max_size=3, unique=True),
    grain=st.sampled_from(["1m", "1h", "1d"]),
    last=st.sampled_from(["3h", "1d", "2d"]),
    by=st.lists(st.sampled_from(["country", "device"]), max_size=2, unique=True),
    where=filters,
)
def test_any_query_equals_the_oracle(ws, events, metrics, grain, last, by, where):
    got = ws.query(metrics, last=last, grain=grain, by=by, where=where, now=NOW, fill_gaps=False, cache=False)
    q = make_query(ws.plan, metrics, last=last, grain=grain, by=by, where=where, now=NOW)
    want = oracle_query(ws.plan, metrics, grain, events, NOW, by=by, where=where)
    want = want.filter((pl.col("bucket") >= q.start) & (pl.col("bucket") < q.end))
    keys = ["bucket", *by]
    assert got.select(keys).equals(want.select(keys))  # the same buckets and groups, none missing or extra
    for name in metrics:
        for g, w in zip(got[name].to_list(), want[name].to_list(), strict=True):
            if name in SKETCHED:
                assert (g is None and w is None) or g == pytest.approx(w, rel=0.05, abs=1), (name, g, w)
            else:
                assert (g is None and w is None) or g == pytest.approx(w, rel=1e-9, abs=1e-9), (name, g, w)


def test_results_show_a_table_and_sparklines(ws):
    frame = ws.query(["page_views", "revenue"], last="1d", grain="1h", now=NOW)
    page = frame._repr_html_()
    assert page.count("<svg") == 2 and "<polyline" in page and "page_views" in page and "<table" in page
    assert "http" not in page.split("<table")[0]  # nothing to fetch at view time
    assert type(frame.filter(pl.col("page_views") > 0)) is pl.DataFrame  # an ordinary frame otherwise
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(frame.head(3))
    assert "page_views" in console.export_text()


def test_totals_over_a_range_equal_the_oracle_and_compare(ws, events):
    start, end = NOW - timedelta(hours=6, minutes=30), NOW - timedelta(minutes=30)  # whole hours
    got = ws.query(["page_views", "revenue", "visitors", "conversion"], start=start, end=end, grain="1h", by="country", total=True, now=NOW)
    assert "bucket" not in got.columns and got["final"].to_list() == [True] * got.height
    want = oracle_query(ws.plan, ["page_views", "revenue"], "1h", events, NOW, by=["country"])
    want = want.filter((pl.col("bucket") >= start) & (pl.col("bucket") < end))
    sums = want.group_by("country").agg(pl.col("page_views").sum(), pl.col("revenue").sum())
    joined = got.join(sums, on="country", suffix="_want")
    assert joined.height == sums.height
    assert (joined["page_views"] - joined["page_views_want"]).abs().max() == 0
    assert (joined["revenue"] - joined["revenue_want"]).abs().max() < 1e-6
    assert got["page_views"].to_list() == sorted(got["page_views"].to_list(), reverse=True)  # ranked by the first metric
    one = ws.query("page_views", start=start, end=end, grain="1h", total=True, compare="previous_period", now=NOW)
    assert one.height == 1 and one["page_views"][0] == sums["page_views"].sum()
    earlier = ws.query("page_views", start=start - timedelta(hours=6), end=start, grain="1h", total=True, now=NOW)
    assert one["page_views_previous"][0] == earlier["page_views"][0]
    empty = ws.query(
        ["page_views", "p95_load_ms"], start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2), grain="1h", total=True, now=NOW
    )
    assert empty.select("page_views", "p95_load_ms").rows() == [(0.0, None)]


def test_top_without_by_is_refused_not_ignored(ws):
    with pytest.raises(QueryError, match="top=3 keeps the biggest groups, but the query has none; add by="):
        ws.query("revenue", last="7d", top=3, now=NOW)


def test_counts_are_integers_and_grain_total_is_one_row_per_group(ws):
    frame = ws.query(["page_views", "visitors", "revenue"], last="2d", grain="1h", by="country", now=NOW)
    assert frame.schema["page_views"] == pl.Int64 and frame.schema["visitors"] == pl.Int64 and frame.schema["revenue"] == pl.Float64
    totals = ws.query(["page_views", "revenue"], last="2d", grain="total", by="country", top=3, now=NOW)
    assert "bucket" not in totals.columns and totals.height == 3 and totals.schema["page_views"] == pl.Int64
    assert totals.equals(ws.query(["page_views", "revenue"], last="2d", total=True, by="country", top=3, now=NOW))
