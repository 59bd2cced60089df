"""Web analytics in the style of Plausible: visitors, visits, bounce rate, visit duration, pages and sources.

`rta init --template web` writes this file; `rta run --demo` feeds it. Visits (sessions) are cut in the
flow by 30 minutes of inactivity, or by the client's `context.sessionId` (rta.js sends one), and
`visits`, `bounce_rate`, `visit_duration`, `pages_per_visit` come with them, no definition written.
`source` and `medium` are filled from the page's referrer and UTM tags (Plausible's rules).
"""

from rta import col, count, dashboard, distinct, kpi, metric, rollup, sessions, stream, table, timeseries

events = stream(
    "events",
    time="timestamp",
    dimensions={"event": str, "path": str, "country": str, "device": str, "campaign": str, "source": str, "medium": str},
    measures={"load_ms": float},
    user="user_id",
    insert_id="insert_id",
    keep_raw="30d",
    session=sessions(gap="30m", max="24h"),
)

pageviews = metric("pageviews", count(), where=col("event") == "page_view")
visitors = metric("visitors", distinct("user_id"))
views_per_visitor = metric("views_per_visitor", pageviews / visitors)

keep = {"1m": "7d", "1h": "90d", "1d": "5y"}
rollup("site", [pageviews, visitors], keep=keep)
rollup("site_by_source", [pageviews, visitors], by=["source", "medium", "country", "device"], keep=keep)
rollup("pages", [pageviews, visitors], by=["path", "source", "country", "device"], keep={"1h": "90d", "1d": "5y"})

# Visits split by what every visit has (its first event's source, country, device...); pages and entry
# pages are boards of their own, since a page view's path is not a visit's and a visit's entry is not a page view's.
overview = ["source", "country", "device"]
dashboard(
    "web",
    [
        kpi("visitors", "pageviews", "views_per_visitor"),
        kpi("visits", "bounce_rate", "visit_duration", "pages_per_visit"),
        timeseries("visitors", "pageviews", title="Visitors and pageviews"),
        table("visits", "bounce_rate", "visit_duration", by="source", title="Sources"),
        table("visitors", "pageviews", by="country", title="Countries"),
        table("visitors", "pageviews", by="device", title="Devices"),
    ],
    filters=overview,
    title="Web analytics",
)
dashboard("web_pages", [table("pageviews", "visitors", by="path", title="Top pages")], filters=overview, title="Top pages")
dashboard(
    "web_entries",
    [
        table("visits", "bounce_rate", "visit_duration", by="entry", title="Entry pages"),
        table("visits", by="exit", title="Exit pages"),
    ],
    filters=overview,
    title="Entry and exit pages",
)
