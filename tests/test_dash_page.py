"""Shared live dashboards: `rta run` serves /d/NAME; headless Chromium with only loopback reachable."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from typing import Any

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


def _loopback_only(page: Any, url: str, refused: list[str]) -> None:
    """Let the page reach ``url`` only; every other request is aborted and recorded in ``refused``."""

    def route(r):  # type: ignore[no-untyped-def]
        if r.request.url.startswith(url):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)


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

            _loopback_only(page, server.url, refused)
            page.goto(f"{server.url}/d/shop?token={token}&last=24h")
            page.wait_for_function("Number(document.body.dataset.renders || 0) >= 1", timeout=60_000)
            marks = page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).map(c => c.querySelectorAll('.mark-line path, .mark-rect path').length)"
            )
            # The checkout funnel's bars, then retention and paths: empty here, where nobody signs up.
            assert len(marks) == 7 and all(n > 0 for n in marks[:5]) and marks[5:] == [0, 0], marks
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


def _open(page_api, server, url: str):  # type: ignore[no-untyped-def]
    """Headless Chromium on ``url`` with only the server reachable; returns (playwright, browser, page, refused, console)."""
    require_service("chromium")
    p = page_api.sync_playwright().start()
    browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    refused: list[str] = []
    console: list[str] = []

    _loopback_only(page, server.url, refused)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    # A slow server, for loads that ask for a device filter: a click lands while that load is in flight.
    page.add_init_script(
        """(() => { const real = window.fetch;
        const slow = (url, options) => new Promise(done => setTimeout(done, 1500)).then(() => real(url, options));
        window.fetch = (url, options) => String(url).includes("f.device=") ? slow(url, options) : real(url, options);
        })()"""
    )
    page.goto(url)
    page.wait_for_function("Number(document.body.dataset.renders || 0) >= 1", timeout=60_000)
    return p, browser, page, refused, console


def _bar(page, block: str, label: str):  # type: ignore[no-untyped-def]
    """The middle of the bar whose Vega label starts with ``label`` (``value: 3; country: DE``...)."""
    box = page.evaluate(
        """([block, label]) => { const bar = Array.from(document.querySelectorAll(`#${block} .mark-rect path`))
            .find(p => (p.getAttribute("aria-label") || "").includes(label));
            if (!bar) return null; const r = bar.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; }""",
        [block, label],
    )
    assert box is not None, f"no bar {label!r} in {block}"
    return box


def test_a_click_after_range_grain_and_filter_changes_drills_down_and_vega_warns_of_nothing(running):
    server, write_key = running
    page_api = require_module("playwright.sync_api")
    client = Client(write_key, server.url, flush_interval=0.05)
    for i, (country, device) in enumerate([("DE", "mobile")] * 3 + [("US", "mobile")] * 2 + [("DE", "desktop")]):
        client.track(f"seq-{i}", "purchase", {"revenue": 5.0, "country": country, "device": device, "campaign": "sequence"})
    assert client.flush(timeout=60)
    client.close()
    assert query_total(server.project, "SELECT count() FROM events WHERE campaign = 'sequence'", expect=6) == 6
    token = cli(server.project, "share", "shop", "--url", server.url).rsplit("token=", 1)[1]
    p, browser, page, refused, console = _open(page_api, server, f"{server.url}/d/shop?token={token}&f.campaign=sequence")
    try:
        # As a person does it, without waiting for each change to be drawn.
        before = int(page.evaluate("document.body.dataset.renders"))
        page.select_option("#rta-range", "24h")
        page.select_option("#rta-grain", "1m")
        page.select_option("#rta-range", "7d")
        page.select_option("#rta-grain", "auto")
        page.wait_for_function(
            f"Number(document.body.dataset.renders) > {before} && document.body.dataset.view === 'last=7d&f.campaign=sequence'",
            timeout=60_000,
        )
        page.select_option('select.rta-filter[data-dim="device"]', "mobile")
        assert page.evaluate("document.body.dataset.view") == "last=7d&f.campaign=sequence"  # its load is in flight
        germany = _bar(page, "block-p3", "country: DE")
        page.mouse.click(germany["x"], germany["y"])  # a real click, on the chart drawn before the device filter
        page.wait_for_function("document.body.dataset.view.includes('f.country=DE')", timeout=60_000)
        assert page.evaluate("document.body.dataset.view") == "last=7d&f.campaign=sequence&f.device=mobile&f.country=DE"
        page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '3'", timeout=30_000)
        assert [c.split("×")[0] for c in page.locator(".crumb").all_text_contents()] == [
            "campaign = sequence",
            "device = mobile",
            "country = DE",
            "clear all",
        ]
        assert page.evaluate("document.body.dataset.error") is None
        # And again from there: a click on the one device bar left changes nothing, one on a country of the chart drills.
        page.locator('[data-clear="country"]').click()
        page.wait_for_function("!document.body.dataset.view.includes('f.country')", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#block-p3 .mark-rect path').length === 2", timeout=60_000)
        us = _bar(page, "block-p3", "country: US")
        page.mouse.click(us["x"], us["y"])
        page.wait_for_function("document.querySelector('.tile[data-metric=\"purchases\"] .value').textContent === '2'", timeout=60_000)
        assert "f.country=US" in page.url
    finally:
        browser.close()
        p.stop()
    assert refused == [] and console == []


def test_a_plain_filter_parameter_filters_and_an_unknown_one_is_refused(running):
    server, _ = running
    token = cli(server.project, "share", "shop", "--url", server.url).rsplit("token=", 1)[1]
    with urllib.request.urlopen(f"{server.url}/d/shop/data?token={token}&country=DE&country=FR&f.device=mobile", timeout=30) as response:
        view = json.loads(response.read())["view"]
    assert view["filters"] == {"country": ["DE", "FR"], "device": ["mobile"]}
    assert view["query"] == "last=7d&f.country=DE&f.country=FR&f.device=mobile"  # the page shows this spelling
    for url in (f"/d/shop/data?token={token}&contry=DE", f"/d/shop?token={token}&contry=DE"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}{url}", timeout=30)
        body = refused.value.read().decode()
        assert refused.value.code == 400 and "unknown parameter 'contry'" in body and "did you mean 'country'" in body
    browser = urllib.request.Request(f"{server.url}/d/shop?token={token}&contry=DE", headers={"Accept": "text/html"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(browser, timeout=30)
    page = refused.value.read().decode()
    assert refused.value.code == 400 and "unknown parameter &#x27;contry&#x27;" in page and "did you mean &#x27;country&#x27;" in page
    assert "Fix the link" in page


def _numbers(payload: dict) -> tuple[dict[str, str], dict[str, str]]:  # type: ignore[type-arg]
    """The KPI tiles and the campaign table's Total row of one rendering of /d/shop/data, as shown."""
    blocks = {b["key"]: b for b in payload["blocks"]}
    tiles = dict(re.findall(r'data-metric="([^"]+)"><div class="name">[^<]*</div><div class="value">([^<]*)<', blocks["p0"]["html"]))
    table = blocks["p5"]["html"]
    heads = re.findall(r"<th>([^<]*)</th>", table.split("</thead>")[0])
    total = re.findall(r"<td>([^<]*)</td>", table.split("<tfoot>")[1])
    return tiles, {h.replace(" ", "_"): v for h, v in zip(heads[1:], total[1:], strict=True)}


