"""Funnel panels on dashboards: the definition, its checks at compile time, its data, the widget, the report (in Chromium)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rta import col, count, dashboard, funnel, funnel_bars, kpi, metric, rollup, stream
from rta.compiler import compile
from rta.dash import make_view
from rta.dash.blocks import blocks
from rta.dash.data import load_board
from rta.dash.export import CHROMIUM_FLAGS
from rta.dash.view import View
from rta.dash.widget import dashboard_widget
from rta.dsl.definitions import definitions
from rta.errors import CompilationError, DefinitionError, QueryError
from tests.conftest import QUERY_NOW, require_module, require_service

WINDOW = {"start": QUERY_NOW - timedelta(days=2), "end": QUERY_NOW}
SHOTS = Path("/tmp/panelshots")


# --- the definition ------------------------------------------------------------------------
@pytest.mark.core
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: funnel_bars(""), r"funnel_bars: expected a funnel or a funnel's name such as 'checkout', got ''"),
        (lambda: funnel_bars("checkout", by=""), r"funnel_bars\('checkout'\): by= takes a dimension name such as 'device', got ''"),
        (lambda: funnel_bars("checkout", top=0), r"top= takes a number of rows from 1 to 1000, got 0"),
        (lambda: dashboard("d", [funnel]), r"panels= takes kpi\(...\), .* or funnel_bars\(...\)"),
    ],
)
def test_funnel_panel_mistakes_fail_at_definition(build, message):
    with pytest.raises(DefinitionError, match=message):
        build()


def _defs(panel, filters=("country",), metrics=True):  # type: ignore[no-untyped-def]
    events = stream("events", dimensions={"event": str, "country": str, "device": str}, user="user_id", keep_raw="30d")
    views = metric("views", count(), stream=events)
    signup = funnel("signup", [col("event") == "visit", col("event") == "signup"], stream=events)
    board = dashboard("d", [kpi(views), panel] if metrics else [panel], filters=list(filters))
    return definitions([events, views, signup, rollup("traffic", [views], by=["country", "device"]), board])


@pytest.mark.core
def test_the_compiler_refuses_a_funnel_panel_of_an_unknown_funnel_or_dimension():
    plan = compile(_defs(funnel_bars("signup", by="device")))
    board = plan.definitions.dashboard("d")
    assert board.funnel_names() == ("signup",) and board.dimensions() == ("country", "device") and board.metric_names() == ("views",)
    assert "  funnel 'signup funnel': signup by device top 10" in plan.dashboards_text()
    with pytest.raises(CompilationError, match=r"dashboard 'd', panel 'signpu funnel': no funnel named 'signpu'; did you mean 'signup'"):
        compile(_defs(funnel_bars("signpu")))
    with pytest.raises(
        CompilationError, match=r"dashboard 'd', panel 'signup funnel' \(funnel 'signup'\): stream 'events' has no field 'os'"
    ):
        compile(_defs(funnel_bars("signup", by="os"), metrics=False))


@pytest.mark.core
def test_a_clicked_step_round_trips_through_the_url_and_a_wrong_one_is_refused():
    board = dashboard("d", [kpi("a"), funnel_bars("checkout", by="device")], filters=["country"])
    view = View.of(board).with_step("checkout", 2).drill("country", "DE")
    assert view.to_params()["step"] == ["checkout:2"] and View.from_params(board, view.to_params()) == view
    assert view.step_crumb() == "checkout step 2" and view.with_step(None).step is None
    with pytest.raises(QueryError, match=r"draws no funnel 'chekout' \(step='chekout:2'\); did you mean 'checkout'"):
        View.from_params(board, {"step": ["chekout:2"]})
    with pytest.raises(QueryError, match=r"step='checkout:two': give the funnel and a step number, such as step=checkout:2"):
        View.from_params(board, {"step": ["checkout:two"]})
    with pytest.raises(QueryError, match=r"a step is a number from 1 to 20, got 0"):
        View.from_params(board, {"step": ["checkout:0"]})


# --- data and blocks -----------------------------------------------------------------------
def _funnel_panel(data):  # type: ignore[no-untyped-def]
    return next(p for p in data.panels if p.panel.kind == "funnel")


@pytest.mark.store
def test_the_funnel_drawn_is_ws_funnel_under_the_views_range_and_filters(shop_ws):
    board = shop_ws.plan.definitions.dashboard("shop")
    view = make_view(board, last="24h", where={"country": ["US", "DE"]}).with_step("checkout", 2)
    data = load_board(shop_ws, board, view, now=QUERY_NOW)
    item = _funnel_panel(data)
    assert item.error is None and item.panel.by == "device"
    # The same range as the metric panels (the rendering's one moment) and the view's filters.
    assert (item.options["start"], item.options["end"]) == (data.moment.start, data.moment.end)
    asked = {"start": data.moment.start, "end": data.moment.end, "where": {"country": ["US", "DE"]}}
    expected = shop_ws.funnel("checkout", now=QUERY_NOW, by=(), **asked)
    assert_frame_equal(item.frame, expected)
    assert item.frame["people"][0] > item.frame["people"][2] > 0  # the demo's people do drop off
    assert_frame_equal(item.split, shop_ws.funnel("checkout", now=QUERY_NOW, by=("device",), **asked))
    parts = {b.key: b for b in blocks(data)}
    bars = parts["p6"]
    assert bars.step == "checkout" and {p["name"] for p in bars.spec["params"]} >= {"pick_p6"}
    rows = bars.datasets["p6"]
    assert [r["people"] for r in rows] == item.frame["people"].to_list()
    assert rows[1]["shade"] == 1.0 and rows[0]["shade"] < 1.0  # the clicked step stands out
    first, second = item.frame.row(0, named=True), item.frame.row(1, named=True)
    assert rows[1]["label"] == f"{second['people']:,} · {second['conversion'] * 100:.1f}%"
    assert f"−{first['people'] - second['people']:,}" in rows[1]["axis"] and "of previous" in rows[1]["axis"]
    assert "<table" in bars.html and "median time" in bars.html
    # The clicked step's people by device, largest first; a click on a device bar filters the dashboard.
    split = parts["p6_step"]
    assert split.drill == "device" and split.title == "checkout step 2 (added to cart): people by device"
    step2 = item.split.filter((pl.col("step") == 2) & (pl.col("people") > 0)).sort("people", descending=True)
    assert [(r["device"], r["value"]) for r in split.datasets["p6_step"]] == list(zip(step2["device"], step2["people"], strict=True))
    assert sum(r["value"] for r in split.datasets["p6_step"]) == second["people"]  # each person in one group
    # No step clicked: no split asked for, no split drawn.
    plain = load_board(shop_ws, board, make_view(board, **WINDOW), now=QUERY_NOW)
    assert _funnel_panel(plain).split is None and "p6_step" not in {b.key for b in blocks(plain)}


@pytest.mark.store
def test_a_funnel_panel_that_cannot_be_answered_shows_why(shop_ws):
    board = dashboard("only_funnel", [funnel_bars("checkout")])
    data = load_board(shop_ws, board, make_view(board, start=QUERY_NOW - timedelta(days=400), end=QUERY_NOW), now=QUERY_NOW)
    assert "raw events of 'events' are kept 30d" in (_funnel_panel(data).error or "")
    assert "raw events of" in blocks(data)[0].html


# --- the widget, without a kernel ----------------------------------------------------------
@pytest.mark.store
def test_clicking_a_step_in_the_widget_splits_it_and_a_device_bar_filters(shop_ws):
    widget = dashboard_widget(shop_ws, "shop", **WINDOW)
    widget.chart._vl_selections = {"pick_p6": {"value": {"vlPoint": {"or": [{"step": 3}]}}, "store": []}}
    assert widget.view.step == ("checkout", 3)
    titles = [sub.get("title") for sub in widget.chart.spec["vconcat"]]
    assert "checkout step 3 (bought): people by device" in titles
    assert [b.description for b in widget.crumbs.children] == ["checkout step 3 ×", "Clear all"]
    widget.chart._vl_selections = {"pick_p6_step": {"value": {"vlPoint": {"or": [{"device": "mobile"}]}}, "store": []}}
    assert widget.view.where() == {"device": ["mobile"]} and widget.view.step == ("checkout", 3)
    mobile = shop_ws.funnel("checkout", by=(), **{**WINDOW, "start": widget.data.moment.start, "end": widget.data.moment.end},
                            where={"device": "mobile"})  # fmt: skip
    assert _funnel_panel(widget.data).frame["people"].to_list() == mobile["people"].to_list()
    assert any("Checkout funnel" in getattr(h, "value", "") and "<table" in h.value for h in widget.tables.children)
    widget.crumbs.children[1].click()  # remove the step
    assert widget.view.step is None and widget.view.where() == {"device": ["mobile"]}


# --- the report ----------------------------------------------------------------------------
@pytest.fixture
def report(shop_ws, tmp_path):  # type: ignore[no-untyped-def]
    return shop_ws.report("shop", out=tmp_path / "report.html", **WINDOW)


@pytest.mark.store
def test_the_report_has_the_funnel_chart_and_its_table(report, shop_ws):
    text = report.html.read_text()
    specs = json.loads(re.search(r'id="rta-specs">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</"))
    assert "p6" in specs and specs["p6"]["title"] == "Checkout funnel" and "params" not in json.dumps(specs["p6"]["layer"][1])
    assert [r["name"] for r in specs["p6"]["datasets"]["p6"]] == ["viewed", "added to cart", "bought"]
    assert '<div id="chart-p6" class="chart"></div><table class="rta-funnel">' in text
    people = shop_ws.funnel("checkout", by=(), **WINDOW)["people"].to_list()
    cells = re.findall(r'<tr data-step="\d"><td>[^<]*</td><td>([^<]*)</td>', text)
    assert cells == [f"{n:,}" for n in people]


@pytest.mark.store
@pytest.mark.services
def test_the_report_draws_the_funnel_in_chromium_with_no_network(report):
    page_api = require_module("playwright.sync_api")
    require_service("chromium")
    with page_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            refused: list[str] = []
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else (refused.append(r.request.url), r.abort()))
            page.goto(report.html.as_uri())
            page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error", timeout=30_000)
            assert page.evaluate("document.body.dataset.error") is None
            bars = page.locator("#chart-p6 .mark-rect path")
            assert bars.count() == 6  # the entered and the reached bar of 3 steps
            heights = bars.evaluate_all("ps => ps.map(p => p.getBoundingClientRect().height)")
            assert all(h > 1 for h in heights), heights
            texts = page.locator("#chart-p6 text").all_text_contents()
            assert any("of previous" in t for t in texts) and any(re.fullmatch(r"[\d,.K]+ · [\d.]+%", t) for t in texts), texts
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.locator("#block-p6").screenshot(path=str(SHOTS / "report-funnel.png"))
        finally:
            browser.close()
    assert refused == []
