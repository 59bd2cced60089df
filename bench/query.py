"""Dashboard query latency and concurrency: rta's rollups vs the same questions on raw events.

    python bench/query.py [--days 7] [--events-per-day 100000000] [--connections 4,16,64,256] [--keep DIR]

Builds the `shop` example's rollups for ``--days`` days at ``--events-per-day`` (default 1/100 of
the 10-billion-events/day target: ~100M/day, ~200 countries, 4 devices, ~50 campaigns, 6 event
types) inside ClickHouse: synthetic events from numbers(), aggregated per minute into the
rollups' input tables, through the same materialized views the flow feeds; plus one day of raw
events for the peer. Once the build's background merges have settled, it times typical
dashboard queries cold and cached, cold again while a second's worth of events lands in every
rollup each second (as under ingest), the 24-hour questions on raw events, and a load test of simulated dashboard users against the REST API
from a separate process. Everything lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "metrics" / "shop.py"
CHUNK_SECONDS = 6 * 3600  # one INSERT ... SELECT per six hours of events bounds memory


def _event_columns(start: int, span: int, n: int) -> str:
    """SQL for synthetic events from numbers(n) over [start, start + span) seconds, Zipf-skewed."""
    from rta.flows.demo import CAMPAIGNS, COUNTRIES, DEVICES

    def array(items) -> str:  # type: ignore[no-untyped-def]
        return "[" + ", ".join("'" + i + "'" for i in items) + "]"

    r = "(cityHash64(number, {salt}) % 1000000) / 1000000.0"
    return f"""
        toDateTime64({start} + number * {span} / {n}, 3, 'UTC') AS timestamp,
        multiIf({r.format(salt=1)} < 0.60, 'page_view', {r.format(salt=1)} < 0.82, 'click', {r.format(salt=1)} < 0.90, 'search',
                {r.format(salt=1)} < 0.96, 'add_to_cart', {r.format(salt=1)} < 0.985, 'purchase', 'signup') AS event,
        {array(COUNTRIES)}[1 + toUInt32(floor({len(COUNTRIES)} * pow({r.format(salt=2)}, 3)))] AS country,
        {array(DEVICES)}[1 + multiIf({r.format(salt=3)} < 0.55, 0, {r.format(salt=3)} < 0.93, 1,
                                     {r.format(salt=3)} < 0.99, 2, 3)] AS device,
        {array(CAMPAIGNS)}[1 + toUInt32(floor({len(CAMPAIGNS)} * pow({r.format(salt=4)}, 2)))] AS campaign,
        '/' AS path,
        if(event = 'purchase', 5 + (cityHash64(number, 5) % 20000) / 100.0, NULL) AS revenue,
        if(event = 'page_view', 80 + (cityHash64(number, 6) % 2000), NULL) AS load_ms,
        concat('u', toString(toUInt32(floor(1000000 * pow({r.format(salt=7)}, 3))))) AS user_id,
        toString(number) AS insert_id"""


def _partial(part) -> str:  # type: ignore[no-untyped-def]
    """The aggregate that computes one part of a rollup from raw rows, as the flow does."""
    from rta.compiler.sql_filter import show_filter

    cond = show_filter(part.where) if part.where is not None else "1"
    present = f"{cond} AND {part.field} IS NOT NULL"
    return {
        "rows": f"countIf({cond})",
        "present": f"countIf({present})",
        "sum": f"sumIf(assumeNotNull({part.field}), {present})",
        "min": f"minIf({part.field}, {present})",
        "max": f"maxIf({part.field}, {present})",
        "unique": f"groupUniqArrayIf(assumeNotNull({part.field}), {present})",
        "values": f"groupArrayIf(assumeNotNull({part.field}), {present})",
    }[part.flow_op] + f" AS {part.column}"


def build(client, plan, days: int, per_day: int, now: datetime) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Fill the rollups for ``days`` days and the raw table for the last day; returns seconds taken.

    Days before the last are fed hour-aligned partials with the minute views dropped: the
    dashboard questions read minutes of the last 24 hours only (older minute partitions are
    pruned), and minute partials for a week take ~1 h to build here instead of ~15 min.
    """
    from rta.store.schema import apply

    end = int(now.timestamp()) // 3600 * 3600
    start = end - days * 86400
    per_chunk = per_day * CHUNK_SECONDS // 86400
    taken = {"rollups": 0.0, "raw": 0.0}
    settings = {"max_memory_usage": 16_000_000_000}
    minute_views = [t.view for r in plan.rollups for t in r.tables if t.grain == "1m"]
    for view in minute_views:
        client.command(f"DROP VIEW IF EXISTS {view}")
    for chunk_start in range(start, end, CHUNK_SECONDS):
        if chunk_start == end - 86400:
            apply(plan, client)  # the minute views are back for the last day
        bucket = "toStartOfMinute" if chunk_start >= end - 86400 else "toStartOfHour"
        began = time.perf_counter()
        insert_partials(client, plan, chunk_start, CHUNK_SECONDS, per_chunk, bucket, settings)
        taken["rollups"] += time.perf_counter() - began
        print(f"  rollups up to {datetime.fromtimestamp(chunk_start + CHUNK_SECONDS, UTC):%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    stream = plan.streams[0]
    raw_columns = ", ".join((stream.time, stream.insert_id, stream.user, *stream.dims, *stream.measures))
    for chunk_start in range(end - 86400, end, CHUNK_SECONDS):
        began = time.perf_counter()
        columns = _event_columns(chunk_start, CHUNK_SECONDS, per_chunk)
        client.command(
            f"INSERT INTO {stream.raw_table} ({raw_columns}) SELECT {raw_columns} FROM (SELECT {columns} FROM numbers({per_chunk}))",
            settings=settings,
        )
        taken["raw"] += time.perf_counter() - began
    print("  raw events of the last day written", file=sys.stderr)
    return taken


def insert_partials(client, plan, start: int, span: int, n: int, bucket: str, settings: dict | None = None) -> None:  # type: ignore[no-untyped-def, type-arg]
    """``n`` synthetic events over ``[start, start + span)`` into every rollup, as the flow's partials."""
    events = _event_columns(start, span, n)
    for rollup in plan.rollups:
        keys = ", ".join(("minute", *rollup.dims))
        parts = ", ".join(_partial(p) for p in rollup.parts)
        sql = (
            f"INSERT INTO {rollup.input_table} SELECT {bucket}(timestamp) AS minute, {', '.join((*rollup.dims, parts))} "
            f"FROM (SELECT {events} FROM numbers({n})) GROUP BY {keys}"
        )
        client.command(sql, settings=settings)


def settle(client, limit: float = 1800.0) -> float:  # type: ignore[no-untyped-def]
    """Wait for the background merges a bulk build leaves behind; returns seconds waited.

    Right after a build ClickHouse merges gigabytes of fresh parts for many minutes, and
    queries timed then measure those merges, not a store in service.
    """
    began = time.monotonic()
    quiet = 0
    while time.monotonic() - began < limit and quiet < 3:
        time.sleep(2.0)
        busy = client.query("SELECT count() FROM system.merges").result_rows[0][0]
        quiet = 0 if busy else quiet + 1
    return time.monotonic() - began


class LiveIngest:
    """One second of events into every rollup each second, as the flow's sink writes under ingest.

    New parts land in the minute, hour and day tables every second and background merges
    follow them, so queries timed meanwhile see a store in service, not a frozen one.
    """

    def __init__(self, ws, per_day: int) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.ws, self.per_second = ws, max(1, per_day // 86400)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from rta.compiler.ddl import STATS_TABLE
        from rta.store.client import connect as connect_store

        client = connect_store(self.ws.dsn)
        while not self._stop.wait(1.0):
            now = int(time.time())
            insert_partials(client, self.ws.plan, now - 1, 1, self.per_second, "toStartOfMinute")
            client.command(
                f"INSERT INTO {STATS_TABLE} (minute, stream, outcome, events, last_seen, newest_event) "
                f"VALUES (toStartOfMinute(now()), 'events', 'accepted', {self.per_second}, now64(3), now64(3))"
            )

    def __enter__(self) -> LiveIngest:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# The dashboard: six panels, as a shop dashboard shows them.
_FILTERED = {"device": ["mobile"], "campaign": ["google_00", "(none)"]}
PANELS = [
    ("7-day series by hour", {"metrics": ["page_views", "revenue"], "last": "7d", "grain": "1h"}),
    ("top-10 countries, device+campaign filter",
     {"metrics": ["revenue", "purchases"], "last": "7d", "grain": "1d", "by": ["country"], "top": 10, "where": _FILTERED}),
    ("24-hour minute series", {"metrics": ["page_views"], "last": "24h", "grain": "1m"}),
    ("7-day visitors by hour (distinct)", {"metrics": ["visitors"], "last": "7d", "grain": "1h"}),
    ("7-day KPIs", {"metrics": ["revenue", "purchases", "conversion"], "last": "7d", "grain": "1d"}),
    ("top-10 countries by visitors", {"metrics": ["visitors"], "last": "7d", "grain": "1d", "by": ["country"], "top": 10}),
]  # fmt: skip

# The same questions over 24 hours, for the raw-events peer and for rta side by side.
RAW_QUESTIONS = [
    ("24h series by hour", {"metrics": ["page_views", "revenue"], "last": "24h", "grain": "1h"},
     "SELECT toStartOfHour(timestamp) AS t, countIf(event = 'page_view') AS page_views, sumIf(revenue, event = 'purchase') AS revenue "
     "FROM {raw} WHERE timestamp >= now() - INTERVAL 24 HOUR GROUP BY t ORDER BY t"),
    ("top-10 countries, filters", {"metrics": ["revenue"], "last": "24h", "grain": "1d", "by": ["country"], "top": 10,
                                   "where": {"device": ["mobile"], "campaign": ["google_00", "(none)"]}},
     "SELECT country, sumIf(revenue, event = 'purchase') AS revenue FROM {raw} WHERE timestamp >= now() - INTERVAL 24 HOUR "
     "AND device = 'mobile' AND campaign IN ('google_00', '(none)') GROUP BY country ORDER BY revenue DESC LIMIT 10"),
    ("24h minute series", {"metrics": ["page_views"], "last": "24h", "grain": "1m"},
     "SELECT toStartOfMinute(timestamp) AS t, countIf(event = 'page_view') AS page_views FROM {raw} "
     "WHERE timestamp >= now() - INTERVAL 24 HOUR GROUP BY t ORDER BY t"),
    ("24h visitors by hour", {"metrics": ["visitors"], "last": "24h", "grain": "1h"},
     "SELECT toStartOfHour(timestamp) AS t, uniqCombined64(12)(user_id) AS visitors FROM {raw} "
     "WHERE timestamp >= now() - INTERVAL 24 HOUR GROUP BY t ORDER BY t"),
]  # fmt: skip


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[math.ceil(len(ordered) * 0.99) - 1]  # nearest rank


def _timed(runs: int, ask) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """p50 and p99 ms of ``runs`` calls of ``ask``."""
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        ask()
        samples.append((time.perf_counter() - began) * 1000)
    return _percentiles(samples)


def time_live(ws, runs: int, per_day: int) -> list[tuple[str, str, float, float]]:  # type: ignore[no-untyped-def]
    """(question, how, p50 ms, p99 ms) for rta uncached while events are written every second."""
    with LiveIngest(ws, per_day):
        time.sleep(5.0)  # a few writes and their merges are under way
        return [(name, "rta, uncached, ingest running", *_timed(runs, lambda o=o: ws.query(cache=False, **o))) for name, o in PANELS]


def time_queries(ws, runs: int) -> list[tuple[str, str, float, float]]:  # type: ignore[no-untyped-def]
    """(question, how, p50 ms, p99 ms) for rta cold and cached and the raw-events peer."""
    rows = []
    for name, options in PANELS:
        cold = _timed(runs, lambda o=options: ws.query(cache=False, **o))
        ws.query(**options)
        cached = _timed(runs, lambda o=options: ws.query(**o))
        rows += [(name, "rta, uncached", *cold), (name, "rta, cached", *cached)]
    raw = ws.plan.streams[0].raw_table
    for name, options, sql in RAW_QUESTIONS:
        ours, theirs = [], []
        for _ in range(min(runs, 20)):  # the peer takes seconds a question: 20 runs show its spread
            began = time.perf_counter()
            ws.query(cache=False, **options)
            ours.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            ws.client.query_arrow(sql.format(raw=raw))
            theirs.append((time.perf_counter() - began) * 1000)
        rows += [(name, "rta, uncached", *_percentiles(ours)), (name, "raw events (peer)", *_percentiles(theirs))]
    return rows


_WRK_SCRIPT = """
local bodies = {BODIES}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/query", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer KEY"}, bodies[i])
end
"""


def _wrk_ms(text: str) -> float:
    value, unit = float(text.rstrip("usm")), text.lstrip("0123456789.")
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk_run(wrk: str, script: Path, port: int, connections: int, seconds: int) -> dict:  # type: ignore[type-arg]
    """One wrk run (a separate process): requests/s, p50 and p99 ms, non-2xx answers."""
    import re

    target = f"http://127.0.0.1:{port}"
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script), target]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {"connections": connections, "rate": rate, "p50": p50, "p99": p99, "errors": errors}


