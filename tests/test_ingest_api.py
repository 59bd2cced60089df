"""The collect API over real HTTP on loopback: SDKs -> API -> log -> flow -> ClickHouse, exact counts."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rta.sdk import Client
from tests.ingest_helpers import cli, make_project, post, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("ingest") / "app")
    write_key = cli(project, "keys", "create", "write", "--name", "tests")
    read_key = cli(project, "keys", "create", "read", "--name", "tests")
    running = start(project)
    yield running, write_key, read_key
    running.stop()


def message(i: int, **extra) -> dict:
    return {
        "type": "track", "event": "purchase", "userId": f"u{i % 50}", "messageId": f"m-{uuid.uuid4()}",
        "timestamp": datetime.now(UTC).isoformat(), "properties": {"revenue": 2.0, "country": "FR", "device": "mobile"}, **extra,
    }  # fmt: skip


def count_where(server, where: str = "1") -> int:
    running, _, _ = server
    return query_total(running.project, f"SELECT count() FROM events WHERE {where}")


def test_sdk_events_arrive_exactly_once(server):
    running, write_key, _ = server
    before = count_where(server, "campaign = 'sdk'")
    client = Client(write_key, running.url, batch_size=500, flush_interval=0.05)
    for i in range(5_000):
        client.track(f"user-{i % 97}", "purchase", {"revenue": 1.5, "country": "DE", "device": "desktop", "campaign": "sdk"})
    assert client.flush(timeout=60)
    client.close()
    assert (client.sent, client.dropped) == (5_000, 0)
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'sdk'", expect=before + 5_000) == before + 5_000
    revenue = query_total(running.project, "SELECT toInt64(sum(revenue__sum)) FROM traffic_1h WHERE campaign = 'sdk'")
    assert revenue >= 7_500  # the rollups got them too (1.5 each)


def test_the_official_segment_python_client_works_unchanged(server):
    from segment.analytics.client import Client as Segment

    running, write_key, _ = server
    segment = Segment(write_key, host=running.url, sync_mode=False, upload_size=100, max_retries=3)
    for i in range(1_000):
        # Properties the stream never declared, nested and typed as clients send them, are kept too.
        extra = {"plan": "pro" if i % 4 == 0 else "free", "cart": {"items": i % 5, "coupon": None}, "beta": i % 2 == 0}
        segment.track(f"seg-{i}", "signup", {"country": "US", "campaign": "segment-python", **extra},
                      context={"userAgent": "Mozilla/5.0 (iPhone)"})  # fmt: skip
    segment.page("seg-x", "Docs", "Install", {"path": "/docs", "campaign": "segment-python"})
    segment.flush()
    segment.join()
    total = query_total(running.project, "SELECT count() FROM events WHERE campaign = 'segment-python'", expect=1_001)
    assert total == 1_001
    devices = cli(
        running.project,
        "sql",
        "SELECT DISTINCT device FROM events WHERE campaign = 'segment-python' AND event = 'signup'",
        "--format",
        "csv",
    )
    assert devices.splitlines()[1:] == ["mobile"]  # from context.userAgent
    assert query_total(running.project, "SELECT count() FROM events WHERE event = 'page_view' AND campaign = 'segment-python'") == 1
    plans = cli(running.project, "sql", "SELECT props['plan'] AS plan, count() AS n, sum(props_num['cart.items']) AS items, "
                "countIf(props['beta'] = 'true') AS beta FROM events WHERE campaign = 'segment-python' AND event = 'signup' "
                "GROUP BY plan ORDER BY plan", "--format", "csv")  # fmt: skip
    assert plans.splitlines()[1:] == ["free,750,1500.0,250", "pro,250,500.0,250"]
    # The flow gave the new properties their own columns, which answer the same.
    materialized = cli(running.project, "sql", "SELECT `prop.plan` AS plan, count() AS n FROM events WHERE campaign = "
                       "'segment-python' AND `num.cart.items` >= 4 GROUP BY plan ORDER BY plan", "--format", "csv")  # fmt: skip
    assert materialized.splitlines()[1:] == ["free,150", "pro,50"]


def test_retried_batches_and_repeated_insert_ids_count_once(server):
    running, write_key, _ = server
    batch = [message(i, properties={"campaign": "retry", "country": "FR"}) for i in range(300)]
    body = json.dumps({"batch": batch}).encode()
    first = post(f"{running.url}/v1/batch", body, write_key)
    again = post(f"{running.url}/v1/batch", gzip.compress(body), write_key, headers={"Content-Encoding": "gzip"})
    assert first == (200, {"success": True, "accepted": 300, "duplicates": 0})
    assert again == (200, {"success": True, "accepted": 0, "duplicates": 300})
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'retry'", expect=300) == 300


def test_keys_decide_who_may_ingest_and_who_may_read(server):
    running, write_key, read_key = server
    body = json.dumps({"batch": [message(1)]}).encode()
    assert post(f"{running.url}/v1/batch", body, None)[0] == 401
    assert post(f"{running.url}/v1/batch", body, "not-a-key")[0] == 401
    status, answer = post(f"{running.url}/v1/batch", body, read_key)
    assert status == 403 and "use a write key" in answer["error"]
    status, answer = post(f"{running.url}/v1/query", json.dumps({"metrics": ["revenue"]}).encode(), write_key)
    assert status == 403 and "cannot read" in answer["error"]


def test_a_batch_with_bad_events_keeps_the_good_ones_and_says_why(server):
    running, write_key, _ = server
    good = [message(i, properties={"campaign": "partial"}) for i in range(3)]
    bad = [
        {**message(0), "properties": {"revenue": "lots", "campaign": "partial"}},
        {**message(0), "timestamp": (datetime.now(UTC) - timedelta(days=5)).isoformat()},
        {**message(0), "shoeSize": 42},
    ]
    status, answer = post(
        f"{running.url}/v1/batch", json.dumps({"batch": [good[0], bad[0], good[1], bad[1], bad[2], good[2]]}).encode(), write_key
    )
    assert status == 400 and answer["accepted"] == 3
    assert [(r["index"], r["insert_id"], r["field"]) for r in answer["rejected"]] == [
        (1, bad[0]["messageId"], "properties.revenue"), (3, bad[1]["messageId"], "timestamp"), (4, bad[2]["messageId"], "shoeSize"),
    ]  # fmt: skip
    assert "expected a number, got 'lots'" in answer["rejected"][0]["reason"]
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'partial'", expect=3) == 3


# --- a corpus of malformed and hostile input: always a 4xx with a reason, never a 5xx --------


def _request_level() -> list[tuple[str, bytes, dict[str, str], str]]:
    """(name, body, headers, path) of requests that are unusable as a whole."""
    ok = json.dumps({"batch": [message(0)]}).encode()
    cases: list[tuple[str, bytes, dict[str, str], str]] = []
    malformed = [
        b"{", b"}", b"[", b"[1,2", b'{"batch": }', b'{"batch": [}', b"{'batch': []}", b'{batch: []}', b'{"batch": [],}',
        b"NaN", b"undefined", b'{"batch": [NaN]}', b'{"batch": [Infinity]}', b"\x00\x01\x02", b"<xml/>", b"batch=1",
        b'{"batch": [{"type": "track"', b'"just a string"', b"42", b"true", b"null", b'{"a": 1e400}', b"   ", b"",
        b'{"batch": "events"}', b'{"batch": {"0": {}}}', b'{"batch": null}', b'{"events": []}', b"{}",
        b"[" * 5000 + b"]" * 5000, b'{"batch": [' + b"[" * 3000 + b"]" * 3000 + b"]}",
    ]  # fmt: skip
    cases += [(f"malformed-{i}", body, {}, "/v1/batch") for i, body in enumerate(malformed)]
    bad_utf8 = [b"\xff\xfe{}", b'{"batch": [{"event": "\xc3\x28"}]}', b'{"batch": [{"event": "\xed\xa0\x80"}]}', b"\x80" * 10]
    cases += [(f"utf8-{i}", body, {}, "/v1/batch") for i, body in enumerate(bad_utf8)]
    for i, kind in enumerate(["text/html", "application/xml", "multipart/form-data", "image/png", "application/octet-stream", "text/csv"]):
        cases.append((f"content-type-{i}", ok, {"Content-Type": kind}, "/v1/batch"))
    cases += [
        ("encoding-br", ok, {"Content-Encoding": "br"}, "/v1/batch"),
        ("encoding-compress", ok, {"Content-Encoding": "compress"}, "/v1/batch"),
        ("encoding-gzip-but-plain", ok, {"Content-Encoding": "gzip"}, "/v1/batch"),
        ("encoding-deflate-garbage", b"\x78\x9c garbage", {"Content-Encoding": "deflate"}, "/v1/batch"),
        ("encoding-truncated-gzip", gzip.compress(ok)[:-8][:20], {"Content-Encoding": "gzip"}, "/v1/batch"),
        ("too-many-events", json.dumps({"batch": [message(i) for i in range(2_001)]}).encode(), {}, "/v1/batch"),
        ("too-big", b'{"batch": [' + b" " * (5 * 1024 * 1024 + 10) + b"]}", {}, "/v1/batch"),
        ("gzip-bomb", gzip.compress(b'{"batch": [' + b" " * (50 * 1024 * 1024) + b"]}"), {"Content-Encoding": "gzip"}, "/v1/batch"),
        ("track-with-array", json.dumps([message(0)]).encode(), {}, "/v1/track"),
        ("track-with-string", b'"hello"', {}, "/v1/track"),
        ("identify-empty", b"", {}, "/v1/identify"),
        ("page-malformed", b'{"type": "page",', {}, "/v1/page"),
        ("ndjson-broken-line", b'{"type": "track"}\n{oops\n', {"Content-Type": "application/x-ndjson"}, "/v1/batch"),
    ]
    return cases


def _event_level() -> list[tuple[str, object]]:
    """(name, bad message) to send beside a valid neighbour."""
    now = datetime.now(UTC)
    base = message(0)
    variants: list[tuple[str, object]] = [(f"not-an-object-{i}", v) for i, v in enumerate([42, "str", None, [], True, 1.5])]
    for name, value in [
        ("event", 42),
        ("event", None),
        ("event", ""),
        ("event", "   "),
        ("event", "x" * 300),
        ("event", ["a"]),
        ("event", {}),
    ]:
        variants.append((f"{name}={value!r}"[:40], {**base, name: value}))
    for value in ["bogus", 42, None, "", "TRACK", ["track"]]:
        variants.append((f"type={value!r}", {**base, "type": value}))
    no_type = {k: v for k, v in base.items() if k != "type"}
    variants.append(("type-missing", no_type))
    for value in [{}, [], True, "", 1.5, {"id": 1}]:
        variants.append((f"userId={value!r}", {**base, "userId": value}))
    variants.append(("no-user", {k: v for k, v in base.items() if k != "userId"}))
    variants.append(("anonymous-empty", {**{k: v for k, v in base.items() if k != "userId"}, "anonymousId": ""}))
    for value in [42, "", "x" * 500, [], {}, True]:
        variants.append((f"messageId={value!r}"[:40], {**base, "messageId": value}))
    times = ["yesterday", 12345, "2026-13-45T00:00:00Z", "2026-11-28T12:00:00", "", "1970-01-01T00:00:00Z", "2000-01-01T00:00:00Z",
             (now - timedelta(days=5)).isoformat(), (now - timedelta(hours=73)).isoformat(), (now + timedelta(hours=2)).isoformat(),
             (now + timedelta(days=365)).isoformat(), "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", ["2026"], {"t": 1}, True]  # fmt: skip
    variants += [(f"timestamp={value!r}"[:40], {**base, "timestamp": value}) for value in times]
    skewed = {**{k: v for k, v in base.items() if k != "timestamp"}, "originalTimestamp": "2020-01-01T00:00:00Z", "sentAt": now.isoformat()}
    variants.append(("originalTimestamp-ancient", skewed))
    variants.append(
        ("sentAt-garbage", {**{k: v for k, v in base.items() if k != "timestamp"}, "originalTimestamp": now.isoformat(), "sentAt": "x"})
    )
    for value in ["x", [], 42, True]:
        variants.append((f"properties={value!r}", {**base, "properties": value}))
        variants.append((f"context={value!r}", {**base, "context": value}))
    for field, values in {
        "revenue": ["12", True, False, {}, [], "NaN", "1e3", [1, 2]],
        "country": [{}, [], 1.5, True, "x" * 2_000, {"code": "FR"}, [["FR"]]],
        "device": [{}, [], 2.5, False],
        "campaign": [{"name": "x"}, ["a", "b"], 3.25, "c" * 1_025],
    }.items():
        variants += [(f"{field}={value!r}"[:40], {**base, "properties": {field: value}}) for value in values]
    for key in ["foo", "shoeSize", "__proto__", "constructor", "event_name", "props", "user_id", "time", "Type", "EVENT", "$set"]:
        variants.append((f"unknown-key-{key}", {**base, key: 1}))
    variants.append(("context-page-path-number", {**base, "context": {"page": {"path": 42}}}))
    variants.append(("context-campaign-huge", {**base, "context": {"campaign": {"name": "x" * 2_000}}}))
    variants.append(("context-ip-object", {**base, "context": {"ip": {"v4": "1.2.3.4"}}}))
    variants.append(("huge-event", {**base, "properties": {"blob": "x" * 70_000}}))
    variants.append(("huge-context", {**base, "context": {"userAgent": "y" * 70_000}}))
    variants.append(("deep-properties", {**base, "properties": json.loads("[" * 60 + "]" * 60)}))
    return variants


def test_a_corpus_of_hostile_input_gets_4xx_with_reasons_and_keeps_the_valid_neighbours(server):
    running, write_key, _ = server
    requests = _request_level()
    events = _event_level()
    assert len(requests) + 2 * len(events) >= 200  # each bad event goes in a JSON batch and in NDJSON
    statuses = []
    for name, body, headers, path in requests:
        try:
            status, answer = post(f"{running.url}{path}", body, write_key, headers=headers)
        except OSError as err:
            raise AssertionError(f"{name}: {err}") from None
        statuses.append(status)
        assert 400 <= status < 500, (name, status, answer)
        assert answer.get("error") or answer.get("rejected"), (name, answer)
    for name, bad in events:
        for ndjson in (False, True):
            neighbour = message(1, properties={"campaign": "corpus", "country": "FR"})
            if ndjson:
                body, headers = b"\n".join(json.dumps(m).encode() for m in (neighbour, bad)), {"Content-Type": "application/x-ndjson"}
            else:
                body, headers = json.dumps({"batch": [neighbour, bad]}).encode(), {}
            status, answer = post(f"{running.url}/v1/batch", body, write_key, headers=headers)
            statuses.append(status)
            assert status == 400, (name, ndjson, status, answer)
            assert answer["accepted"] == 1 and [r["index"] for r in answer["rejected"]] == [1], (name, answer)
            assert answer["rejected"][0]["reason"], name
    assert not [s for s in statuses if s >= 500]
    kept = query_total(running.project, "SELECT count() FROM events WHERE campaign = 'corpus'", expect=2 * len(events))
    assert kept == 2 * len(events)
    assert "Traceback" not in running.log()


def test_rta_send_ships_a_file_through_the_sdk(server, tmp_path):
    import os
    import subprocess
    import sys

    running, write_key, _ = server
    now = datetime.now(UTC)
    flat = [
        {"event": "view", "timestamp": now.isoformat(), "user_id": f"u{i}", "insert_id": f"send-{i}", "campaign": "send"}
        for i in range(1_000)
    ]
    segment = [{"type": "track", "event": "buy", "userId": "u1", "properties": {"campaign": "send"}}]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in flat + segment))
    env = {**os.environ, "RTA_WRITE_KEY": write_key}
    done = subprocess.run(
        [sys.executable, "-m", "rta.cli", "send", str(path), "--host", running.url], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "sent 1,001 events; dropped 0" in done.stderr, done.stderr
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'send'", expect=1_001) == 1_001
    path.write_text(json.dumps(flat[0]) + "\n{not json\n")
    done = subprocess.run(
        [sys.executable, "-m", "rta.cli", "send", str(path), "--host", running.url], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1 and "events.jsonl:2: not JSON" in done.stderr and "1 lines were not JSON" in done.stderr


@pytest.mark.services
def test_the_official_segment_node_client_works_unchanged(server, tmp_path_factory):
    import subprocess

    from tests.conftest import require_service

    node, npm = require_service("node"), require_service("npm")
    running, write_key, _ = server
    folder = tmp_path_factory.mktemp("node")
    installed = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "@segment/analytics-node@3"], cwd=folder,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    script = folder / "send.mjs"
    script.write_text(
        """
