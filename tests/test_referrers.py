"""Referrer and UTM tags to source, medium and referrer host: a table of cases, the flow's reading, the collect API."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import polars as pl
import pytest

from rta import col, count, metric, rollup, stream
from rta.compiler import compile
from rta.dsl import definitions
from rta.flows import events as ev
from rta.flows.referrers import provider, traffic

NOW = datetime.now(UTC).replace(microsecond=0)
SITE = "https://shop.example/landing"

# (referrer, page URL, context.campaign {source, medium}) -> (source, medium, referrer host)
CASES: list[tuple[str | None, str | None, dict[str, str], tuple[str | None, str | None, str | None]]] = [
    # no referrer: direct; an empty one (document.referrer of a typed URL) too
    (None, SITE, {}, ("Direct", "(none)", None)),
    ("", SITE, {}, ("Direct", "(none)", None)),
    ("not a url", SITE, {}, ("Direct", "(none)", None)),
    ("ftp://files.example/x", SITE, {}, ("Direct", "(none)", None)),
    # search engines, any country suffix, www. or not
    ("https://www.google.com/search?q=shoes", SITE, {}, ("Google", "organic", "google.com")),
    ("https://www.google.co.uk/", SITE, {}, ("Google", "organic", "google.co.uk")),
    ("https://google.com.au/url?q=x", SITE, {}, ("Google", "organic", "google.com.au")),
    ("https://www.bing.com/search?q=shoes", SITE, {}, ("Bing", "organic", "bing.com")),
    ("https://duckduckgo.com/", SITE, {}, ("DuckDuckGo", "organic", "duckduckgo.com")),
    ("https://search.yahoo.com/search?p=x", SITE, {}, ("Yahoo!", "organic", "search.yahoo.com")),
    ("https://fr.search.yahoo.com/", SITE, {}, ("Yahoo!", "organic", "fr.search.yahoo.com")),
    ("https://www.baidu.com/s?wd=x", SITE, {}, ("Baidu", "organic", "baidu.com")),
    ("https://yandex.ru/search/?text=x", SITE, {}, ("Yandex", "organic", "yandex.ru")),
    ("https://www.ecosia.org/search?q=x", SITE, {}, ("Ecosia", "organic", "ecosia.org")),
    ("https://search.brave.com/search?q=x", SITE, {}, ("Brave", "organic", "search.brave.com")),
    # a Google site that is no search: known source, referral
    ("https://support.google.com/answer/1", SITE, {}, ("Google", "referral", "support.google.com")),
    ("https://google.blogspot.com/", SITE, {}, ("google.blogspot.com", "referral", "google.blogspot.com")),
    # social networks, their link shorteners and apps
    ("https://l.facebook.com/l.php?u=x", SITE, {}, ("Facebook", "social", "l.facebook.com")),
    ("https://m.facebook.com/", SITE, {}, ("Facebook", "social", "m.facebook.com")),
    ("https://t.co/abc", SITE, {}, ("Twitter", "social", "t.co")),
    ("https://x.com/someone/status/1", SITE, {}, ("Twitter", "social", "x.com")),
    ("https://www.linkedin.com/feed/", SITE, {}, ("LinkedIn", "social", "linkedin.com")),
    ("https://old.reddit.com/r/x", SITE, {}, ("Reddit", "social", "old.reddit.com")),
    ("android-app://com.reddit.frontpage", SITE, {}, ("Reddit", "social", "com.reddit.frontpage")),
    ("https://www.instagram.com/", SITE, {}, ("Instagram", "social", "instagram.com")),
    ("https://www.youtube.com/watch?v=1", SITE, {}, ("Youtube", "social", "youtube.com")),
    ("https://www.pinterest.fr/pin/1", SITE, {}, ("Pinterest", "social", "pinterest.fr")),
    ("https://www.tiktok.com/", SITE, {}, ("TikTok", "social", "tiktok.com")),
    ("https://news.ycombinator.com/item?id=1", SITE, {}, ("Hacker News", "social", "news.ycombinator.com")),
    # webmail
    ("https://mail.google.com/mail/u/0/", SITE, {}, ("Gmail", "email", "mail.google.com")),
    ("https://outlook.live.com/mail/0/", SITE, {}, ("Outlook.com", "email", "outlook.live.com")),
    # any other site: itself, without www., a referral; case and a port do not matter
    ("https://www.markosaric.com/blog/", SITE, {}, ("markosaric.com", "referral", "markosaric.com")),
    ("HTTPS://Blog.Example.ORG:8443/post", SITE, {}, ("blog.example.org", "referral", "blog.example.org")),
    # the site itself: a navigation within it, www. aside
    ("https://shop.example/cart", SITE, {}, ("Internal", "(none)", "shop.example")),
    ("https://www.shop.example/cart", SITE, {}, ("Internal", "(none)", "shop.example")),
    # UTM wins over the referrer, from the campaign or the URL; known names in the table's spelling
    ("https://www.google.com/", SITE, {"source": "newsletter", "medium": "email"}, ("newsletter", "email", "google.com")),
    ("https://t.co/x", "https://shop.example/?utm_source=google&utm_medium=cpc", {}, ("Google", "cpc", "t.co")),
    (None, "https://shop.example/?utm_source=GOOGLE", {}, ("Google", "(not set)", None)),
    (None, "https://shop.example/?utm_source=fb&utm_medium=paid_social", {}, ("Facebook", "paid_social", None)),
    (None, "https://shop.example/?x=1&utm_source=ig", {}, ("Instagram", "(not set)", None)),
    (None, "https://shop.example/?utm_source=spring%20sale&utm_medium=e+mail", {}, ("spring sale", "e mail", None)),
    (None, "https://shop.example/?ref=producthunt", {}, ("producthunt", "(not set)", None)),
    (None, "https://shop.example/?utm_source=&utm_medium=", {}, ("Direct", "(none)", None)),  # empty tags tag nothing
    ("https://www.bing.com/", SITE, {"medium": "cpc"}, ("Bing", "cpc", "bing.com")),  # a medium alone keeps the referrer's source
    # a Google Ads click id: google / cpc
    (None, "https://shop.example/?gclid=abc123", {}, ("Google", "cpc", None)),
    # no page at all (a server's track call): none
    (None, None, {}, (None, None, None)),
]


@pytest.mark.parametrize(("referrer", "url", "campaign", "expected"), CASES)
def test_each_case_of_the_table(referrer, url, campaign, expected):
    got = traffic(
        pl.Series([referrer], dtype=pl.String),
        pl.Series([url], dtype=pl.String),
        utm_source=[pl.Series([campaign.get("source")], dtype=pl.String)],
        utm_medium=[pl.Series([campaign.get("medium")], dtype=pl.String)],
        height=1,
    )
    assert got.row(0) == expected


def test_the_whole_table_at_once_equals_each_case_alone():
    got = traffic(
        pl.Series([c[0] for c in CASES], dtype=pl.String),
        pl.Series([c[1] for c in CASES], dtype=pl.String),
        utm_source=[pl.Series([c[2].get("source") for c in CASES], dtype=pl.String)],
        utm_medium=[pl.Series([c[2].get("medium") for c in CASES], dtype=pl.String)],
        height=len(CASES),
    )
    assert got.rows() == [c[3] for c in CASES]


def test_every_provider_domain_is_its_own_provider():
    from rta.flows.referrers import PROVIDERS

    for source, medium, hosts in PROVIDERS:
        for host in hosts:
            probe = host.replace(".*", ".de")
            assert provider(probe) == (source, medium), probe
            assert provider("sub." + probe)[0] in {source, "sub." + probe}  # brands match only brand.<suffix>


@pytest.fixture(scope="module")
def web():
    events = stream("web", dimensions={"event": str, "source": str, "medium": str, "referrer_host": str, "path": str}, keep_raw="1d")
    views = metric("views", count(), where=col("event") == "page_view", stream=events)
    return compile(definitions([rollup("by_source", [views], by=["source", "medium"])])).streams[0]


def _page(i: int, referrer: str | None, url: str, **context) -> dict:
    page = {"path": "/", "url": url, **({"referrer": referrer} if referrer is not None else {})}
    return {
        "type": "page",
        "anonymousId": f"a{i}",
        "messageId": f"m{i}",
        "timestamp": NOW.isoformat(),
        "context": {"page": page, **context},
    }


def test_segment_messages_read_by_the_flow_get_their_source_medium_and_host(web):
    messages = [
        _page(0, "https://www.google.de/", SITE),
        _page(1, "", SITE),
        _page(2, "https://t.co/x", SITE, campaign={"source": "spring", "medium": "email"}),
        {"type": "track", "event": "buy", "userId": "u", "timestamp": NOW.isoformat(), "properties": {"utm_source": "fb"}},
        {"type": "track", "event": "refund", "userId": "u", "timestamp": NOW.isoformat()},  # a server's call: no page
        {"type": "page", "userId": "u", "timestamp": NOW.isoformat(), "properties": {"source": "stated"}},  # stated wins
    ]
    frame, bad, _ = ev.read_json_lines(b"".join(json.dumps(m).encode() + b"\n" for m in messages), web)
    assert bad == 0
    got = ev.normalize(frame, web, NOW).events.select("source", "medium", "referrer_host").rows()
    assert got == [
        ("Google", "organic", "google.de"),
        ("Direct", "(none)", ""),
        ("spring", "email", "t.co"),
        ("Facebook", "(not set)", ""),
        ("", "", ""),
        ("stated", "", ""),
    ]


def test_referrers_are_looked_up_once_each_per_batch(web):
    provider.cache_clear()
    hosts = [f"https://site{i % 7}.example/p{i}" for i in range(20_000)]
    frame = pl.DataFrame({"context": pl.Series([{"page": {"referrer": h, "url": SITE}} for h in hosts])})
    frame = frame.with_columns(type=pl.lit("page"), timestamp=pl.lit(NOW.isoformat()))
    events = ev.normalize(frame, web, NOW).events
    assert events["source"].n_unique() == 7 and events["medium"].unique().to_list() == ["referral"]
    assert provider.cache_info().misses == 7


@pytest.mark.store
@pytest.mark.flow
def test_events_sent_to_the_collect_api_land_in_a_rollup_by_source(tmp_path):
    from tests.ingest_helpers import cli, post, query_total, start

    project = tmp_path / "web"
    (project / "metrics").mkdir(parents=True)
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    (project / "metrics" / "web.py").write_text(
        "from rta import stream, metric, rollup, count, col\n"
        'events = stream("events", dimensions={"event": str, "source": str, "medium": str, "referrer_host": str}, keep_raw="1d")\n'
        'views = metric("views", count(), where=col("event") == "page_view")\n'
        'rollup("by_source", [views], by=["source", "medium"], keep={"1m": "1d", "1h": "7d"})\n'
    )
    write_key = cli(project, "keys", "create", "write", "--name", "t")
    running = start(project)
    try:
        referrers = ["https://www.google.com/search?q=a"] * 5 + ["https://l.facebook.com/x"] * 3 + [""] * 2
        batch = [{**_page(i, r, SITE), "messageId": f"m-{uuid.uuid4()}"} for i, r in enumerate(referrers)]
        batch.append({**_page(99, None, "https://shop.example/?utm_source=news&utm_medium=email"), "messageId": "m-utm"})
        assert post(f"{running.url}/v1/batch", json.dumps({"batch": batch}).encode(), write_key)[0] == 200
        query_total(project, "SELECT count() FROM events", expect=len(batch))
        expected = ["Google,organic,5", "Facebook,social,3", "Direct,(none),2", "news,email,1"]
        deadline = time.monotonic() + 30
        while True:  # the rollup's insert may land a moment after the raw events'
            answer = cli(project, "query", "views", "--by", "source", "--by", "medium", "--last", "1h", "--total", "--format", "csv")
            rows = [line.rsplit(",", 1)[0] for line in answer.splitlines()[1:]]
            if rows == expected or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert rows == expected, answer
    finally:
        running.stop()