def _wrk_or_skip(what: str) -> str | None:
    """The wrk binary, or None (said on stderr: ``what`` is skipped)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print(f"  wrk is not installed (apt-get install wrk): {what} skipped", file=sys.stderr)
    return wrk


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk_series(wrk: str, app, port: int, lua: str, warm, connections: list[int], seconds: int, label: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    """Serve ``app`` here on ``port``, ``warm()`` it, then one wrk run of the ``lua`` script per number of connections."""
    from rta.query.api import serve_in_thread

    script = Path(tempfile.mkdtemp()) / "load.lua"
    script.write_text(lua)
    _, stop = serve_in_thread(app, port=port)
    results = []
    try:
        warm()
        for conns in connections:
            results.append(_wrk_run(wrk, script, port, conns, seconds))
            print(f"  {label}{conns} connections: {results[-1]['rate']:,.0f} req/s, p99 {results[-1]['p99']:.1f} ms", file=sys.stderr)
    finally:
        stop()
        shutil.rmtree(script.parent, ignore_errors=True)
    return results


def load_test(ws, connections: list[int], seconds: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Serve the API here; load it with wrk (a separate process) cycling through the dashboard's panels."""
    from rta.contract.keys import KeyStore
    from rta.query.api import QueryApi

    wrk = _wrk_or_skip("load test")
    if wrk is None:
        return []
    keys = KeyStore(ws.project.root)
    _, key = keys.create("read", "bench")
    bodies = "{" + ", ".join("[[" + json.dumps(options) + "]]" for _, options in PANELS) + "}"

    def warm() -> None:
        for _, options in PANELS:  # dashboards are open: their panels are cached
            ws.query(**options)

    lua = _WRK_SCRIPT.replace("{BODIES}", bodies).replace("KEY", key)
    return _wrk_series(wrk, QueryApi(ws, keys), _free_port(), lua, warm, connections, seconds, "")