import { Analytics } from "@segment/analytics-node";
const analytics = new Analytics({ writeKey: process.argv[2], host: process.argv[3], maxEventsInBatch: 50, flushInterval: 100 });
for (let i = 0; i < 500; i++) {
  const extra = { tier: `t${i % 3}`, seats: i };
  analytics.track({ userId: `node-${i}`, event: "signup", properties: { country: "CA", campaign: "segment-node", ...extra } });
}
analytics.page({ anonymousId: "anon-1", name: "Home", properties: { path: "/", campaign: "segment-node" } });
await analytics.closeAndFlush({ timeout: 20000 });
"""
    )
    sent = subprocess.run([node, str(script), write_key, running.url], cwd=folder, capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0, sent.stderr
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'segment-node'", expect=501) == 501
    tiers = cli(running.project, "sql", "SELECT props['tier'] AS tier, count() AS n, sum(props_num['seats']) AS seats FROM events "
                "WHERE campaign = 'segment-node' AND event = 'signup' GROUP BY tier ORDER BY tier", "--format", "csv")  # fmt: skip
    assert tiers.splitlines()[1:] == ["t0,167,41583.0", "t1,167,41750.0", "t2,166,41417.0"]


@pytest.mark.services
def test_the_browser_tracker_in_headless_chromium(server):
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conftest import require_service

    chromium = require_service("chromium")
    from tests.conftest import require_module

    playwright_api = require_module("playwright.sync_api")
    running, write_key, _ = server
    page_html = f"""<!doctype html><html><head><title>Shop</title>
