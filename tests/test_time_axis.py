"""Time axes say which day a point is: dates on multi-day ranges, times within a day (report, widget and page share the blocks)."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from rta.dash import make_view
from rta.dash.blocks import blocks
from rta.dash.charts import series_chart, spec
from rta.dash.data import load_board
from rta.dash.export import CHROMIUM_FLAGS
from tests.conftest import QUERY_NOW, require_module, require_service

SHOTS = Path("/tmp/panelshots")
DATES = "utcFormat(datum.value, '%b %-d')"


def _x_axes(chart_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The x axis of every time chart in a spec (one, or one per metric of a stacked series)."""
    charts = chart_spec.get("vconcat", [chart_spec])
    return [layer["encoding"]["x"]["axis"] for c in charts for layer in c["layer"][:1]]


def _hourly(days: float) -> pl.DataFrame:
    start = datetime(2026, 11, 21, 12, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(int(days * 24))]
    return pl.DataFrame({"bucket": hours, "revenue": [float(h % 5) for h in range(len(hours))]})


@pytest.mark.core
def test_a_chart_on_its_own_labels_dates_over_days_and_times_within_one():
    (week,) = _x_axes(spec(series_chart(_hourly(7), "revenue")))
    assert week["labelExpr"] == DATES and week["tickMinStep"] == 86_400_000  # ticks on midnights, each named by its date
    (day,) = _x_axes(spec(series_chart(_hourly(1), "revenue")))
    assert "'%H:%M'" in day["labelExpr"] and "'%b %-d'" in day["labelExpr"] and "tickMinStep" not in day  # midnight says the date
    (year,) = _x_axes(spec(series_chart(_hourly(400), "revenue")))
    assert year["labelExpr"] == "utcFormat(datum.value, '%b %Y')"


@pytest.mark.store
@pytest.mark.parametrize(("last", "dated"), [("7d", True), ("24h", False)])
def test_the_dashboards_time_charts_label_the_range_they_show(shop_ws, last, dated):
    board = shop_ws.plan.definitions.dashboard("shop")
    data = load_board(shop_ws, board, make_view(board, last=last), now=QUERY_NOW)
    series = [b for b in blocks(data) if b.template is not None and b.key in ("p1", "p2")]
    axes = [axis for b in series for axis in _x_axes(b.spec or {})]
    assert len(axes) == 3  # revenue, then page views and visitors stacked
    for axis in axes:
        assert (axis["labelExpr"] == DATES) is dated and ("'%H:%M'" in axis["labelExpr"]) is not dated, axis


def _visible_labels(page: Any, chart: str) -> list[list[dict[str, Any]]]:
    """Per x axis of a chart, the labels Vega left visible (it hides overlapping ones with opacity 0), with their boxes."""
    return page.evaluate(
        """(chart) => Array.from(document.querySelectorAll(`${chart} .role-axis`))
            .filter(a => (a.getAttribute('aria-label') || '').startsWith('X-axis'))
            .map(a => Array.from(a.querySelectorAll('.role-axis-label text'))
              .filter(t => Number(t.getAttribute('opacity') ?? 1) > 0)
              .map(t => { const r = t.getBoundingClientRect(); return {text: t.textContent, left: r.left, right: r.right}; }))""",
        chart,
    )


@pytest.mark.store
@pytest.mark.services
def test_the_reports_time_axis_reads_dates_in_chromium(shop_ws, tmp_path):
    page_api = require_module("playwright.sync_api")
    require_service("chromium")
    SHOTS.mkdir(parents=True, exist_ok=True)
    spans = {"7d": timedelta(days=7), "24h": timedelta(hours=24)}
    reports = {
        last: shop_ws.report("shop", out=tmp_path / f"{last}.html", start=QUERY_NOW - span, end=QUERY_NOW) for last, span in spans.items()
    }
    with page_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            for last, report in reports.items():
                page.goto(report.html.as_uri())
                page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error", timeout=30_000)
                assert page.evaluate("document.body.dataset.error") is None
                axes = [labels for chart in ("#chart-p1", "#chart-p2") for labels in _visible_labels(page, chart)]
                assert len(axes) == 3  # revenue, then page views and visitors stacked
                for labels in axes:
                    texts = [label["text"] for label in labels]
                    pattern = r"[A-Z][a-z]{2} \d{1,2}" if last == "7d" else r"\d\d:\d\d|[A-Z][a-z]{2} \d{1,2}"
                    assert len(texts) >= 4 and all(re.fullmatch(pattern, t) for t in texts), texts
                    if last == "7d":
                        assert len(set(texts)) == len(texts), texts  # a date once each
                    for left, right in zip(labels, labels[1:], strict=False):
                        assert left["right"] <= right["left"], (left, right)  # none overlaps the next
                page.locator("#block-p1").screenshot(path=str(SHOTS / f"report-time-axis-{last}.png"))
                page.locator("#block-p2").screenshot(path=str(SHOTS / f"report-time-axis-{last}-stacked.png"))
        finally:
            browser.close()
