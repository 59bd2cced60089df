"""Reprs: every value a notebook shows has a short text repr and an HTML one, bounded and escaped.

Built without a store: query results, explanations and backtests are made from their parts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rta import alert, breakdown, col, count, dashboard, distinct, kpi, metric, report, rollup, slack, stream, table, total
from rta.alerts.backtest import Backtest
from rta.dsl import expr as ex
from rta.dsl import shown
from rta.dsl.definitions import definitions
from rta.query.metric_query import Executed, MetricQuery
from rta.query.protocol import Explanation, Freshness
from rta.query.result import MetricFrame

pytestmark = pytest.mark.core

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
EVIL = '<script>alert("x")</script>&'
MANY = [f"user-{i}" for i in range(10_000)]
# Nothing in an HTML repr may be fetched at view time, or run.
DUMP = re.compile(r"\b[a-z_]+=(?:Stream|Metric|Compare|IsIn|And|Or|Not|Window|Condition|Panel|MetricQuery|Executed)\(")  # a dataclass repr
EXTERNAL = re.compile(r"<script|<link|<img|<iframe|src=|href=|url\(|@import", re.IGNORECASE)


def _events():
    return stream("events", dimensions={"event": str, "country": str, "device": str}, measures={"revenue": float})


def _objects() -> dict[str, object]:
    """One of each kind, with a huge filter and user strings that need escaping."""
    events = _events()
    big = col("country").isin(MANY) & (col("event") == EVIL)
    purchases = metric("purchases", count(), where=big, stream=events, description=EVIL, unit=EVIL)
    revenue = metric("revenue", total("revenue"), where=col("event") == "purchase", stream=events)
    visitors = metric("visitors", distinct("user_id"), stream=events)
    per_visitor = metric("revenue_per_visitor", revenue / visitors)
    cube = rollup("traffic", [purchases, revenue, per_visitor], by=["country", "device"])
    rule = alert(
        "spike",
        purchases.over("5m") > 100,
        by="country",
        where=col("device").isin(MANY),
        pending="2m",
        notify=[slack("https://hooks.slack.com/services/T0/B0/secret-token"), "log"],
        description=EVIL,
    )
    board = dashboard(
        "shop",
        [kpi(revenue, title=EVIL), breakdown("revenue", by="country"), *(table("revenue", by="device", title=f"t{i}") for i in range(50))],
        filters=["country", "device"],
        title=EVIL,
        description=EVIL,
    )
    schedule = report("daily", board, where={"country": MANY}, notify="log")
    query = MetricQuery(("purchases", "revenue"), NOW - timedelta(days=1), NOW, "1h", ("country",), big, top=5)
    executed = tuple(Executed(f"rta_traffic_1h_{i:08x}", "SELECT 1 /* " + EVIL * 500 + " */", 25 * i, 300 * i, 0.0064) for i in range(40))
    frame = MetricFrame(
        {
            "bucket": [NOW - timedelta(hours=h) for h in range(24, 0, -1)] * 2,
            "country": [EVIL] * 24 + ["FR"] * 24,
            "revenue": [float(h) for h in range(48)],
            "final": [True] * 47 + [False],
        }
    )
    evaluations = pl.DataFrame(
        {
            "at": [NOW - timedelta(minutes=m) for m in range(200, 0, -1)],
            "group": ['{"country": "' + EVIL.replace('"', "'") + '"}'] * 200,
            "value": [float(m % 7) for m in range(200)],
            "current": [None] * 200,
            "breached": [m % 7 > 4 for m in range(200)],
            "status": ["firing" if m % 7 > 4 else "ok" for m in range(200)],
        },
        schema_overrides={"at": pl.Datetime("ms", "UTC"), "current": pl.Float64},
    )
    firing = evaluations.filter(pl.col("status") == "firing")
    notifications = pl.DataFrame(
        {"at": firing["at"], "status": ["firing"] * firing.height, "groups": [1] * firing.height, "text": [EVIL * 40] * firing.height}
    )
    return {
        "stream": events,
        "metric": purchases,
        "formula": per_visitor,
        "rollup": cube,
        "alert": rule,
        "dashboard": board,
        "definitions": definitions([events, cube, rule, board, schedule]),
        "filter": big,
        "result": frame,
        "explanation": Explanation(query, executed, 0.0839, "miss"),
        "freshness": Freshness(NOW, NOW - timedelta(seconds=7), 7.0),
        "backtest": Backtest(rule, evaluations, notifications),
    }


OBJECTS = _objects()
ONE_LINE = ["stream", "metric", "formula", "rollup", "alert", "dashboard", "definitions"]


@pytest.mark.parametrize("kind", OBJECTS)
def test_every_object_has_both_reprs_and_neither_is_a_dataclass_dump(kind: str) -> None:
    value = OBJECTS[kind]
    text, page = repr(value), value._repr_html_()  # type: ignore[attr-defined]
    assert isinstance(page, str) and page.strip().startswith("<")
    if kind != "filter":  # a filter's repr is its dataclass repr on purpose (see test_filter_reprs_feed_table_names)
        assert not DUMP.search(text), text
        assert "datetime.datetime(" not in text


@pytest.mark.parametrize("kind", ONE_LINE)
def test_definitions_show_in_one_short_line(kind: str) -> None:
    text = repr(OBJECTS[kind])
    assert "\n" not in text and len(text) <= shown.LINE, text


@pytest.mark.parametrize("kind", ["explanation", "freshness", "backtest"])
def test_results_show_in_a_few_short_lines(kind: str) -> None:
    lines = repr(OBJECTS[kind]).splitlines()
    assert 1 <= len(lines) <= shown.LINES and all(len(line) <= shown.LINE for line in lines), lines


def test_a_query_result_adds_one_line_above_the_polars_table() -> None:
    frame = OBJECTS["result"]
    assert isinstance(frame, MetricFrame)
    first, _, rest = repr(frame).partition("\n")
    assert first == (
        "MetricFrame: revenue by country; 24 buckets of 1h, 2026-11-27 12:30 to 2026-11-28 11:30 UTC; 2 groups; 48 rows (1 not final)"
    )
    assert rest == pl.DataFrame.__repr__(frame)  # Polars' own, which shows a few rows however long the frame
    minutes = pl.datetime_range(NOW - timedelta(minutes=199_999), NOW, "1m", eager=True, time_zone="UTC")
    big = MetricFrame({"bucket": minutes, "page_views": range(200_000), "final": [True] * 200_000})
    assert len(repr(big)) < 2_000 and len(big._repr_html_()) < 20_000  # 200,000 points are drawn as two per pixel
    total_frame = MetricFrame({"country": ["FR", "DE"], "revenue": [1.0, 2.0], "final": [False, False]})
    assert total_frame.summary() == "MetricFrame: revenue by country; totals over the range; 2 rows (2 not final)"


def test_a_split_result_draws_no_sparkline_and_an_unsplit_one_skips_non_finite_points() -> None:
    assert "<svg" not in OBJECTS["result"]._repr_html_()  # type: ignore[attr-defined]  # groups are not added up
    hours = [NOW - timedelta(hours=h) for h in range(4, 0, -1)]
    frame = MetricFrame({"bucket": hours, "p95": [1.0, float("nan"), float("inf"), 2.0], "final": [True, True, True, False]})
    page = frame._repr_html_()
    assert page.count("<svg") == 1 and "nan" not in page.split("<table")[0] and "(newest final bucket)" in page


@pytest.mark.parametrize("kind", OBJECTS)
def test_html_is_bounded_escaped_and_fetches_nothing(kind: str) -> None:
    page = OBJECTS[kind]._repr_html_()  # type: ignore[attr-defined]
    assert len(page) < 60_000, len(page)
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "user-9999" not in page  # long lists are cut


def test_user_strings_are_escaped_where_they_show() -> None:
    escaped = shown.escape(EVIL)
    assert escaped == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"
    for kind in ("metric", "alert", "dashboard", "explanation", "backtest", "filter"):
        page = OBJECTS[kind]._repr_html_()  # type: ignore[attr-defined]
        assert "&lt;script&gt;" in page and "<script" not in page, kind
    assert "&lt;script&gt;" in OBJECTS["result"]._repr_html_()  # type: ignore[attr-defined]  # Polars escapes cells too


def test_a_huge_isin_list_is_cut_with_an_ellipsis() -> None:
    text = repr(OBJECTS["metric"])
    assert text.startswith('Metric(\'purchases\': count() where col("country").isin(["user-0", "user-1"') and "…" in text
    assert text.endswith(")") and "more" in text
    assert "… 9,994 more" in OBJECTS["filter"].code(values=6)  # type: ignore[attr-defined]
    assert len(str(OBJECTS["filter"])) > 100_000  # str() is the whole filter


def test_secrets_of_channels_stay_out_of_reprs() -> None:
    rule = OBJECTS["alert"]
    for text in (repr(rule), rule._repr_html_(), rule.summary()):  # type: ignore[attr-defined]
        assert "secret-token" not in text and "slack:https://hoo" in text
    assert "slack:https://hooks.slack.com/…, log" in rule._repr_html_()  # type: ignore[attr-defined]


def test_filter_reprs_feed_table_names() -> None:
    """A rollup's version hashes its parts' reprs, filters included: the dataclass repr must not change."""
    node = (col("event") == "purchase") & ~col("country").isin(["US", "DE"])
    assert repr(node) == (
        "And(left=Compare(field='event', op='==', value='purchase'), right=Not(operand=IsIn(field='country', values=('US', 'DE'))))"
    )
    assert str(node) == node.code() == '(col("event") == "purchase") & ~col("country").isin(["US", "DE"])'


names = st.text("abcdefghij_", min_size=1, max_size=8)
scalars = st.one_of(st.text(max_size=6), st.integers(-(10**6), 10**6), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))
leaves = st.one_of(
    st.builds(ex.Compare, names, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), scalars),
    st.builds(ex.IsIn, names, st.lists(scalars, min_size=1, max_size=4).map(tuple)),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(st.builds(ex.And, inner, inner), st.builds(ex.Or, inner, inner), st.builds(ex.Not, inner)),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(filters)
def test_a_filter_shows_as_the_code_that_builds_it(node: ex.Expr) -> None:
    built = eval(node.code(), {"col": col})  # noqa: S307 - the code a filter shows is Python that builds it
    assert repr(built) == repr(node)


def test_shown_helpers_cut_and_count() -> None:
    assert shown.cut("x" * 500) == "x" * (shown.LINE - 1) + "…"
    assert shown.listed(range(10), 3) == "0, 1, 2, … 7 more"
    text = shown.block("Head", [f"line {i}" for i in range(100)])
    assert len(text.splitlines()) == shown.LINES and text.endswith("… 90 more lines")
    page = shown.html_table(["a"], [[EVIL]] * 100)
    assert page.count("<tr>") == shown.ROWS + 1 and "88 more" in page and "<script" not in page
    card = shown.card("Workspace", EVIL, [("store", "chdb://x"), ("empty", None), ("rows", shown.html_table(["a"], [[1]]))])
    assert "<script" not in card and "empty" not in card and card.count("<table") == 2