<script src="{running.url}/rta.js" data-key="{write_key}" defer></script></head><body>shop</body></html>""".encode()

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page_html)))
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    outside: list[str] = []
    try:
        with playwright_api.sync_playwright() as p:
            flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run"]  # fmt: skip
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or chromium, args=flags)
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None)
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/shop?utm_campaign=launch&utm_source=news")
            page.wait_for_function("window.rta !== undefined")
            page.evaluate("rta.track('signup', {country: 'NZ'})")
            page.evaluate("history.pushState({}, '', '/pricing')")  # a single-page app navigates
            page.wait_for_timeout(100)
            page.close(run_before_unload=True)  # page hide: the tracker flushes with sendBeacon
            browser.close()
    finally:
        site.shutdown()
    assert outside == []
    rows = query_total(running.project, "SELECT count() FROM events WHERE campaign = 'launch'", expect=3)
    assert rows == 3
    from tests.ingest_helpers import cli

    seen = cli(running.project, "sql", "SELECT event, device FROM events WHERE campaign = 'launch' ORDER BY event", "--format", "csv")
    assert seen.splitlines()[1:] == ["page_view,desktop", "page_view,desktop", "signup,desktop"]


def test_backpressure_answers_429_and_503_with_retry_after(tmp_path):
    import urllib.request

    project = make_project(tmp_path / "tight")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\nrate_per_key = 600\nlog_max_gb = 0.0002\n')
    key = cli(project, "keys", "create", "write")
    running = start(project)
    try:

        def batch() -> bytes:
            return json.dumps({"batch": [message(i) for i in range(500)]}).encode()

        assert post(f"{running.url}/v1/batch", batch(), key)[0] == 200
        assert post(f"{running.url}/v1/batch", batch(), key)[0] == 200
        request = urllib.request.Request(f"{running.url}/v1/batch", data=batch(), method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as limited:
            urllib.request.urlopen(request, timeout=10)
        assert limited.value.code == 429 and int(limited.value.headers["Retry-After"]) >= 1
        assert "rate limit of 600 events/s" in json.loads(limited.value.read())["error"]
        time.sleep(1.2)  # tokens back; the log is what is short now
        with pytest.raises(urllib.error.HTTPError) as full:
            urllib.request.urlopen(request, timeout=10)
        assert full.value.code == 503 and full.value.headers["Retry-After"] == "5"
        assert "its limit is" in json.loads(full.value.read())["error"]
        assert query_total(project, "SELECT count() FROM events", expect=1_000) == 1_000  # what was accepted is kept
    finally:
        running.stop()


def test_rta_serve_ingest_alone_feeds_rta_run_through_the_log(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from tests.ingest_helpers import free_port

    project = make_project(tmp_path / "split")
    key = cli(project, "keys", "create", "write")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    receiver = subprocess.Popen([sys.executable, "-m", "rta.cli", "serve", "ingest", "-p", str(project), "--port", str(port)], env=env)
    running = start(project, "--no-collect")
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and receiver.poll() is None
            time.sleep(0.1)
        assert post(f"{running.url}/v1/batch", json.dumps({"batch": [message(0)]}).encode(), key)[0] == 404  # not collected here
        client = Client(key, f"http://127.0.0.1:{port}", flush_interval=0.05)
        for i in range(2_000):
            client.track(f"u{i}", "view", {"campaign": "split"})
        client.close()
        assert client.sent == 2_000
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'split'", expect=2_000) == 2_000
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
        running.stop()


def test_the_client_address_decides_the_country_and_a_forwarded_header_only_when_trusted(server):
    running, write_key, _ = server
    spoofed = {**message(0), "properties": {"campaign": "forwarded"}}  # no country: the address decides
    headers = {"X-Forwarded-For": "81.2.69.160"}  # a GB address claimed by the client itself
    assert post(f"{running.url}/v1/batch", json.dumps({"batch": [spoofed]}).encode(), write_key, headers=headers)[0] == 200
    query_total(running.project, "SELECT count() FROM events WHERE campaign = 'forwarded'", expect=1)
    countries = cli(running.project, "sql", "SELECT country FROM events WHERE campaign = 'forwarded'", "--format", "csv")
    assert countries.splitlines()[1:] in ([""], ['""'])  # loopback has no country; the header was not believed
    from rta.flows.enrich import country_of

    assert country_of("81.2.69.160") == "GB"  # what a trusted proxy's header would have given ([ingest] trust_forwarded_for)


def test_messages_checked_one_by_one_are_enriched_from_context_like_the_rest(server):
    running, write_key, _ = server
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    lines = [
        {**message(i), "properties": {}, "context": {"userAgent": iphone, "campaign": {"name": "one-by-one"}, "ip": "81.2.69.160"}}
        for i in range(3)
    ]
    body = b"\n".join(json.dumps(m).encode() for m in lines)  # NDJSON: always checked message by message
    assert post(f"{running.url}/v1/batch", body, write_key, headers={"Content-Type": "application/x-ndjson"})[0] == 200
    query_total(running.project, "SELECT count() FROM events WHERE campaign = 'one-by-one'", expect=3)
    rows = cli(running.project, "sql", "SELECT DISTINCT device, country FROM events WHERE campaign = 'one-by-one'", "--format", "csv")
    assert rows.splitlines()[1:] == ["mobile,GB"]
    status, answer = post(
        f"{running.url}/v1/batch", json.dumps({"batch": [{**message(9), "context": {"page": {"path": 42}}}]}).encode(), write_key
    )
    assert status == 400 and answer["rejected"][0]["field"] == "context.page.path"