_PAGE_SCRIPT = """
local paths = {PATHS}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
# What viewers of the shared page look at: the default view, drilled views, another range.
PAGE_VIEWS = ["", "&f.country=US", "&f.device=mobile", "&last=24h", "&f.campaign=google_00", "&f.country=DE&f.device=desktop"]


def page_load_test(ws, connections: list[int], seconds: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Load /d/shop/data (what each open shared page fetches per refresh) with wrk."""
    from rta.contract.keys import KeyStore
    from rta.dash.pages import DashboardPages, share_name
    from rta.query.api import QueryApi

    wrk = _wrk_or_skip("page load test")
    if wrk is None:
        return []
    keys = KeyStore(ws.project.root)
    _, token = keys.create("share", share_name("shop"))
    port = _free_port()
    paths = "{" + ", ".join(f'"/d/shop/data?token={token}{view}"' for view in PAGE_VIEWS) + "}"

    def warm() -> None:
        for view in PAGE_VIEWS:  # the pages are open: warm
            urllib.request.urlopen(f"http://127.0.0.1:{port}/d/shop/data?token={token}{view}", timeout=120).read()

    app = DashboardPages(ws, keys, QueryApi(ws, keys))
    return _wrk_series(wrk, app, port, _PAGE_SCRIPT.replace("{PATHS}", paths), warm, connections, seconds, "pages, ")


