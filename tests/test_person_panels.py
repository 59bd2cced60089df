"""Retention and paths panels on dashboards: the definitions, their checks at compile time, their data, the widget,
the report and /d/NAME (in Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rta import col, count, dashboard, kpi, metric, paths, paths_flow, retention, retention_heatmap, rollup, stream
from rta.compiler import compile
from rta.dash import make_view
from rta.dash.blocks import blocks
from rta.dash.data import load_board
from rta.dash.export import CHROMIUM_FLAGS
from rta.dash.paths_blocks import path_text, paths_rows, paths_subtitle, paths_template
from rta.dash.retention_blocks import retention_rows
from rta.dash.widget import dashboard_widget
from rta.dsl.definitions import definitions
from rta.errors import CompilationError, DefinitionError
from tests.conftest import QUERY_NOW, require_module, require_service

WINDOW = {"start": QUERY_NOW - timedelta(days=2), "end": QUERY_NOW}
SHOTS = Path("/tmp/panelshots")
RETENTION, PATHS = "p7", "p8"  # the shop dashboard's keys of the two panels


# --- the definitions -----------------------------------------------------------------------
@pytest.mark.core
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: retention_heatmap(""), r"retention_heatmap: expected a retention or its name such as 'signup_return', got ''"),
        (lambda: paths_flow(3), r"paths_flow: expected a paths or its name such as 'after_signup', got 3"),
        (lambda: paths_flow("after_signup", top=0), r"top= takes a number of rows from 1 to 1000, got 0"),
    ],
)
def test_panel_mistakes_fail_at_definition(build, message):
    with pytest.raises(DefinitionError, match=message):
        build()


def _defs(*panels, filters=("country",), metrics=True):  # type: ignore[no-untyped-def]
    events = stream("events", dimensions={"event": str, "country": str, "device": str}, user="user_id", keep_raw="30d")
    views = metric("views", count(), stream=events)
    back = retention("back", start=col("event") == "signup", back=col("event") == "visit", every="1d", periods=3, stream=events)
    after = paths("after", after=col("event") == "signup", steps=2, stream=events)
    board = dashboard("d", [kpi(views), *panels] if metrics else list(panels), filters=list(filters))
    return definitions([events, views, back, after, rollup("traffic", [views], by=["country", "device"]), board])


@pytest.mark.core
def test_the_compiler_refuses_a_panel_of_an_unknown_definition_or_a_filter_its_stream_lacks():
    plan = compile(_defs(retention_heatmap("back"), paths_flow("after", top=5)))
    board = plan.definitions.dashboard("d")
    assert board.retention_names() == ("back",) and board.paths_names() == ("after",) and board.metric_names() == ("views",)
    text = plan.dashboards_text()
    assert "  retention 'back retention': back\n" in text and "  paths 'after paths': after top 5\n" in text
    with pytest.raises(CompilationError, match=r"dashboard 'd', panel 'bak retention': no retention named 'bak'; did you mean 'back'"):
        compile(_defs(retention_heatmap("bak")))
    with pytest.raises(CompilationError, match=r"dashboard 'd', panel 'aftr paths': no paths named 'aftr'; did you mean 'after'"):
        compile(_defs(paths_flow("aftr")))
    for panel, kind, name in ((retention_heatmap("back"), "retention", "back"), (paths_flow("after"), "paths", "after")):
        with pytest.raises(CompilationError, match=rf"dashboard 'd', panel '.*' \({kind} '{name}'\): stream 'events' has no field 'os'"):
            compile(_defs(panel, filters=("os",), metrics=False))


# --- drawing, without a store --------------------------------------------------------------
@pytest.mark.core
def test_retention_rows_are_a_size_then_a_shaded_cell_per_begun_period():
    days = [datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)]
    frame = pl.DataFrame(
        {"cohort": [days[0]] * 3 + [days[1]] * 2, "cohort_size": [4, 4, 4, 2, 2], "period": [0, 1, 2, 0, 1], "people": [4, 3, 0, 2, 1]}
    ).with_columns((pl.col("people") / pl.col("cohort_size")).alias("retention"))
    columns, rows = retention_rows(frame, "1d")
    assert columns == ("Size", "Day 0", "Day 1", "Day 2")
    assert [(r["cohort"], r["column"], r["text"]) for r in rows] == [
        ("Nov 26", "Size", "4"), ("Nov 26", "Day 0", "100.0%"), ("Nov 26", "Day 1", "75.0%"), ("Nov 26", "Day 2", "0.0%"),
        ("Nov 27", "Size", "2"), ("Nov 27", "Day 0", "100.0%"), ("Nov 27", "Day 1", "50.0%"),
    ]  # fmt: skip
    assert [r["ink"] for r in rows if r["column"] != "Size"] == ["#ffffff", "#ffffff", "#202124", "#ffffff", "#202124"]


@pytest.mark.core
def test_paths_rows_write_each_path_and_its_people():
    frame = pl.DataFrame(
        {
            "start": ["signup"] * 3,
            "step_1": ["view", "view", None],
            "step_2": ["click", None, None],
            "people": [5, 3, 2],
            "share": [0.5, 0.3, 0.2],
        }
    )
    assert [(r["path"], r["numbers"]) for r in paths_rows(frame)] == [
        ("signup → view → click", "5 · 50.0%"), ("signup → view → end", "3 · 30.0%"), ("signup → end", "2 · 20.0%"),
    ]  # fmt: skip
    assert paths_subtitle(frame) == "the most common paths of 10 people from their first signup, each with its people and share"
    assert paths_subtitle(frame.clear()) == "nobody did the first step in this range" and path_text([""]) == "(none)"
    assert len(paths_template("k", "t", "s", 0)[1]["layer"]) == 2  # nobody: no bars (an empty scale's extent makes Vega warn)


# --- data and blocks -----------------------------------------------------------------------
def _panel(data, kind):  # type: ignore[no-untyped-def]
    return next(p for p in data.panels if p.panel.kind == kind)


@pytest.mark.store
def test_the_panels_draw_ws_retention_and_ws_paths_under_the_views_range_and_filters(shop_ws):
    board = shop_ws.plan.definitions.dashboard("shop")
    data = load_board(shop_ws, board, make_view(board, last="7d", where={"device": ["mobile", "desktop"]}), now=QUERY_NOW)
    asked = {"start": data.moment.start, "end": data.moment.end, "where": {"device": ["mobile", "desktop"]}, "by": ()}
    cohorts, top = _panel(data, "retention"), _panel(data, "paths")
    assert cohorts.error is None and top.error is None and cohorts.every == "1d"
    assert cohorts.options == asked and top.options == {**asked, "top": 8}  # the rendering's one range, the view's filters
    assert_frame_equal(cohorts.frame, shop_ws.retention("signup_return", now=QUERY_NOW, **asked))
    assert_frame_equal(top.frame, shop_ws.paths("after_signup", now=QUERY_NOW, top=8, **asked))
    assert cohorts.frame["cohort"].n_unique() >= 2 and top.frame.height == 8  # the demo's people do sign up and come back
    parts = {b.key: b for b in blocks(data)}
    heat = parts[RETENTION]
    assert heat.spec["title"]["text"] == "Signups coming back" and heat.drill is None and heat.step is None
    cells = [r for r in heat.datasets[RETENTION] if r["column"] != "Size"]
    assert [(r["people"], r["share"]) for r in cells] == list(zip(cohorts.frame["people"], cohorts.frame["retention"], strict=True))
    listed = parts[PATHS]
    assert [r["people"] for r in listed.datasets[PATHS]] == top.frame["people"].to_list()
    assert listed.spec["title"]["subtitle"].startswith("the most common paths of ")
    # Another filter, other answers: each panel follows the view.
    tablets = load_board(shop_ws, board, make_view(board, **WINDOW, where={"device": "tablet"}), now=QUERY_NOW)
    where = {"start": tablets.moment.start, "end": tablets.moment.end, "where": {"device": ["tablet"]}, "by": ()}
    assert_frame_equal(_panel(tablets, "retention").frame, shop_ws.retention("signup_return", now=QUERY_NOW, **where))


@pytest.mark.store
def test_a_panel_that_cannot_be_answered_shows_why(shop_ws):
    board = dashboard("people_only", [retention_heatmap("signup_return"), paths_flow("after_signup")])
    data = load_board(shop_ws, board, make_view(board, start=QUERY_NOW - timedelta(days=400), end=QUERY_NOW), now=QUERY_NOW)
    assert all("raw events of 'events' are kept 30d" in (p.error or "") for p in data.panels)
    assert all("raw events of" in (b.html or "") and b.error for b in blocks(data))


# --- the widget, without a kernel ----------------------------------------------------------
@pytest.mark.store
def test_the_widget_draws_both_and_a_filter_redraws_them(shop_ws):
    widget = dashboard_widget(shop_ws, "shop", **WINDOW)
    titles = [
        sub.get("title", {}).get("text") if isinstance(sub.get("title"), dict) else sub.get("title") for sub in widget.chart.spec["vconcat"]
    ]
    assert titles[-2:] == ["Signups coming back", "After signing up"]
    before = widget.chart.spec["datasets"][RETENTION]
    widget.filters["device"].value = ("mobile",)
    moment = widget.data.moment
    mobile = shop_ws.retention("signup_return", by=(), start=moment.start, end=moment.end, where={"device": ["mobile"]})
    after = widget.chart.spec["datasets"][RETENTION]
    assert after != before and [r["people"] for r in after if r["column"] != "Size"] == mobile["people"].to_list()


# --- the report and the page, in Chromium --------------------------------------------------
def _drawn(page: Any) -> dict[str, Any]:
    """What Chromium drew of the two panels: the heatmap's cells and texts, the paths' bars and texts."""
    return page.evaluate(
        """([r, p]) => ({
            cells: document.querySelectorAll(`#block-${r} .mark-rect path`).length,
            heat: Array.from(document.querySelectorAll(`#block-${r} .mark-text text`)).map(t => t.textContent),
            bars: Array.from(document.querySelectorAll(`#block-${p} .mark-rect path`)).map(b => b.getBoundingClientRect().width),
            listed: Array.from(document.querySelectorAll(`#block-${p} .mark-text text`)).map(t => t.textContent),
        })""",
        [RETENTION, PATHS],
    )


def _check_drawn(drawn: dict[str, Any], cohorts: pl.DataFrame, top: pl.DataFrame) -> None:
    assert drawn["cells"] == cohorts.height and drawn["heat"].count("100.0%") == cohorts["cohort"].n_unique(), drawn
    assert len(drawn["bars"]) == top.height and all(w > 1 for w in drawn["bars"]), drawn
    assert sum("→" in t for t in drawn["listed"]) == top.height and f"{top['people'][0]} · " in " ".join(drawn["listed"]), drawn


@pytest.mark.store
@pytest.mark.services
def test_the_report_and_the_page_draw_both_panels_in_chromium(shop_ws, tmp_path):
    page_api = require_module("playwright.sync_api")
    require_service("chromium")
    from rta.contract.keys import KeyStore
    from rta.dash.pages import DashboardPages
    from rta.query.api import QueryApi, serve_in_thread

    report = shop_ws.report("shop", out=tmp_path / "report.html", **WINDOW)
    text = report.html.read_text()
    specs = json.loads(re.search(r'id="rta-specs">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</"))
    assert {RETENTION, PATHS} <= specs.keys()
    data = load_board(shop_ws, shop_ws.plan.definitions.dashboard("shop"), make_view(shop_ws.plan.definitions.dashboard("shop"), **WINDOW))
    cohorts, top = _panel(data, "retention").frame, _panel(data, "paths").frame
    keys = KeyStore(tmp_path)
    _, secret = keys.create("read", "panels test")
    port, stop = serve_in_thread(DashboardPages(shop_ws, keys, QueryApi(shop_ws, keys)), port=0)
    url = f"http://127.0.0.1:{port}"
    query = urllib.parse.urlencode({"key": secret, "start": WINDOW["start"].isoformat(), "end": WINDOW["end"].isoformat()})
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with page_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                refused: list[str] = []
                allowed = ("file:", url)
                page.route(
                    "**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else (refused.append(r.request.url), r.abort())
                )
                page.goto(report.html.as_uri())
                page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error", timeout=30_000)
                assert page.evaluate("document.body.dataset.error") is None
                _check_drawn(_drawn(page), cohorts, top)
                for key, name in ((RETENTION, "retention"), (PATHS, "paths")):
                    page.locator(f"#block-{key}").screenshot(path=str(SHOTS / f"report-{name}.png"))
                page.goto(f"{url}/d/shop?{query}")
                page.wait_for_function("Number(document.body.dataset.renders || 0) >= 1", timeout=60_000)
                assert page.evaluate("document.body.dataset.error") is None
                _check_drawn(_drawn(page), cohorts, top)
                page.locator(f"#block-{RETENTION}").screenshot(path=str(SHOTS / "page-retention.png"))
                page.locator(f"#block-{PATHS}").screenshot(path=str(SHOTS / "page-paths.png"))
                page.screenshot(path=str(SHOTS / "page-shop.png"), full_page=True)
            finally:
                browser.close()
    finally:
        stop()
    assert refused == []
