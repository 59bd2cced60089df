"""Content-site analytics in the style of Plausible: views, visitors, engagement, sources."""

from rta import average, col, count, distinct, metric, quantile, rollup, stream

pages = stream(
    "pageviews",
    time="timestamp",
    dimensions={"event": str, "path": str, "referrer": str, "country": str, "device": str, "campaign": str},
    measures={"duration_ms": int},
    user="user_id",
    insert_id="insert_id",
)

views = metric("views", count(), where=col("event") == "page_view")
signups = metric("signups", count(), where=col("event") == "signup")
visitors = metric("visitors", distinct("user_id"))
time_on_page = metric("time_on_page_ms", average("duration_ms"), where=col("event") == "page_view", unit="ms")
slow_pages = metric("p90_duration_ms", quantile("duration_ms", 0.9), where=col("event") == "page_view", unit="ms")
views_per_visitor = metric("views_per_visitor", views / visitors)
signup_rate = metric("signup_rate", signups / visitors, unit="%")

rollup("content", [views, signups, time_on_page, slow_pages], by=["path", "referrer", "campaign"], keep={"1h": "90d", "1d": "5y"})
rollup("visitors_by_geo", [visitors], by=["country", "device"])
