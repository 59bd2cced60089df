"""Dashboards: the DSL, views, panel data against the query layer, the Jupyter widget (no kernel), reports in Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rta
from rta import breakdown, count, dashboard, kpi, metric, rollup, stream, table, timeseries
from rta.compiler import compile
from rta.dash import make_view
from rta.dash.blocks import blocks
from rta.dash.data import PERSON_KINDS, load_board
from rta.dash.export import CHROMIUM_FLAGS, report_html, write_report
from rta.dash.view import View
from rta.dash.widget import dashboard_widget
from rta.dsl.definitions import definitions
from rta.errors import CompilationError, DefinitionError, QueryError
from rta.flows.demo import Population, generate
from rta.flows.runner import run_flow
from rta.testing import BatchSource, frame_batches
from tests.conftest import QUERY_NOW, ROOT, clear_store, require_module, require_service

START, END = QUERY_NOW - timedelta(days=2), QUERY_NOW
WINDOW = {"start": START, "end": END}


# --- the DSL -------------------------------------------------------------------------------
@pytest.mark.core
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: dashboard("d", []), r"dashboard 'd': give at least one panel"),
        (lambda: dashboard("d", ["revenue"]), r"panels= takes kpi\(...\).*got 'revenue'"),
        (lambda: dashboard("d", [kpi("x")], grain="5m"), r"unknown grain='5m'; valid grains are: auto, 1m, 1h, 1d"),
        (lambda: dashboard("d", [kpi("x")], refresh="1s"), r"refresh='1s' is too often"),
        (lambda: dashboard("d", [kpi("x")], last="forever"), r"invalid dashboard 'd' last=: got 'forever'"),
        (lambda: dashboard("Bad Name", [kpi("x")]), r"invalid dashboard name 'Bad Name'"),
        (lambda: kpi(), r"kpi: give at least one metric"),
        (lambda: breakdown("x", by=""), r"by= takes a dimension name"),
        (lambda: table("x", by="c", top=0), r"top= takes a number of rows from 1 to 1000, got 0"),
    ],
)
def test_dashboard_mistakes_fail_at_definition(build, message):
    with pytest.raises(DefinitionError, match=message):
        build()


def _defs(board_filters: list[str], panel):  # type: ignore[no-untyped-def]
    events = stream("events", dimensions={"country": str, "device": str, "campaign": str})
    views = metric("views", count(), stream=events)
    return definitions([rollup("traffic", [views], by=["country", "device"]), dashboard("d", [panel], filters=board_filters)])


@pytest.mark.core
def test_the_compiler_refuses_dashboards_no_rollup_answers():
    assert compile(_defs(["country"], breakdown("views", by="device"))).definitions.dashboard("d").dimensions() == ("country", "device")
    with pytest.raises(CompilationError, match=r"panel 'visits by device': no metric named 'visits'"):
        compile(_defs([], breakdown("visits", by="device")))
    with pytest.raises(CompilationError, match=r"'contry' is not a dimension of stream 'events'; did you mean 'country'"):
        compile(_defs(["contry"], kpi("views")))
    with pytest.raises(CompilationError, match=r"no rollup holds 'views' by \['campaign', 'country'\].*add those dimensions"):
        compile(_defs(["country"], table("views", by="campaign")))


@pytest.mark.core
def test_builders_return_copies():
    board = dashboard("d", [kpi("a")])
    more = board.with_panel(timeseries("a").titled("A over time"))
    assert len(board.panels) == 1 and [p.title for p in more.panels] == ["a", "A over time"]


# --- views ---------------------------------------------------------------------------------
@pytest.mark.core
def test_a_view_round_trips_through_url_parameters():
    board = dashboard("d", [kpi("a"), breakdown("a", by="country")], filters=["device"], last="24h")
    view = View.of(board).drill("country", "US").with_filter("device", ["mobile", "tablet"]).with_grain("1h").with_breakdown("device")
    assert view.breadcrumb() == ["country = US", "device in mobile, tablet"]
    assert View.from_params(board, view.to_params()) == view
    assert view.without("country").breadcrumb() == ["device in mobile, tablet"] and view.without().filters == ()
    custom = view.with_range(start=START, end=END)
    assert View.from_params(board, custom.to_params()) == custom
    with pytest.raises(QueryError, match=r"cannot filter by 'os'"):
        View.from_params(board, {"f.os": ["linux"]})
    with pytest.raises(QueryError, match=r"cannot break down by 'os'"):
        View.from_params(board, {"by": ["os"]})
    with pytest.raises(QueryError, match=r"unknown grain '2h'"):
        View.from_params(board, {"grain": ["2h"]})
    with pytest.raises(QueryError, match=r"bad start/end in the URL"):
        View.from_params(board, {"start": ["yesterday"]})
    # Plausible's and PostHog's spelling filters too (both may be given: any of the values); nothing is ignored.
    plain = View.from_params(board, {"country": ["US"], "f.country": ["DE"], "device": ["mobile"]})
    assert plain.where() == {"country": ["US", "DE"], "device": ["mobile"]} and plain.to_params()["f.country"] == ["US", "DE"]
    with pytest.raises(QueryError, match=r"unknown parameter 'contry'; this page takes last, start, .*did you mean 'country'"):
        View.from_params(board, {"contry": ["US"]})
    # A link a newsletter tagged opens the same view: campaign tags and click ids are not questions about the data.
    tagged = View.from_params(board, {"country": ["US"], "utm_source": ["newsletter"], "utm_medium": ["email"], "fbclid": ["x1"]})
    assert tagged == View.from_params(board, {"country": ["US"]})
    assert view.drill("country", "US") is view  # already narrowed to it: the same view


# --- panel data through the query layer ----------------------------------------------------
@pytest.mark.store
def test_every_panel_equals_its_query_and_all_read_one_range_and_one_set_of_totals(shop_ws):
    board = shop_ws.plan.definitions.dashboard("shop")
    view = make_view(board, last="24h", where={"device": "mobile"})
    data = load_board(shop_ws, board, view, now=QUERY_NOW)
    assert [p.error for p in data.panels] == [None] * len(board.panels)
    for item in (p for p in data.panels if p.panel.kind not in PERSON_KINDS):  # tests/test_funnel_panels.py, test_person_panels.py
        expected = pl.DataFrame(shop_ws.query(list(item.panel.metrics), **item.options)).select(item.frame.columns)
        assert_frame_equal(item.frame.drop("final"), expected.drop("final"), check_exact=False)  # sums read twice: float noise
    # One range for every panel, on the coarsest grain's boundaries (hours here), whatever the panel's grain.
    assert {(o["start"], o["end"]) for o in (p.options for p in data.panels)} == {(data.moment.start, data.moment.end)}
    hour = QUERY_NOW.replace(minute=0)
    assert (data.moment.start, data.moment.end) == (hour - timedelta(hours=24), hour + timedelta(hours=1))
    assert {p.options["grain"] for p in data.panels if p.panel.kind not in PERSON_KINDS} >= {"1h"}
    # The tiles and the table's Total row are one query's numbers.
    kpis, table_panel = data.panels[0], next(p for p in data.panels if p.panel.kind == "table")
    assert kpis.frame.columns == ["revenue", "purchases", "visitors", "conversion", *(f"{m}_previous" for m in kpis.panel.metrics), "final"]
    shared = ("revenue", "purchases", "visitors", "conversion")
    assert table_panel.totals.select(shared).row(0) == kpis.frame.select(shared).row(0)
    totals = shop_ws.query(
        list(table_panel.panel.metrics), start=data.moment.start, end=data.moment.end, where={"device": "mobile"}, total=True
    )
    assert_frame_equal(table_panel.totals, pl.DataFrame(totals).select(table_panel.panel.metrics), check_exact=False)
    assert data.units["revenue"] == "USD" and data.units["conversion"] == "%"
    # Which buckets are final follows from one watermark (the newest event, less the settle time).
    assert data.moment.watermark == shop_ws.freshness().newest_event - timedelta(seconds=10)
    series = data.panels[1].frame
    assert series.filter(pl.col("final")).height and not series.filter(pl.col("bucket") > data.moment.watermark)["final"].any()


@pytest.mark.store
def test_blocks_show_the_numbers_formatted_and_drill_where_they_can(shop_ws):
    data = load_board(shop_ws, shop_ws.plan.definitions.dashboard("shop"), make_view(shop_ws.plan.definitions.dashboard("shop"), **WINDOW))
    parts = blocks(data)
    revenue = data.panels[0].frame["revenue"][0]
    assert f"${revenue / 1000:.1f}".rstrip("0").rstrip(".") + "K" in parts[0].html  # $13.9K style
    # The funnel splits a clicked step instead; retention and paths do not drill.
    assert [b.drill for b in parts] == [None, None, None, "country", "device", "campaign", None, None, None]
    bars = parts[3].spec
    assert {p["name"] for p in bars["params"]} >= {"pick_p3"}
    values = [r["country"] for r in bars["datasets"][bars["data"]["name"]]]
    assert values == data.panels[3].frame["country"].to_list()
    assert 'data-value="google_00"' in parts[5].html and "<tfoot>" in parts[5].html


@pytest.mark.store
def test_a_panel_that_cannot_be_answered_shows_why(shop_ws):
    board = dashboard("broken", [kpi("revenue"), timeseries("page_views", compare=True)])
    view = make_view(board, start=QUERY_NOW - timedelta(days=3650), end=QUERY_NOW, grain="1m")
    data = load_board(shop_ws, board, view)
    assert data.panels[1].error is not None and "no rollup answers 'page_views' at grain '1m'" in data.panels[1].error
    assert "no rollup answers" in blocks(data)[1].html


# --- the widget, without a kernel ----------------------------------------------------------
@pytest.fixture
def widget(shop_ws):  # type: ignore[no-untyped-def]
    return shop_ws.dashboard("shop", **WINDOW)


def _tile(widget, name: str) -> str:  # type: ignore[no-untyped-def]
    return re.search(rf'data-metric="{name}">.*?class="value">([^<]+)<', widget.tiles.value).group(1)


def _chart_values(widget, title: str) -> list[dict]:  # type: ignore[no-untyped-def]
    spec = widget.chart.spec
    for sub in spec["vconcat"]:
        if sub.get("title") == title:
            data = sub["layer"][0].get("data") or sub.get("data")
            return spec["datasets"][data["name"]] if "name" in data else data["values"]
    raise AssertionError(f"no chart titled {title!r}")


@pytest.mark.store
def test_controls_change_the_queries_and_the_charts(widget, shop_ws):
    assert widget.view.range_options() == {**WINDOW, "last": None}
    all_revenue = _tile(widget, "revenue")
    assert widget.filters["country"].options[0] == "US"  # top values first
    widget.filters["device"].value = ("tablet",)
    assert widget.view.where() == {"device": ["tablet"]}
    tablet = shop_ws.query("revenue", **WINDOW, total=True, where={"device": "tablet"})["revenue"][0]
    assert _tile(widget, "revenue") != all_revenue and _tile(widget, "revenue") == rta.dash.formats.format_number(tablet, "USD")
    assert {r["device"] for r in _chart_values(widget, "visitors by device")} == {"tablet"}
    widget.grain.value = "1d"
    assert widget.view.grain == "1d" and len({r["bucket"] for r in _chart_values(widget, "Revenue (vs previous period)")}) == 3
    widget.breakdown.value = "campaign"  # every breakdown panel splits by campaign now; tables keep theirs
    assert widget.view.breakdown == "campaign"
    top_campaigns = shop_ws.query("revenue", **WINDOW, total=True, by="campaign", top=10, where={"device": "tablet"})["campaign"]
    assert [r["campaign"] for r in _chart_values(widget, "revenue by campaign")] == top_campaigns.to_list() != []
    widget.breakdown.value = ""
    assert widget.view.breakdown is None and _chart_values(widget, "revenue by country")
    widget.range.value = "24h"
    assert widget.view.last == "24h" and widget.view.start is None


@pytest.mark.store
def test_clicking_a_bar_or_a_row_drills_down_and_the_breadcrumb_clears_it(widget, shop_ws):
    # A click in the browser arrives as a selection update from the chart's JavaScript.
    widget.chart._vl_selections = {"pick_p3": {"value": {"vlPoint": {"or": [{"country": "DE"}]}}, "store": []}}
    assert widget.view.where() == {"country": ["DE"]}
    assert widget.filters["country"].value == ("DE",)
    assert [b.description for b in widget.crumbs.children] == ["country = DE ×", "Clear all"]
    germany = shop_ws.query("purchases", **WINDOW, total=True, where={"country": "DE"})["purchases"][0]
    assert _tile(widget, "purchases") == rta.dash.formats.format_number(germany)
    # Observers were attached again after the chart changed: a second click still drills.
    widget.chart._vl_selections = {"pick_p4": {"value": {"vlPoint": {"or": [{"device": "desktop"}]}}, "store": []}}
    assert widget.view.where() == {"country": ["DE"], "device": ["desktop"]}
    # A table row is a button.
    grid = widget.tables.children[0].children[1]
    row = next(c for c in grid.children if getattr(c, "description", None) == "(none)")
    row.click()
    assert widget.view.where()["campaign"] == ["(none)"]
    widget.crumbs.children[0].click()  # remove the country filter
    assert "country" not in widget.view.where()
    widget.crumbs.children[-1].click()  # clear all
    assert widget.view.filters == ()


class _Gated:
    """The workspace, with the first minute-grain query held until ``gate`` opens: a refresh still
    running when the next change arrives (JupyterLab hands widget messages to a kernel subshell
    while the main thread handles others)."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws, self.entered, self.gate = ws, threading.Event(), threading.Event()

    @property
    def plan(self):  # type: ignore[no-untyped-def]
        return self.ws.plan

    def freshness(self):  # type: ignore[no-untyped-def]
        return self.ws.freshness()

    def query(self, metrics, **options):  # type: ignore[no-untyped-def]
        if options.get("grain") == "1m" and not self.gate.is_set():
            self.entered.set()
            assert self.gate.wait(30)
        return self.ws.query(metrics, **options)

    def funnel(self, name, **options):  # type: ignore[no-untyped-def]
        return self.ws.funnel(name, **options)

    def retention(self, name, **options):  # type: ignore[no-untyped-def]
        return self.ws.retention(name, **options)

    def paths(self, name, **options):  # type: ignore[no-untyped-def]
        return self.ws.paths(name, **options)


