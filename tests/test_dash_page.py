"""Shared live dashboards: `rta run` serves /d/NAME; headless Chromium with only loopback reachable."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request

import pytest

from rta.dash.export import CHROMIUM_FLAGS
from rta.sdk import Client
from tests.conftest import ROOT, require_module, require_service
from tests.ingest_helpers import cli, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow, pytest.mark.services]


@pytest.fixture(scope="module")
def running(tmp_path_factory):  # type: ignore[no-untyped-def]
    project = tmp_path_factory.mktemp("page")
    (project / "metrics").mkdir()
    # The example dashboard refreshes every 30 s; 5 s keeps the test short.
    shop = (ROOT / "metrics" / "shop.py").read_text()
    (project / "metrics" / "shop.py").write_text(shop.replace('refresh="30s"', 'refresh="5s"'))
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    server = start(project, "--no-alerts")
    write_key = cli(project, "keys", "create", "write")
    try:
        yield server, write_key
    finally:
        server.stop()


def send_purchases(url: str, key: str, n: int, campaign: str) -> None:
    client = Client(key, url, flush_interval=0.05)
    for i in range(n):
        client.track(f"buyer-{i}", "purchase", {"revenue": 10.0, "country": "FR", "device": "desktop", "campaign": campaign})
    assert client.flush(timeout=60)
    client.close()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_a_page_needs_a_token_or_a_read_key(running):
    server, write_key = running
    token = cli(server.project, "share", "shop", "--url", server.url).rsplit("token=", 1)[1]
    read_key = cli(server.project, "keys", "create", "read")
    assert status_of(f"{server.url}/d/shop") == 401
    browser = urllib.request.Request(f"{server.url}/d/shop?token=nope", headers={"Accept": "text/html,application/xhtml+xml"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(browser, timeout=30)
    page = refused.value.read().decode()
    assert refused.value.code == 401 and "<h1>This dashboard cannot be shown</h1>" in page and "unknown or revoked token" in page
    assert status_of(f"{server.url}/d/shop/data") == 401
    assert status_of(f"{server.url}/d/shop?token=nope") == 401
    assert status_of(f"{server.url}/d/shop?token={write_key}") == 403
    assert status_of(f"{server.url}/d/shop?token={token}") == 200
    assert status_of(f"{server.url}/d/shop/data?token={token}") == 200
    assert status_of(f"{server.url}/d/shop?key={read_key}") == 200
    assert status_of(f"{server.url}/d/other?token={token}") == 404
    assert status_of(f"{server.url}/v1/query?metrics=revenue&token={token}") == 401  # a share token reads nothing else
    assert status_of(f"{server.url}/d/shop/data?token={token}&f.os=linux") == 400
    key_id = next(line.split()[0] for line in cli(server.project, "keys", "list").splitlines() if "dashboard:shop" in line)
    cli(server.project, "keys", "revoke", key_id)
    assert status_of(f"{server.url}/d/shop?token={token}") == 401
    assert status_of(f"{server.url}/static/vega.js") == 200  # the libraries are public, like a CDN's
    # rta run also keeps the example's daily report schedule (first sight remembered, due at 08:00).
    assert "1 scheduled report(s)" in server.log()
    assert json.loads((server.project / ".rta" / "reports.json").read_text()).keys() == {"shop_daily"}


def test_the_page_draws_updates_without_reload_and_drills_down(running):
    server, write_key = running
    require_service("chromium")
    page_api = require_module("playwright.sync_api")
    send_purchases(server.url, write_key, 20, "spring")
    token = cli(server.project, "share", "shop", "--url", server.url).rsplit("token=", 1)[1]
    refused: list[str] = []
    with page_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})

            def route(r):  # type: ignore[no-untyped-def]
                if r.request.url.startswith(server.url):
                    r.continue_()
                else:
                    refused.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{server.url}/d/shop?token={token}&last=24h")
            page.wait_for_function("Number(document.body.dataset.renders || 0) >= 1", timeout=60_000)
            marks = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).map(c => c.querySelectorAll('.mark-line path, .mark-rect path').length)"
            )
            assert len(marks) == 4 and all(n > 0 for n in marks), marks
            tile = page.locator('.tile[data-metric="purchases"] .value')
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '20'", timeout=30_000)
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            send_purchases(server.url, write_key, 15, "summer")
            # The page refreshes every 5 s (the dashboard's refresh here); the numbers change in place.
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '35'", timeout=60_000)
            assert tile.text_content() == "35" and navigations == []
            # Drill down: a click on a table row filters every panel and lands in the URL.
            page.locator('tr[data-value="summer"]').click()
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '15'", timeout=30_000)
            assert "f.campaign=summer" in page.url
            assert page.locator(".crumb").first.text_content().startswith("campaign = summer")
            page.locator('[data-clear="*"]').click()
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '35'", timeout=30_000)
            assert "f.campaign" not in page.url
            assert re.search(r"data up to .* UTC", page.locator("#rta-freshness").text_content())
            # The filter pickers offer the top values; each pick adds one (several values of a dimension: any of them).
            picker = 'select.rta-filter[data-dim="campaign"]'
            page.wait_for_function(f"document.querySelector('{picker} option[value=\"summer\"]') !== null", timeout=30_000)
            page.select_option(picker, "summer")
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '15'", timeout=30_000)
            assert page.locator(f'{picker} option[value="summer"]').count() == 0  # chosen: no longer offered
            page.select_option(picker, "spring")
            page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '35'", timeout=30_000)
            assert "f.campaign=summer&f.campaign=spring" in page.url
            assert page.locator(".crumb").first.text_content().startswith("campaign in summer, spring")
            page.locator('[data-clear="*"]').click()
            page.wait_for_function("!location.search.includes('f.campaign')", timeout=30_000)
            # Break down by campaign: the bars now name campaigns, and the choice lands in the URL.
            page.select_option("#rta-by", "campaign")
            page.wait_for_function("document.getElementById('block-p3').textContent.includes('revenue by campaign')", timeout=30_000)
            assert "by=campaign" in page.url
        finally:
            browser.close()
    assert refused == []


def test_rta_report_goes_through_the_running_api_when_rta_run_owns_the_store(running):
    server, write_key = running
    send_purchases(server.url, write_key, 3, "autumn")
    assert query_total(server.project, "SELECT count() FROM events WHERE campaign = 'autumn'", expect=3) == 3
    out = server.project / "from-cli.html"
    written = cli(server.project, "report", "shop", "--last", "24h", "--where", "campaign=autumn", "--out", str(out))
    assert written.splitlines() == [str(out)]
    text = out.read_text()
    assert "campaign = autumn" in text and re.search(
        r'data-metric="purchases"><div class="name">purchases</div><div class="value">3<', text
    )
    assert "data up to" in text  # freshness came over the API too