def _load_tables(ws, steps: list[int], seconds: int, per_day: int, refresh: float) -> None:  # type: ignore[no-untyped-def]
    """The REST and shared-page load tests, on the store unchanged and while events land every second."""
    per_user = len(PANELS) / refresh  # requests per second one dashboard user makes
    page_refresh = ws.plan.definitions.dashboard("shop").refresh
    tests = [
        (f"REST API, dashboard panels; a user fetches {len(PANELS)} panels every {refresh:.0f} s", "users", per_user, load_test),
        (f"Shared page /d/shop: a viewer fetches it every {page_refresh} s, {len(PAGE_VIEWS)} distinct views", "viewers",
         1 / page_refresh, page_load_test),
    ]  # fmt: skip
    for title, who, rate_each, run in tests:
        print(f"\n{title}; load from wrk (a separate process)")
        print(f"{'store':<26}{'connections':>12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'= ' + who:>11}")
        for live in (False, True):
            best = 0
            with LiveIngest(ws, per_day) if live else contextlib.nullcontext():
                results = run(ws, steps, seconds)
            for r in results:
                served = int(r["rate"] / rate_each)
                how = "written every second" if live else "unchanged"
                print(f"{how:<26}{r['connections']:>12}{r['rate']:>10,.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['errors']:>8}{served:>11,}")
                if r["p99"] < 250 and not r["errors"]:
                    best = max(best, served)
            print(f"  most {who} served with p99 < 250 ms ({'live' if live else 'static'} store): {best:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events-per-day", type=int, default=100_000_000)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per query (p99 of 100 is the second slowest)")
    parser.add_argument("--connections", default="4,16,64,256", help="load-test steps (concurrent connections)")
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--refresh", type=float, default=60.0, help="seconds between a user's dashboard refreshes")
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder instead of a temporary one")
    args = parser.parse_args()

    from rta.workspace import connect

    work = args.keep or Path(tempfile.mkdtemp(prefix="rta-query-bench-"))
    try:
        (work / "metrics").mkdir(parents=True, exist_ok=True)
        shutil.copy(SHOP, work / "metrics" / "shop.py")
        (work / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
        ws = connect(work)
        now = datetime.now(UTC)
        if not ws.client.query(f"SELECT count() FROM {ws.plan.rollups[0].tables[-1].table}").result_rows[0][0]:
            print(f"building {args.days} days at {args.events_per_day:,} events/day ...", file=sys.stderr)
            taken = build(ws.client, ws.plan, args.days, args.events_per_day, now)
            print(f"  built in {taken['rollups']:.0f} s (rollups) + {taken['raw']:.0f} s (raw day)", file=sys.stderr)
        waited = settle(ws.client)
        print(f"  background merges settled after {waited:.0f} s", file=sys.stderr)
        size = ws.client.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active").result_rows[0][0]
        print(f"\n{args.days} days x {args.events_per_day:,} events/day; {size / 1e9:.1f} GB on disk\n")
        print(f"{'question':<42}{'answered by':<31}{'p50 ms':>9}{'p99 ms':>9}")
        for name, how, p50, p99 in time_queries(ws, args.runs) + time_live(ws, args.runs, args.events_per_day):
            print(f"{name:<42}{how:<31}{p50:>9.1f}{p99:>9.1f}")
        steps = [int(c) for c in args.connections.split(",") if c]
        if steps:
            _load_tables(ws, steps, args.load_seconds, args.events_per_day, args.refresh)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