@pytest.mark.store
def test_changes_on_two_threads_draw_the_newest_view_and_keep_a_click_made_during_a_redraw(shop_ws):
    source = _Gated(shop_ws)
    widget = dashboard_widget(source, "shop", **WINDOW)
    subshell = threading.Thread(target=lambda: setattr(widget.grain, "value", "1m"))
    subshell.start()
    assert source.entered.wait(30)  # its refresh is loading the 1m view
    widget.filters["device"].value = ("mobile",)  # meanwhile, on the main thread: returns at once
    widget.grain.value = "auto"
    widget.chart._vl_selections = {"pick_p3": {"value": {"vlPoint": {"or": [{"country": "DE"}]}}, "store": []}}  # a click
    source.gate.set()
    subshell.join(60)
    assert not subshell.is_alive()
    assert widget.view.grain == "auto" and widget.view.where() == {"device": ["mobile"], "country": ["DE"]}
    assert widget.data.view == widget.view  # the 1m view loaded meanwhile was never drawn
    assert widget.grain.value == "auto" and widget.filters["device"].value == ("mobile",) and widget.filters["country"].value == ("DE",)
    both = shop_ws.query("purchases", **WINDOW, total=True, where={"device": "mobile", "country": "DE"})["purchases"][0]
    assert _tile(widget, "purchases") == rta.dash.formats.format_number(both)
    widget.drill("country", "DE")  # the same filter again changes nothing (the breadcrumb keeps its order)
    assert [b.description for b in widget.crumbs.children][:2] == ["device = mobile ×", "country = DE ×"]


