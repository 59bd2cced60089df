"""Where a visit came from: the referrer and UTM tags of an event as ``source``, ``medium`` and ``referrer_host``.

The rules are Plausible's (``Plausible.Ingestion.Source``) with GA4's mediums:

0. An event with no page (no URL, no referrer, not even empty, no tag), such as a server's track
   call, has none of the three (empty).
1. A tagged source wins: ``utm_source`` (``context.campaign.source``, the property, or the page
   URL's query), else the URL's ``source`` or ``ref`` parameter. A known name is spelled as the
   table spells it, whatever its case (``google`` -> ``Google``, ``fb`` -> ``Facebook``); others
   are kept as sent. Its medium is ``utm_medium``, else ``(not set)`` (GA4).
2. Else a Google Ads click id (``gclid`` in the page URL) is ``Google`` / ``cpc`` (GA4's auto-tagging).
3. Else no referrer (or one that is not an http(s) or android-app URL) is ``Direct`` / ``(none)``.
4. A referrer on the page's own host (``www.`` aside) is ``Internal`` / ``(none)``: a navigation
   within the site. Plausible and GA4 count it as direct; a name of its own keeps the two apart.
5. A referrer host in :data:`PROVIDERS` (itself or a parent domain; ``brand.<country suffix>``
   for search engines spread over many) is that provider, medium ``organic`` (search), ``social``,
   ``email`` or ``referral`` (a known site of no medium, e.g. Google's help pages).
6. Any other host is itself (without ``www.``), medium ``referral``.

``utm_medium`` replaces the medium of rules 2-6 too. Each distinct host and tag is looked up once
per batch (:func:`rta.flows.enrich.map_unique`); everything else is vectorized.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote_plus

import polars as pl

from rta.flows.enrich import map_unique

SEARCH, SOCIAL, EMAIL, REFERRAL = "organic", "social", "email", "referral"
DIRECT, INTERNAL, NONE, NOT_SET = "Direct", "Internal", "(none)", "(not set)"

# (source, medium, domains): each domain matches itself and its subdomains; ``brand.*`` matches the
# brand under any country suffix (google.de, google.co.uk, google.com.au). After snowplow's
# referer-parser ``referers.yml`` (the database Plausible reads through RefInspector) and
# Plausible's ``custom_sources.json``; app ids (``com.facebook.katana``) are android-app referrers.
PROVIDERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Google", SEARCH, ("google.*",)),
    ("Google", REFERRAL, ("support.google.com", "developers.google.com", "maps.google.com", "accounts.google.com",
                          "drive.google.com", "sites.google.com", "groups.google.com", "docs.google.com")),
    ("Google", "cpc", ("googleadservices.com", "googleads.g.doubleclick.net", "googlesyndication.com")),
    ("Bing", SEARCH, ("bing.com", "cc.bingj.com", "ntp.msn.com")),
    ("DuckDuckGo", SEARCH, ("duckduckgo.com",)),
    ("Yahoo!", SEARCH, ("search.yahoo.com", "yahoo.com", "yahoo.co.jp")),
    ("Yahoo!", REFERRAL, ("finance.yahoo.com", "news.yahoo.com", "sports.yahoo.com", "answers.yahoo.com")),
    ("Baidu", SEARCH, ("baidu.com",)),
    ("Yandex", SEARCH, ("yandex.*", "ya.ru")),
    ("Ecosia", SEARCH, ("ecosia.org",)),
    ("Brave", SEARCH, ("search.brave.com",)),
    ("Qwant", SEARCH, ("qwant.com",)),
    ("Naver", SEARCH, ("search.naver.com",)),
    ("Seznam", SEARCH, ("search.seznam.cz",)),
    ("Sogou", SEARCH, ("sogou.com", "sougou.com")),
    ("360.cn", SEARCH, ("so.360.cn", "so.com")),
    ("Daum", SEARCH, ("search.daum.net",)),
    ("Ask", SEARCH, ("ask.com",)),
    ("AOL", SEARCH, ("search.aol.com", "aolsearch.com")),
    ("Startpage", SEARCH, ("startpage.com",)),
    ("Facebook", SOCIAL, ("facebook.com", "fb.me", "fb.com", "com.facebook.katana")),
    ("Twitter", SOCIAL, ("twitter.com", "t.co", "x.com", "com.twitter.android")),
    ("Instagram", SOCIAL, ("instagram.com", "com.instagram.android")),
    ("Threads", SOCIAL, ("threads.net", "threads.com", "com.instagram.barcelona")),
    ("LinkedIn", SOCIAL, ("linkedin.com", "lnkd.in", "com.linkedin.android")),
    ("Reddit", SOCIAL, ("reddit.com", "com.reddit.frontpage")),
    ("Youtube", SOCIAL, ("youtube.com", "youtu.be")),
    ("Pinterest", SOCIAL, ("pinterest.*", "com.pinterest")),
    ("TikTok", SOCIAL, ("tiktok.com",)),
    ("Vkontakte", SOCIAL, ("vk.com", "vkontakte.ru")),
    ("Odnoklassniki", SOCIAL, ("ok.ru", "odnoklassniki.ru")),
    ("Tumblr", SOCIAL, ("tumblr.com", "t.umblr.com")),
    ("Weibo", SOCIAL, ("weibo.com", "t.cn")),
    ("Hacker News", SOCIAL, ("news.ycombinator.com",)),
    ("GitHub", SOCIAL, ("github.com",)),
    ("StackOverflow", SOCIAL, ("stackoverflow.com",)),
    ("Quora", SOCIAL, ("quora.com",)),
    ("Vimeo", SOCIAL, ("vimeo.com",)),
    ("Snapchat", SOCIAL, ("snapchat.com", "com.snapchat.android")),
    ("Telegram", SOCIAL, ("t.me", "web.telegram.org", "org.telegram.messenger")),
    ("WhatsApp", SOCIAL, ("web.whatsapp.com", "com.whatsapp")),
    ("Slack", SOCIAL, ("app.slack.com", "com.slack")),
    ("Discord", SOCIAL, ("discord.com", "discordapp.com")),
    ("Bluesky", SOCIAL, ("bsky.app",)),
    ("Gmail", EMAIL, ("mail.google.com", "inbox.google.com", "com.google.android.gm")),
    ("Outlook.com", EMAIL, ("outlook.live.com", "mail.live.com", "outlook.office.com", "com.microsoft.office.outlook")),
    ("Yahoo! Mail", EMAIL, ("mail.yahoo.com", "mail.yahoo.net", "mail.yahoo.co.uk", "mail.yahoo.co.jp")),
    ("AOL Mail", EMAIL, ("mail.aol.com",)),
    ("Proton", EMAIL, ("mail.proton.me",)),
    ("Mail.ru", EMAIL, ("e.mail.ru", "touch.mail.ru")),
    ("Yandex Mail", EMAIL, ("mail.yandex.ru", "mail.yandex.com")),
    ("GMX", EMAIL, ("deref-gmx.de", "deref-gmx.net", "deref-gmx.com", "lightmailer.gmx.net")),
    ("Web.de", EMAIL, ("deref-web.de", "3c.web.de")),
    ("QQ Mail", EMAIL, ("mail.qq.com", "exmail.qq.com")),
    ("Zoho", EMAIL, ("mail.zoho.com",)),
    ("ChatGPT", REFERRAL, ("chatgpt.com", "chat.openai.com")),
    ("Perplexity", REFERRAL, ("perplexity.ai",)),
    ("Claude", REFERRAL, ("claude.ai",)),
    ("Wikipedia", REFERRAL, ("wikipedia.org",)),
)  # fmt: skip
# utm_source shorthands (Plausible's custom_sources.json), beside every provider's name and domains.
ALIASES = {
    "fb": "Facebook", "fb-ads": "Facebook", "fbads": "Facebook", "facebook-ads": "Facebook", "facebook_ads": "Facebook",
    "ig": "Instagram", "yt": "Youtube", "yt-ads": "Youtube", "reddit-ads": "Reddit", "adwords": "Google",
    "google_ads": "Google", "google-ads": "Google", "googleads": "Google", "gads": "Google", "twitter-ads": "Twitter",
    "tiktokads": "TikTok", "google ads": "Google", "x": "Twitter",
}  # fmt: skip
TAG_PARAMS = ("utm_source", "source", "ref")  # Plausible's order: the URL's tag of a source


def _tables() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]], dict[str, str]]:
    domains: dict[str, tuple[str, str]] = {}
    brands: dict[str, tuple[str, str]] = {}
    names: dict[str, str] = {}
    for source, medium, hosts in PROVIDERS:
        names.setdefault(source.lower(), source)
        for host in hosts:
            (brands if host.endswith(".*") else domains)[host.removesuffix(".*")] = (source, medium)
            names.setdefault(host.removesuffix(".*"), source)
    return domains, brands, names | ALIASES


_DOMAINS, _BRANDS, _NAMES = _tables()


@lru_cache(maxsize=65536)
def provider(host: str) -> tuple[str, str]:
    """(source, medium) of a referrer host (lower case, without ``www.``): the table's, else the host's own.

    >>> provider("google.co.uk"), provider("mail.google.com"), provider("l.facebook.com"), provider("blog.example.org")
    (('Google', 'organic'), ('Gmail', 'email'), ('Facebook', 'social'), ('blog.example.org', 'referral'))
    """
    labels = host.split(".")
    for i in range(len(labels) - 1):  # the host, then each parent domain: the most specific entry wins
        if (hit := _DOMAINS.get(".".join(labels[i:]))) is not None:
            return hit
    for i, label in enumerate(labels[:-1]):  # brand.<suffix>, the suffix one or two short labels (de, co.uk, com.au)
        suffix = labels[i + 1 :]
        if label in _BRANDS and len(suffix) <= 2 and all(len(s) <= 3 for s in suffix) and labels[:i] in ([], ["m"]):
            return _BRANDS[label]
    return host, REFERRAL


@lru_cache(maxsize=65536)
def tagged_name(tag: str) -> str:
    """A tagged source as the table spells it (``GOOGLE`` -> ``Google``, ``ig`` -> ``Instagram``), else as sent."""
    return _NAMES.get(tag.strip().lower(), tag)


_HOST = r"^(?:[hH][tT][tT][pP][sS]?|android-app)://(?:[^/?#@]*@)?([^/?#:]+)"


def url_host(urls: pl.Series) -> pl.Series:
    """The host of each http(s)/android-app URL, lower case, without ``www.``; null for anything else."""
    host = urls.str.extract(_HOST, 1).str.to_lowercase().str.strip_chars_end(".").str.strip_prefix("www.")
    return pl.select(pl.when(host.str.len_bytes() > 0).then(host)).to_series().alias(urls.name)


def query_param(urls: pl.Series, name: str) -> pl.Series:
    """The first value of query parameter ``name`` in each URL or query string, decoded; null when absent or empty."""
    raw = urls.str.extract(rf"[?&]{name}=([^&#]*)", 1)
    encoded = raw.str.contains("[%+]").fill_null(False)
    decoded = map_unique(raw, unquote_plus, encoded) if encoded.any() else raw
    value = pl.select(pl.when(encoded).then(decoded).otherwise(raw)).to_series()
    return pl.select(pl.when(value.str.strip_chars().str.len_bytes() > 0).then(value)).to_series().alias(name)


def _first(columns: list[pl.Series | None], height: int) -> pl.Series:
    """The first non-blank value of ``columns`` in each row; null where none has one."""
    present = [pl.lit(c) for c in columns if c is not None]
    if not present:
        return pl.Series([None] * height, dtype=pl.String)
    return pl.select(pl.coalesce([pl.when(c.str.strip_chars().str.len_bytes() > 0).then(c) for c in present])).to_series()


def traffic(
    referrer: pl.Series | None,
    url: pl.Series | None,
    *,
    search: pl.Series | None = None,
    utm_source: list[pl.Series | None] | None = None,
    utm_medium: list[pl.Series | None] | None = None,
    height: int,
) -> pl.DataFrame:
    """``source``, ``medium`` and ``referrer_host`` of ``height`` events (the rules in this module's docstring; null: none).

    ``referrer`` and ``url`` are the page's (``context.page``), ``search`` its query string; ``utm_source``
    and ``utm_medium`` the columns stating them, first first (``context.campaign``, the properties).

    >>> ref = pl.Series(["https://www.google.com/search?q=x", None, "https://shop.example/cart", "https://t.co/abc"])
    >>> url = pl.Series(["https://shop.example/", "https://shop.example/?utm_source=fb&utm_medium=paid", "https://shop.example/a", None])
    >>> traffic(ref, url, height=4).rows()
    [('Google', 'organic', 'google.com'), ('Facebook', 'paid', None), ('Internal', '(none)', 'shop.example'), ('Twitter', 'social', 't.co')]
    """
    none = pl.Series([None] * height, dtype=pl.String)
    pages = [s for s in (url, search) if s is not None]
    tags = [*(utm_source or []), *(query_param(p, param) for param in TAG_PARAMS for p in pages)]
    tag = _first(tags, height)
    medium_tag = _first([*(utm_medium or []), *(query_param(p, "utm_medium") for p in pages)], height)
    gclid = _first([query_param(p, "gclid") for p in pages], height).is_not_null()
    ref_host = url_host(referrer) if referrer is not None else none
    own_host = url_host(url) if url is not None else none
    looked_up = tag.is_null() & ~gclid & ref_host.is_not_null()
    known = map_unique(ref_host, lambda h: provider(h)[0], looked_up)
    known_medium = map_unique(ref_host, lambda h: provider(h)[1], looked_up)
    named = map_unique(tag, tagged_name)
    internal = (ref_host == own_host).fill_null(False)
    web = tag.is_not_null() | medium_tag.is_not_null()
    for page in (referrer, url):
        web = web if page is None else web | page.is_not_null()
    frame = pl.DataFrame({"tag": named, "medium_tag": medium_tag, "gclid": gclid, "ref": ref_host, "internal": internal,
                          "known": known, "known_medium": known_medium, "web": web})  # fmt: skip
    tagged, ref = pl.col("tag").is_not_null(), pl.col("ref").is_not_null()
    source = (
        pl.when(~pl.col("web")).then(pl.lit(None, pl.String))
        .when(tagged).then(pl.col("tag"))
        .when(pl.col("gclid")).then(pl.lit("Google"))
        .when(~ref).then(pl.lit(DIRECT))
        .when(pl.col("internal")).then(pl.lit(INTERNAL))
        .otherwise(pl.col("known"))
    )  # fmt: skip
    medium = (
        pl.when(~pl.col("web")).then(pl.lit(None, pl.String))
        .when(pl.col("medium_tag").is_not_null()).then(pl.col("medium_tag"))
        .when(tagged).then(pl.lit(NOT_SET))
        .when(pl.col("gclid")).then(pl.lit("cpc"))
        .when(~ref | pl.col("internal")).then(pl.lit(NONE))
        .otherwise(pl.col("known_medium"))
    )  # fmt: skip
    return frame.select(source.alias("source"), medium.alias("medium"), pl.col("ref").alias("referrer_host"))
