"""rta.js in headless Chromium: a visit from a Google search lands as one session, its source Google."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import require_module, require_service
from tests.ingest_helpers import cli, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]
WEB = """
from rta import stream, metric, rollup, count, col
events = stream("events", dimensions={"event": str, "path": str, "source": str, "medium": str, "referrer_host": str},
                keep_raw="1d", session=True)
views = metric("views", count(), where=col("event") == "page_view")
rollup("by_source", [views], by=["source", "medium"], keep={"1m": "1d"})
"""


def test_a_search_visit_in_chromium_is_one_session_from_google(tmp_path):
    chromium = require_service("chromium")
    playwright_api = require_module("playwright.sync_api")
    project = tmp_path / "web"
    (project / "metrics").mkdir(parents=True)
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    (project / "metrics" / "web.py").write_text(WEB)
    write_key = cli(project, "keys", "create", "write", "--name", "t")
    running = start(project)
    html = f"""<!doctype html><html><head><title>Shop</title>
<script src="{running.url}/rta.js" data-key="{write_key}" defer></script></head><body>shop</body></html>""".encode()

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with playwright_api.sync_playwright() as p:
            flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or chromium, args=flags)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/shop", referer="https://www.google.com/search?q=shop")
            page.wait_for_function("window.rta !== undefined")
            page.evaluate("history.pushState({}, '', '/pricing')")  # a single-page app navigates
            page.wait_for_timeout(100)
            page.evaluate("rta.track('signup')")
            page.close(run_before_unload=True)  # page hide: the tracker flushes with sendBeacon
            browser.close()
        assert query_total(project, "SELECT count() FROM events", expect=3) == 3
        visits = "SELECT sid, events, pages, entry, exit, source FROM events_sessions GROUP BY ALL HAVING sum(sign) = 1"
        deadline = time.monotonic() + 30
        while not (rows := json.loads(cli(project, "sql", visits, "--format", "json"))) and time.monotonic() < deadline:
            time.sleep(0.3)
        [visit] = rows
        assert visit["sid"] != "" and (visit["events"], visit["pages"]) == (3, 2)  # one client session id for all three
        assert (visit["entry"], visit["exit"], visit["source"]) == ("/shop", "/pricing", "Google")
        answer = cli(project, "query", "visits", "--by", "source", "--last", "1h", "--total", "--format", "csv")
        assert answer.splitlines()[1].startswith("Google,1,"), answer
        views = cli(project, "query", "views", "--by", "source", "--by", "medium", "--last", "1h", "--total", "--format", "csv")
        assert views.splitlines()[1].startswith("Google,organic,2,"), views  # both page views: an SPA keeps its referrer
    finally:
        site.shutdown()
        running.stop()