@pytest.mark.store
def test_refresh_keeps_filters_and_does_not_redraw_an_unchanged_chart(widget):
    widget.drill("device", "mobile")
    spec_before, chart_before = widget.chart.spec, widget.chart.chart
    widget.refresh()
    assert widget.view.where() == {"device": ["mobile"]} and widget.filters["device"].value == ("mobile",)
    assert widget.chart.chart is chart_before and widget.chart.spec == spec_before  # nothing re-embedded: no flicker
    widget.drill("country", "US")  # something changed: the chart is redrawn with the new data
    assert widget.chart.spec != spec_before


@pytest.mark.store
@pytest.mark.flow
def test_live_refresh_on_the_event_loop_shows_new_events(tmp_path, _session_client, store_dsn, monkeypatch):
    import numpy as np

    clear_store(_session_client)
    (tmp_path / "metrics").mkdir()
    shutil.copy(ROOT / "metrics" / "shop.py", tmp_path / "metrics" / "shop.py")
    monkeypatch.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
    ws = rta.connect(tmp_path)
    now_ms = int(QUERY_NOW.timestamp() * 1000)

    def load(n: int, seed: int) -> None:
        events = generate(Population(seed, users=500), n, now_ms - 3_600_000, now_ms - 60_000, np.random.default_rng(seed), f"s{seed}")
        run_flow(ws.plan, BatchSource(frame_batches("events", [events], key_prefix=f"k{seed}")), ws.client, clock=lambda: QUERY_NOW)

    load(500, 1)
    board = dashboard_widget(ws, "shop", **WINDOW)
    before = board.data.panels[2].frame["page_views"].sum()
    seen: list[float] = []
    board.on_refresh.append(lambda data: seen.append(data.panels[2].frame["page_views"].sum()))

    async def scenario() -> None:
        board.live(every=0.2)
        assert board.live_toggle.value is True
        await asyncio.to_thread(load, 2_000, 2)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if seen and seen[-1] > before:
                break
        board.stop()

    asyncio.run(scenario())
    assert seen and seen[-1] > before, (before, seen)
    assert board._task is None and board.live_toggle.value is False


