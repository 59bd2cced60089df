"""`rta init --template web`: a Plausible-like project that the demo feeds, whose dashboards answer from visits and events."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import rta
from rta.cli import app
from rta.dash.data import load_board
from rta.dash.export import CHROMIUM_FLAGS
from rta.dash.view import View
from tests.conftest import clear_store, require_module, require_service

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SHOTS = Path("/tmp/panelshots")


@pytest.mark.core
def test_init_writes_the_template_asked_and_names_the_valid_ones(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "site"), "--template", "web"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "metrics" / "web.py").read_text() == (Path(rta.__file__).parents[1] / "metrics" / "web.py").read_text()
    wrong = runner.invoke(app, ["init", str(tmp_path / "other"), "--template", "blog"])
    assert wrong.exit_code != 0 and "unknown template 'blog'; valid templates are: shop, web" in wrong.output


@pytest.fixture(scope="module")
def web(_session_client, store_dsn, tmp_path_factory):  # type: ignore[no-untyped-def]
    clear_store(_session_client)
    project = tmp_path_factory.mktemp("site")
    CliRunner().invoke(app, ["init", str(project / "site"), "--template", "web"])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
        ws = rta.connect(project / "site")
    ws.load_demo(60_000, days=7, now=NOW)
    return ws


@pytest.mark.store
def test_every_panel_of_every_board_answers_and_the_numbers_agree(web):  # type: ignore[no-untyped-def]
    boards = {b.name: load_board(web, b, View.of(b), now=NOW) for b in web.plan.definitions.dashboards}
    assert sorted(boards) == ["web", "web_entries", "web_pages"]
    for data in boards.values():
        assert [(p.panel.title, p.error) for p in data.panels if p.error] == []
    overview = boards["web"]
    visits = web.query(["visits", "bounce_rate"], start=overview.moment.start, end=overview.moment.end, grain="total", now=NOW)
    kpi = next(p for p in overview.panels if "visits" in p.panel.metrics and p.panel.kind == "kpi")
    assert kpi.frame["visits"][0] == visits["visits"][0] > 1_000 and 0 < kpi.frame["bounce_rate"][0] < 1
    assert "visits_previous" in kpi.frame.columns  # compared with the week before, as KPIs are
    sources = next(p for p in overview.panels if p.panel.title == "Sources")
    assert {"Direct", "Google", "Facebook"} <= set(sources.frame["source"].to_list())
    assert sources.totals["visits"][0] == visits["visits"][0]  # the table's total row is the tile's number
    entries = next(p for p in boards["web_entries"].panels if p.panel.title == "Entry pages")
    assert entries.frame.height == 20 and entries.frame["visits"].sum() < entries.totals["visits"][0] == visits["visits"][0]  # top 20
    assert overview.units["visit_duration"] == "s" and overview.units["bounce_rate"] == "%"


@pytest.mark.store
def test_demo_sources_come_only_to_streams_that_declare_them(web):  # type: ignore[no-untyped-def]
    frame = web.sql("SELECT source, medium, count() AS n FROM events GROUP BY source, medium ORDER BY n DESC")
    assert frame.filter(pl.col("source") == "Google")["medium"].sort().to_list() == ["cpc", "organic"]
    found = web.properties()
    assert found.filter(pl.col("name") == "source")["declared"].to_list() in ([], [True])  # a declared dimension, not a property


@pytest.mark.store
@pytest.mark.services
def test_the_web_report_draws_in_chromium(web, tmp_path):  # type: ignore[no-untyped-def]
    page_api = require_module("playwright.sync_api")
    require_service("chromium")
    report = web.report("web", out=tmp_path / "web.html")
    assert report.failed == ()
    with page_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(report.html.as_uri())
            page.wait_for_function("document.body.dataset.rendered || document.body.dataset.error", timeout=30_000)
            assert page.evaluate("document.body.dataset.error") is None
            tiles = page.locator(".tile").all_text_contents()
            assert any("Bounce rate" in t.title() or "BOUNCE RATE" in t.upper() for t in tiles) and any("%" in t for t in tiles)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "web-report.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.core
def test_a_session_metric_on_a_board_split_by_what_visits_lack_fails_at_compile():
    from rta import dashboard, kpi, sessions, stream, table
    from rta.compiler import compile
    from rta.dsl.definitions import definitions
    from rta.errors import CompilationError

    events = stream("events", dimensions={"event": str, "path": str, "source": str}, user="user_id", keep_raw="7d", session=sessions())
    fine = dashboard("ok", [kpi("visits", "bounce_rate"), table("visits", by="entry")], filters=["source"])
    assert compile(definitions([events, fine])).definitions.dashboard("ok") == fine
    wrong = dashboard("bad", [kpi("visits"), table("visits", by="path")])
    refused = r"visits \(a session metric\) cannot be split or filtered by 'path'; visits have source, entry, exit"
    with pytest.raises(CompilationError, match=refused):
        compile(definitions([events, wrong]))
