"""Web shop analytics: traffic, funnel, revenue and audience."""

from rta import (
    alert,
    average,
    breakdown,
    col,
    count,
    dashboard,
    distinct,
    funnel,
    funnel_bars,
    kpi,
    maximum,
    metric,
    no_events,
    paths,
    paths_flow,
    quantile,
    report,
    retention,
    retention_heatmap,
    rollup,
    stream,
    table,
    timeseries,
    total,
)

events = stream(
    "events",
    time="timestamp",
    dimensions={"event": str, "country": str, "device": str, "campaign": str, "path": str},
    measures={"revenue": float, "load_ms": float},
    user="user_id",
    insert_id="insert_id",
    keep_raw="30d",
)

page_views = metric("page_views", count(), where=col("event") == "page_view")
clicks = metric("clicks", count(), where=col("event") == "click")
add_to_carts = metric("add_to_carts", count(), where=col("event") == "add_to_cart")
purchases = metric("purchases", count(), where=col("event") == "purchase")
revenue = metric("revenue", total("revenue"), where=col("event") == "purchase", unit="USD")
biggest_order = metric("biggest_order", maximum("revenue"), where=col("event") == "purchase", unit="USD")
avg_load = metric("avg_load_ms", average("load_ms"), where=col("event") == "page_view", unit="ms")
p95_load = metric("p95_load_ms", quantile("load_ms", 0.95), where=col("event") == "page_view", unit="ms")
visitors = metric("visitors", distinct("user_id"))
buyers = metric("buyers", distinct("user_id"), where=col("event") == "purchase")

conversion = metric("conversion", buyers / visitors, unit="%")  # people who bought, of people who came (not orders: those can pass 100%)
revenue_per_visitor = metric("revenue_per_visitor", revenue / visitors, unit="USD")

# Metrics filter by event type in their own parts, so rollups need not be keyed by `event`.
# The planner answers each question from the narrowest rollup that has its dimensions:
# dashboards' unsplit series and KPIs read `traffic_overall` (one row per bucket).
traffic_metrics = [page_views, clicks, add_to_carts, purchases, revenue, biggest_order, avg_load, p95_load]
rollup("traffic", traffic_metrics, by=["country", "device", "campaign"], keep={"1m": "7d", "1h": "90d", "1d": "5y"})
rollup("traffic_overall", traffic_metrics, keep={"1m": "7d", "1h": "90d", "1d": "5y"})
# Distinct counts live in narrow rollups: merging sketches is the expensive part (docs/architecture.md, "Mergeable, small sketches").
# The planner answers from the narrowest rollup that has the dimensions asked for, so totals
# read one sketch per bucket and splits by country or device read the wider one.
rollup("audience", [visitors, buyers], by=["country", "device"], keep={"1m": "7d", "1h": "90d", "1d": "5y"})
rollup("audience_overall", [visitors, buyers], keep={"1m": "7d", "1h": "90d", "1d": "5y"})
# Campaign filters on the dashboard need visitors by campaign too: hours and days are enough there.
rollup("audience_by_campaign", [visitors, buyers], by=["country", "device", "campaign"], keep={"1h": "90d", "1d": "5y"})

# A funnel counts people, not events: who viewed a page, then added to cart, then bought, within an hour
# (`ws.funnel("checkout", last="7d", by="device")`, `rta funnel checkout`); answered exactly from raw events.
funnel(
    "checkout",
    [col("event") == "page_view", col("event") == "add_to_cart", col("event") == "purchase"],
    names=["viewed", "added to cart", "bought"],
    within="1h",
    by=["device"],
    description="page view, then add to cart, then purchase, within an hour",
)
# Retention: of the people who signed up on a day, who viewed a page again 1, 2, ... 6 days later
# (`ws.retention("signup_return", last="4w")`, `rta retention signup_return`); PostHog's recurring retention.
retention(
    "signup_return",
    start=col("event") == "signup",
    back=col("event") == "page_view",
    every="1d",
    periods=7,
    description="people who signed up, and who of them came back to view a page each day after",
)
# Paths: what people did next after signing up, the most common 4 events (`ws.paths("after_signup")`, `rta paths after_signup`).
paths("after_signup", after=col("event") == "signup", steps=4, by=["device"], description="the next 4 events after a signup")

# Alerts are judged on final minutes, as soon as the watermark passes them; `rta run` logs
# them (add notify=webhook("https://…") or email(...) to page someone).
alert("checkout stalled", purchases.over("15m") < 1, pending="5m", description="no purchase in 15 minutes")
alert("slow pages", p95_load.over("5m") > 2_000, pending="5m", by="device")
alert("no traffic", no_events(events, "5m"), description="the pipeline or the site is down")

# The dashboard: `ws.dashboard("shop")` in Jupyter, `rta report shop` offline, /d/shop on `rta run`.
dashboard(
    "shop",
    [
        kpi(revenue, purchases, visitors, conversion),
        timeseries(revenue, compare=True, title="Revenue (vs previous period)"),
        timeseries(page_views, visitors, title="Traffic"),
        breakdown(revenue, by="country", top=10),
        breakdown(visitors, by="device", top=5),
        table(page_views, visitors, purchases, revenue, conversion, by="campaign", top=15, title="Campaigns"),
        # The checkout funnel under the same range and filters; clicking a step splits its people by device.
        funnel_bars("checkout", by="device", title="Checkout funnel"),
        # Who of each day's signups came back, and what people did after signing up, under the same range and filters.
        retention_heatmap("signup_return", title="Signups coming back"),
        paths_flow("after_signup", top=8, title="After signing up"),
    ],
    filters=["country", "device", "campaign"],
    last="7d",
    refresh="30s",
    title="Shop overview",
)
# Every morning the last day's report lands in reports/shop_daily/ (add notify=email(...) to mail it).
report("shop_daily", "shop", every="1d", at="08:00", last="24h", notify="log")