# --- reports -------------------------------------------------------------------------------
@pytest.fixture
def report(shop_ws, tmp_path):  # type: ignore[no-untyped-def]
    return shop_ws.report(
        "shop",
        out=tmp_path / "report.html",
        **WINDOW,
        where={"device": ["mobile", "desktop"]},
        images=tmp_path / "png",
        data=tmp_path / "data",
    )


@pytest.mark.store
def test_the_report_is_one_file_with_everything_inline(report, tmp_path):
    text = report.html.read_text()
    assert "<script src" not in text and "http://" not in text.split("<script>")[0] and "https://" not in text.split("<script>")[0]
    assert "device in mobile, desktop" in text and "times in UTC" in text and "Generated by rta at" in text
    specs = json.loads(
        re.search(r'<script type="application/json" id="rta-specs">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</")
    )
    assert sorted(specs) == ["p1", "p2", "p3", "p4", "p6", "p7", "p8"]  # the checkout funnel's bars, the retention heatmap, the paths
    assert [p.suffix for p in report.images] == [".png"] * 7 and all(p.read_bytes()[:4] == b"\x89PNG" for p in report.images)
    frames = {p.name.split("-")[0]: pl.read_csv(p) for p in report.data}
    assert sorted(frames) == [f"p{i}" for i in range(9)] and "campaign" in frames["p5"].columns


def _open_offline(page_api, url: str):  # type: ignore[no-untyped-def]
    """Open ``url`` in headless Chromium with every non-file request refused; returns (browser, page, refused)."""
    chromium = require_service("chromium")
    p = page_api.sync_playwright().start()
    browser = p.chromium.launch(executable_path=shutil.which("chromium") or chromium, args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    refused: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    return p, browser, page, refused


@pytest.mark.store
@pytest.mark.services
def test_the_report_draws_every_chart_in_chromium_with_no_network(report):
    page_api = require_module("playwright.sync_api")
    p, browser, page, refused = _open_offline(page_api, report.html.as_uri())
    try:
        page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error", timeout=30_000)
        assert page.evaluate("document.body.dataset.error") is None
        marks = page.evaluate(
            "Array.from(document.querySelectorAll('.chart')).map(c => c.querySelectorAll('.mark-line path, .mark-rect path').length)"
        )
        assert len(marks) == 7 and all(n > 0 for n in marks), marks  # four metric charts, the funnel's bars, retention and paths
        assert page.locator(".tile .value").count() == 4
        page.locator("table.rta-table th").nth(1).click()  # sort by page views, largest first
        cells = page.locator("table.rta-table tbody tr td:nth-child(2)").evaluate_all("tds => tds.map(td => Number(td.dataset.sort))")
        assert cells == sorted(cells, reverse=True)
    finally:
        browser.close()
        p.stop()
    assert refused == []


@pytest.mark.store
@pytest.mark.services
def test_pdf_export_is_a_multi_page_pdf(shop_ws, tmp_path):
    require_service("chromium")
    require_module("playwright.sync_api")
    files = shop_ws.report("shop", out=tmp_path / "r.html", pdf=tmp_path / "r.pdf", **WINDOW)
    pdf = files.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2


@pytest.mark.store
def test_report_html_escapes_what_it_shows(shop_ws):
    board = dashboard("x", [table("page_views", by="campaign")], filters=["campaign"]).__class__(
        "x", (table("page_views", by="campaign"),), ("campaign",), title="<script>alert(1)</script>"
    )
    data = load_board(shop_ws, board, make_view(board, **WINDOW, where={"campaign": "</script><b>"}))
    text = report_html(data)
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "</script><b>" not in text.split('id="rta-specs">')[0]


@pytest.mark.store
def test_write_report_refuses_unknown_formats(shop_ws, tmp_path):
    board = shop_ws.plan.definitions.dashboard("shop")
    data = load_board(shop_ws, board, make_view(board, **WINDOW))
    with pytest.raises(rta.errors.RtaError, match="report data is csv or parquet, got 'xlsx'"):
        write_report(data, tmp_path / "r.html", data_dir=tmp_path / "d", data_format="xlsx")
    assert Path(tmp_path / "r.html").exists()