def test_every_rendering_during_ingest_shows_the_same_totals_in_tiles_and_table(running):
    server, write_key = running
    token = cli(server.project, "share", "shop", "--url", server.url).rsplit("token=", 1)[1]
    done = threading.Event()

    def ingest() -> None:  # about 4,000 events over 8 s, while the page renders
        client = Client(write_key, server.url, flush_interval=0.05)
        try:
            for i in range(40):
                for j in range(100):
                    event = ("purchase", "page_view")[j % 2]
                    props = {"revenue": 1.0 + j % 7, "country": ("DE", "FR", "US")[j % 3], "device": "mobile", "campaign": f"live_{j % 4}"}
                    client.track(f"live-{i}-{j % 37}", event, props)
                client.flush(timeout=30)
                time.sleep(0.2)
        finally:
            client.close()
            done.set()

    feeder = threading.Thread(target=ingest, daemon=True)
    feeder.start()
    seen: list[tuple[dict[str, str], dict[str, str]]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (done.is_set() and len(seen) > 5):
        with urllib.request.urlopen(f"{server.url}/d/shop/data?token={token}&last=24h", timeout=60) as response:
            seen.append(_numbers(json.loads(response.read())))
        time.sleep(0.1)
    feeder.join(60)
    renderings = {tuple(sorted(tiles.items())) for tiles, _ in seen}
    assert len(renderings) >= 3, renderings  # the page did render while events came in
    for tiles, total in seen:
        assert {m: tiles[m] for m in ("revenue", "purchases", "visitors", "conversion")} == {
            m: total[m] for m in ("revenue", "purchases", "visitors", "conversion")
        }, (tiles, total)
