"""A light definition for `python bench/flow.py --metrics bench/counts.py`: the flow's ceiling.

The shop example's stream with one rollup of two counts and a sum by country and device (no
distinct counts, no quantiles): what is left is parsing, normalizing and one small insert.
"""

from rta import col, count, metric, rollup, stream, total

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
purchases = metric("purchases", count(), where=col("event") == "purchase")
revenue = metric("revenue", total("revenue"), where=col("event") == "purchase", unit="USD")
rollup("traffic", [page_views, purchases, revenue], by=["country", "device"], keep={"1m": "7d", "1h": "90d", "1d": "5y"})
