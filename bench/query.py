"""Dashboard query latency and concurrency: rta's rollups vs the same questions on raw events.

    python bench/query.py [--days 7] [--events-per-day 100000000] [--raw-events-per-day N] [--users 1000000]
                          [--connections 4,16,64,256] [--keep DIR] [--only all|raw]

Builds the `shop` example's rollups for ``--days`` days at ``--events-per-day`` (default 1/100 of
the 10-billion-events/day target: ~100M/day, ~200 countries, 4 devices, ~50 campaigns, 6 event
types) inside ClickHouse: synthetic events from numbers(), aggregated per minute into the
rollups' input tables, through the same materialized views the flow feeds. Raw events for 7 days
(the last at ``--events-per-day``, the days before at ``--raw-events-per-day``), each with 8
undeclared properties in the raw table's maps (plan, referrer, experiment, discount, ...), the
traits of ``--users`` people in rta's traits table, and the peer: the same events in a plain
MergeTree with every property a column, and a plain users table. Once the build's background
merges have settled, it times typical dashboard queries cold and cached, cold again while a
second's worth of events lands in every rollup each second (as under ingest), the 24-hour
questions on raw events, the questions only raw events answer (24 h by an undeclared property,
7 days by a person's trait) beside a rollup and the peer, and a load test of simulated dashboard
users against the REST API from a separate process. Everything lives in a temporary folder
removed at the end.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "metrics" / "shop.py"
CHUNK_SECONDS = 6 * 3600  # one INSERT ... SELECT per six hours of events bounds memory


USERS = 1_000_000  # people with traits; events pick among them Zipf-skewed
RAW_DAYS = 7  # days of raw events: the 7-day person question reads them all
PLANS = ("free", "starter", "pro", "business", "enterprise")
PLAN_SHARES = (55, 22, 13, 7, 3)  # percent of users on each plan
EXPERIMENTS = ("(none)", "control", "checkout_v2", "new_search")
LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP")
ROLES = ("member", "admin", "owner", "viewer")
# The undeclared properties of every event (8 keys, like a Segment track call's): texts, and
# numbers, which the flow keeps both as written (props) and as numbers (props_num).
TEXT_PROPS = ("plan", "referrer", "experiment", "sku", "session_id", "locale")
NUMBER_PROPS = ("discount", "items")
PEER_EVENTS, PEER_USERS = "peer_events", "peer_users"  # the hand-made schema: properties as columns


def _array(items) -> str:  # type: ignore[no-untyped-def]
    return "[" + ", ".join("'" + i + "'" for i in items) + "]"


def _plan_of(user: str) -> str:
    """SQL of the plan of user number ``user``: the event's property and the person's trait agree."""
    h = f"cityHash64({user}, 11) % 100"
    bounds = [sum(PLAN_SHARES[: i + 1]) for i in range(len(PLANS) - 1)]
    return f"{_array(PLANS)}[1 + multiIf({', '.join(f'{h} < {b}, {i}' for i, b in enumerate(bounds))}, {len(PLANS) - 1})]"


def _event_columns(start: int, span: int, n: int, users: int = USERS) -> str:
    """SQL for synthetic events from numbers(n) over [start, start + span) seconds, Zipf-skewed."""
    from rta.flows.demo import CAMPAIGNS, COUNTRIES, DEVICES

    r = "(cityHash64(number, {salt}) % 1000000) / 1000000.0"
    return f"""
        toDateTime64({start} + number * {span} / {n}, 3, 'UTC') AS timestamp,
        multiIf({r.format(salt=1)} < 0.60, 'page_view', {r.format(salt=1)} < 0.82, 'click', {r.format(salt=1)} < 0.90, 'search',
                {r.format(salt=1)} < 0.96, 'add_to_cart', {r.format(salt=1)} < 0.985, 'purchase', 'signup') AS event,
        {_array(COUNTRIES)}[1 + toUInt32(floor({len(COUNTRIES)} * pow({r.format(salt=2)}, 3)))] AS country,
        {_array(DEVICES)}[1 + multiIf({r.format(salt=3)} < 0.55, 0, {r.format(salt=3)} < 0.93, 1,
                                     {r.format(salt=3)} < 0.99, 2, 3)] AS device,
        {_array(CAMPAIGNS)}[1 + toUInt32(floor({len(CAMPAIGNS)} * pow({r.format(salt=4)}, 2)))] AS campaign,
        '/' AS path,
        if(event = 'purchase', 5 + (cityHash64(number, 5) % 20000) / 100.0, NULL) AS revenue,
        if(event = 'page_view', 80 + (cityHash64(number, 6) % 2000), NULL) AS load_ms,
        toUInt32(floor({users} * pow({r.format(salt=7)}, 3))) AS user_n,
        concat('u', toString(user_n)) AS user_id,
        toString(number) AS insert_id,
        {_plan_of("user_n")} AS plan,
        concat('site', toString(toUInt32(floor(1000 * pow({r.format(salt=8)}, 2)))), '.com') AS referrer,
        {_array(EXPERIMENTS)}[1 + toUInt32(floor({len(EXPERIMENTS)} * pow({r.format(salt=9)}, 2)))] AS experiment,
        concat('sku-', toString(cityHash64(number, 12) % 5000)) AS sku,
        hex(cityHash64(user_n, intDiv(toUInt32(timestamp), 1800))) AS session_id,
        {_array(LOCALES)}[1 + toUInt32(floor({len(LOCALES)} * pow({r.format(salt=13)}, 2)))] AS locale,
        toFloat64(5 * (cityHash64(number, 10) % 7)) AS discount,
        toFloat64(1 + cityHash64(number, 14) % 5) AS items"""


def _maps() -> str:
    """The raw table's maps of the properties, as the flow fills them (numbers as written and as numbers)."""
    texts = ", ".join(f"'{k}', {k}" for k in TEXT_PROPS)
    numbers_as_text = ", ".join(f"'{k}', toString({k})" for k in NUMBER_PROPS)
    numbers = ", ".join(f"'{k}', {k}" for k in NUMBER_PROPS)
    return f"map({texts}, {numbers_as_text}) AS props, map({numbers}) AS props_num"


def _traits(end: int) -> tuple[str, list[tuple[str, str]]]:
    """The SQL of ``updated`` and (key, value) of each person's traits, of user number ``number``."""
    from rta.flows.demo import COUNTRIES

    r = "(cityHash64(number, 23) % 1000000) / 1000000.0"
    updated = f"toDateTime64({end - 30 * 86400} + cityHash64(number, 20) % {20 * 86400}, 3, 'UTC')"
    return updated, [
        ("plan", _plan_of("number")),
        ("company", "concat('company-', toString(cityHash64(number, 22) % 50000))"),
        ("country", f"{_array(COUNTRIES)}[1 + toUInt32(floor({len(COUNTRIES)} * pow({r}, 3)))]"),
        ("role", f"{_array(ROLES)}[1 + cityHash64(number, 24) % {len(ROLES)}]"),
    ]


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


def build(client, plan, days: int, per_day: int, now: datetime, users: int = USERS) -> float:  # type: ignore[no-untyped-def]
    """Fill the rollups for ``days`` days; returns seconds taken.

    Days before the last are fed hour-aligned partials with the minute views dropped: the
    dashboard questions read minutes of the last 24 hours only (older minute partitions are
    pruned), and minute partials for a week take ~1 h to build here instead of ~15 min.
    """
    from rta.store.schema import apply

    end = int(now.timestamp()) // 3600 * 3600
    start = end - days * 86400
    per_chunk = per_day * CHUNK_SECONDS // 86400
    taken = 0.0
    minute_views = [t.view for r in plan.rollups for t in r.tables if t.grain == "1m"]
    for view in minute_views:
        client.command(f"DROP VIEW IF EXISTS {view}")
    for chunk_start in range(start, end, CHUNK_SECONDS):
        if chunk_start == end - 86400:
            apply(plan, client)  # the minute views are back for the last day
        bucket = "toStartOfMinute" if chunk_start >= end - 86400 else "toStartOfHour"
        began = time.perf_counter()
        insert_partials(client, plan, chunk_start, CHUNK_SECONDS, per_chunk, bucket, _BUILD_SETTINGS, users)
        taken += time.perf_counter() - began
        print(f"  rollups up to {datetime.fromtimestamp(chunk_start + CHUNK_SECONDS, UTC):%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return taken


_BUILD_SETTINGS = {"max_memory_usage": 16_000_000_000}


def _peer_ddl(stream) -> list[str]:  # type: ignore[no-untyped-def]
    """The hand-made schema of the same events: every property an ordinary column, users a plain table."""
    columns = [f"{stream.time} DateTime64(3, 'UTC')", f"{stream.insert_id} String", f"{stream.user} String"]
    columns += [f"{d} LowCardinality(String)" for d in stream.dims]
    columns += [f"{m} Nullable(Float64)" for m in stream.measures]
    columns += [f"{k} {'String' if k == 'session_id' else 'LowCardinality(String)'}" for k in TEXT_PROPS]
    columns += [f"{k} Float64" for k in NUMBER_PROPS]
    # Partitioned and ordered as rta's raw table is: the peer differs in how properties are stored, nothing else.
    events = (
        f"CREATE TABLE IF NOT EXISTS {PEER_EVENTS} ({', '.join(columns)}) ENGINE = MergeTree "
        f"PARTITION BY toYYYYMMDD({stream.time}) ORDER BY {stream.time}"
    )
    traits = ", ".join(f"{k} LowCardinality(String)" for k, _ in _traits(0)[1])
    users = f"CREATE TABLE IF NOT EXISTS {PEER_USERS} (user_id String, {traits}) ENGINE = MergeTree ORDER BY user_id"
    return [events, users]


def build_raw(client, plan, now: datetime, per_day: int, older_per_day: int, users: int = USERS) -> float:  # type: ignore[no-untyped-def]
    """``RAW_DAYS`` days of raw events, with their properties, in rta's raw table and in the peer's; returns seconds taken.

    The last day is at ``per_day`` (the 24-hour questions compare with rollups built at that rate),
    the days before it at ``older_per_day``. Materialized property columns are added before the
    first insert, as the flow adds them (rta/store/properties.py).
    """
    from rta.store.properties import materialize

    stream = plan.streams[0]
    materialize(client, stream.raw_table, [*TEXT_PROPS, *NUMBER_PROPS], list(NUMBER_PROPS))
    for ddl in _peer_ddl(stream):
        client.command(ddl)
    declared = ", ".join((stream.time, stream.insert_id, stream.user, *stream.dims, *stream.measures))
    peer = ", ".join((declared, *TEXT_PROPS, *NUMBER_PROPS))
    end = int(now.timestamp()) // 3600 * 3600
    taken = 0.0
    for chunk_start in range(end - RAW_DAYS * 86400, end, CHUNK_SECONDS):
        rate = per_day if chunk_start >= end - 86400 else older_per_day
        n = rate * CHUNK_SECONDS // 86400
        source = f"(SELECT {_event_columns(chunk_start, CHUNK_SECONDS, n, users)} FROM numbers({n}))"
        began = time.perf_counter()
        client.command(
            f"INSERT INTO {stream.raw_table} ({declared}, props, props_num) SELECT {declared}, {_maps()} FROM {source}",
            settings=_BUILD_SETTINGS,
        )
        taken += time.perf_counter() - began
        client.command(f"INSERT INTO {PEER_EVENTS} ({peer}) SELECT {peer} FROM {source}", settings=_BUILD_SETTINGS)
        print(f"  raw events up to {datetime.fromtimestamp(chunk_start + CHUNK_SECONDS, UTC):%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return taken


RAW_BYTES_PER_EVENT = 105  # measured at 10M events/day: 68 B in rta's raw table (maps + materialized columns), 33 B in the peer's


def _older_rate(work: Path, per_day: int, older: int) -> int:
    """The rate of the raw days before the last: ``older``, or lower when that would not fit on the disk (said on stdout)."""
    free = shutil.disk_usage(work).free
    room = free * 0.6 / RAW_BYTES_PER_EVENT - per_day  # events that fit beside the last day (merges need room to rewrite parts)
    fits = int(room / (RAW_DAYS - 1)) // 1_000_000 * 1_000_000
    if older <= fits:
        return older
    if fits <= 0:
        raise SystemExit(f"raw events at {per_day:,}/day do not fit in the {free / 1e9:.0f} GB free; ask for fewer --events-per-day")
    print(f"note: the {RAW_DAYS - 1} raw days before the last at {fits:,} events/day, not {older:,}: {free / 1e9:.0f} GB free hold no more")
    return fits


def build_people(client, now: datetime, users: int = USERS) -> float:  # type: ignore[no-untyped-def]
    """Traits of ``users`` people in ``rta_person_traits``, as the flow writes them, and the peer's users table; returns seconds taken.

    One row per person and key (the flow writes the latest of each batch); a tenth of the people
    also have an older plan row (they upgraded), so reads must take the latest.
    """
    from rta.contract.people import TRAITS_TABLE

    end = int(now.timestamp()) // 3600 * 3600
    updated, traits = _traits(end)
    pairs = ", ".join(f"('{k}', {v})" for k, v in traits)
    began = time.perf_counter()
    client.command(
        f"INSERT INTO {TRAITS_TABLE} (person, key, value, updated) SELECT concat('u', toString(number)), kv.1, kv.2, {updated} "
        f"FROM numbers({users}) ARRAY JOIN [{pairs}] AS kv",
        settings=_BUILD_SETTINGS,
    )
    client.command(
        f"INSERT INTO {TRAITS_TABLE} (person, key, value, updated) SELECT concat('u', toString(number)), 'plan', 'free', "
        f"{updated} - INTERVAL 60 DAY FROM numbers({users}) WHERE cityHash64(number, 21) % 10 = 0"
    )
    taken = time.perf_counter() - began
    names = ", ".join(k for k, _ in traits)
    client.command(
        f"INSERT INTO {PEER_USERS} (user_id, {names}) SELECT concat('u', toString(number)), {', '.join(v for _, v in traits)} "
        f"FROM numbers({users})"
    )
    return taken


def insert_partials(client, plan, start: int, span: int, n: int, bucket: str, settings: dict | None = None, users: int = USERS) -> None:  # type: ignore[no-untyped-def, type-arg]
    """``n`` synthetic events over ``[start, start + span)`` into every rollup, as the flow's partials."""
    events = _event_columns(start, span, n, users)
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


# Questions only raw events answer: by an undeclared property, by a person's trait. At the auto
# grain of both ranges (hours), as ws.query answers them; each beside the peer on plain columns.
RAW_GRAIN = "1h"
GOAL_MS, GOAL_RATE = 1_500.0, 100_000_000  # issue 18: 24 h by an undeclared property at 100M events/day, p99, 2 cores


@dataclass(frozen=True, slots=True)
class Way:
    """One way of answering a raw-events question over ``[start, end)``: run it, and what one run reads."""

    question: str
    how: str
    run: Callable[[datetime, datetime], pl.DataFrame]
    read: Callable[[datetime, datetime], int]  # rows scanned
    key: str  # the column holding the plan, for checking the answer against the peer's


def _by_sql(ws, sql_of: Callable[[datetime, datetime], tuple[str, dict]], question: str, how: str, key: str) -> Way:  # type: ignore[no-untyped-def, type-arg]
    """A way that runs a statement on the store (no console limits: ws.query has none either)."""

    def run(start: datetime, end: datetime) -> pl.DataFrame:
        sql, params = sql_of(start, end)
        return pl.from_arrow(ws.client.query_arrow(sql, parameters=params))  # type: ignore[return-value]

    def read(start: datetime, end: datetime) -> int:
        # Estimated from whole granules: chdb's query statistics count the rows it returns, not those it scans.
        sql, params = sql_of(start, end)
        return sum(int(r["rows"]) for r in ws.client.query(f"EXPLAIN ESTIMATE {sql}", parameters=params).named_results())

    return Way(question, how, run, read, key)


def _by_query(ws, question: str, how: str, by: str) -> Way:  # type: ignore[no-untyped-def]
    """A way through ws.query (the planner: a rollup, or its raw-events fallback)."""
    options = {"by": by, "grain": RAW_GRAIN, "cache": False}

    def read(start: datetime, end: datetime) -> int:
        return sum(e.rows_read for e in ws.explain("purchases", start=start, end=end, **options).executed)

    return Way(question, how, lambda start, end: ws.query("purchases", start=start, end=end, **options), read, by)


def _unanswered(ws, by: str) -> str | None:
    """Why ws.query cannot split purchases by ``by`` yet (the raw-events fallback has not landed), or None."""
    from rta.errors import QueryError

    try:
        ws.query("purchases", last="1h", by=by, grain=RAW_GRAIN, cache=False)
    except QueryError as err:
        if "cannot split or filter" in str(err) or "no rollup answers" in str(err):
            return str(err)
        raise
    return None


def _sql_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _adhoc_sql(ws, start: datetime, end: datetime) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    """24 h purchases by prop.plan through the ad-hoc builder (which reads the props map)."""
    from rta import col, count

    q = ws.events.between(start, end).where(col("event") == "purchase").group_by("prop.plan", every=RAW_GRAIN).agg(purchases=count())
    return q.to_sql()  # type: ignore[no-any-return]


def _people_sql(ws, start: datetime, end: datetime) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    """Purchases by person.plan from raw events with rta's people join (PeopleJoin), as the fallback builds it."""
    import sqlglot.expressions as exp

    from rta.compiler.sql_filter import Params
    from rta.contract.people import PeopleJoin

    stream = ws.plan.streams[0]
    params = Params()
    table = stream.raw_table

    def column(name: str) -> exp.Column:
        return exp.column(exp.to_identifier(name), table=exp.to_identifier(table))

    people = PeopleJoin(column(stream.user), params)
    moment = column(stream.time)
    time_type = "DateTime64(3, 'UTC')"
    select = (
        exp.select(
            exp.alias_(exp.func("toStartOfHour", moment), "bucket"),
            exp.alias_(people.trait("plan"), "plan"),
            exp.alias_(exp.func("count"), "purchases"),
        )
        .from_(exp.to_table(table))
        .where(
            exp.and_(
                exp.EQ(this=column("event"), expression=params.add("purchase", "String")),
                exp.GTE(this=moment.copy(), expression=params.add(_sql_time(start), time_type)),
                exp.LT(this=moment.copy(), expression=params.add(_sql_time(end), time_type)),
            )
        )
        .group_by(exp.column("bucket"), exp.column("plan"))
    )
    return people.join(select).sql(dialect="clickhouse"), params.values


def _plain_sql(start: datetime, end: datetime, table: str, plan: str, join: str = "") -> tuple[str, dict]:  # type: ignore[type-arg]
    """Purchases by a plan column, written by hand: the purchase filter in WHERE, so only purchases are grouped (or joined)."""
    sql = (
        f"SELECT toStartOfHour(e.timestamp) AS bucket, {plan} AS plan, count() AS purchases FROM {table} AS e{join} "
        f"WHERE e.event = 'purchase' AND e.timestamp >= toDateTime64('{_sql_time(start)}', 3, 'UTC') "
        f"AND e.timestamp < toDateTime64('{_sql_time(end)}', 3, 'UTC') GROUP BY bucket, plan"
    )
    return sql, {}


def raw_ways(ws) -> tuple[list[tuple[Way, int]], list[str]]:  # type: ignore[no-untyped-def]
    """The ways of each raw-events question with its range in seconds, and notes on what stood in for what."""
    day, week = 86400, 7 * 86400
    prop_q, person_q = "24h purchases by prop.plan", "7d purchases by person.plan"
    fallback = "rta: raw-events fallback (ws.query)"
    raw = ws.plan.streams[0].raw_table
    users = f" LEFT JOIN {PEER_USERS} AS u ON u.user_id = e.user_id"
    ways, notes = [], []
    if (why := _unanswered(ws, "prop.plan")) is None:
        ways.append((_by_query(ws, prop_q, fallback, "prop.plan"), day))
    else:
        notes.append(f"ws.query(by='prop.plan') does not answer yet ({why}): the ad-hoc builder stands in for the fallback")
    ways.append((_by_sql(ws, lambda s, e: _adhoc_sql(ws, s, e), prop_q, "rta: ad-hoc builder (props map)", "prop.plan"), day))
    # rta's storage asked the peer's way: what the fallback's SQL could cost on the same table.
    hand = _by_sql(ws, lambda s, e: _plain_sql(s, e, raw, 'e."prop.plan"'), prop_q, "rta raw table by hand: prop.plan column", "plan")
    ways.append((hand, day))
    table = ws.explain("purchases", last="24h", by="country", grain=RAW_GRAIN, cache=False).executed[0].table
    rollup = next(f"{r.name} {t.grain}" for r in ws.plan.rollups for t in r.tables if t.table == table)
    ways.append((_by_query(ws, "24h purchases by country (declared)", f"rta: rollup {rollup}", "country"), day))
    peer = _by_sql(
        ws, lambda s, e: _plain_sql(s, e, PEER_EVENTS, "e.plan"), "24h purchases by plan", "ClickHouse: MergeTree, plan a column", "plan"
    )
    ways.append((peer, day))
    if (why := _unanswered(ws, "person.plan")) is None:
        ways.append((_by_query(ws, person_q, fallback, "person.plan"), week))
    else:
        notes.append(f"ws.query(by='person.plan') does not answer yet ({why}): rta's people join (PeopleJoin) stands in")
    ways.append((_by_sql(ws, lambda s, e: _people_sql(ws, s, e), person_q, "rta raw table by hand: PeopleJoin", "plan"), week))
    peer = _by_sql(
        ws,
        lambda s, e: _plain_sql(s, e, PEER_EVENTS, "u.plan", users),
        "7d purchases by users.plan",
        "ClickHouse: MergeTree JOIN users",
        "plan",
    )
    ways.append((peer, week))
    return ways, notes


def _plan_totals(frame: pl.DataFrame, key: str) -> dict[str, int]:
    grouped = frame.group_by(key).agg(pl.col("purchases").sum())
    return {str(k): int(n) for k, n in grouped.iter_rows() if n}


def check_raw_answers(ways: list[tuple[Way, int]]) -> None:
    """Every rta way over raw events answers what the peer answers over the same hours (the rollup's is another question)."""
    end = datetime.fromtimestamp(int(time.time()) // 3600 * 3600, UTC)
    for span in sorted({s for _, s in ways}):
        start = end - timedelta(seconds=span)
        peer, *_ = [w for w, s in ways if s == span and w.how.startswith("ClickHouse")]
        expected = _plan_totals(peer.run(start, end), peer.key)
        if not expected:
            raise SystemExit(f"the peer found no purchases over {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC: were the raw events built?")
        for way, s in ways:
            if s != span or way is peer or "rollup" in way.how:
                continue
            got = _plan_totals(way.run(start, end), way.key)
            if got != expected:
                msg = f"{way.question} ({way.how}) answers {got}, the peer {expected}, over {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
                raise SystemExit(msg)


def time_raw_questions(ws, runs: int, week_runs: int) -> tuple[list[tuple[str, str, float, float, int]], list[str]]:  # type: ignore[no-untyped-def]
    """(question, how, p50 ms, p99 ms, rows scanned) of every way, run in turns; and notes."""
    ways, notes = raw_ways(ws)
    check_raw_answers(ways)
    rows = []
    for span in sorted({s for _, s in ways}):
        group = [w for w, s in ways if s == span]
        samples: list[list[float]] = [[] for _ in group]
        for _ in range(runs if span <= 86400 else week_runs):  # in turns, so a neighbour's load falls on every way alike
            for way, taken in zip(group, samples, strict=True):
                now = datetime.now(UTC)
                began = time.perf_counter()
                way.run(now - timedelta(seconds=span), now)
                taken.append((time.perf_counter() - began) * 1000)
        for way, taken in zip(group, samples, strict=True):
            now = datetime.now(UTC)
            rows.append((way.question, way.how, *_percentiles(taken), way.read(now - timedelta(seconds=span), now)))
    return rows, notes


def print_raw_questions(ws, runs: int, week_runs: int) -> None:  # type: ignore[no-untyped-def]
    """The raw-events questions' table, what the raw events are (counted, so a kept folder is described right), and the goal."""
    from rta.contract.people import TRAITS_TABLE

    raw = ws.plan.streams[0].raw_table
    last, older = ws.client.query(
        f"SELECT countIf(timestamp >= end - INTERVAL 1 DAY), countIf(timestamp < end - INTERVAL 1 DAY) "
        f"FROM {raw}, (SELECT toStartOfHour(max(timestamp)) + INTERVAL 1 HOUR AS end FROM {raw}) AS newest"
    ).result_rows[0]
    per_day, older_per_day = int(last), int(older) // (RAW_DAYS - 1)
    people, traits = ws.client.query(f"SELECT uniqExact(person), count() FROM {TRAITS_TABLE}").result_rows[0]
    rows, notes = time_raw_questions(ws, runs, week_runs)
    keys = len(TEXT_PROPS) + len(NUMBER_PROPS)
    turns = f"runs in turns: {runs} per 24 h question, {week_runs} per 7 d"
    print(f"\nQueries that need raw events ({keys} undeclared properties per event; {turns})")
    print(
        f"raw events: {per_day:,} in the last 24 h, {older_per_day:,}/day in the {RAW_DAYS - 1} days before: {last + older:,} rows in "
        f"{RAW_DAYS} days; {people:,} people with {traits:,} trait rows"
    )
    for note in notes:
        print(f"  note: {note}")
    print(f"{'question':<38}{'answered by':<42}{'p50 ms':>9}{'p99 ms':>9}{'rows scanned':>15}")
    for question, how, p50, p99, scanned in rows:
        print(f"{question:<38}{how:<42}{p50:>9.1f}{p99:>9.1f}{scanned:>15,}")
    _, how, _, p99, _ = rows[0]
    goal = f"goal: 24h by an undeclared property at {GOAL_RATE:,} events/day, p99 <= {GOAL_MS:,.0f} ms on 2 cores"
    if per_day >= GOAL_RATE:
        print(f"{goal}: {'met' if p99 <= GOAL_MS else 'missed'} ({how}: p99 {p99:,.1f} ms)")
    else:
        print(f"{goal}: not judged, measured at {per_day:,} events/day ({how}: p99 {p99:,.1f} ms)")


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
    parser.add_argument("--users", type=int, default=USERS, help="people the events come from, each with traits")
    parser.add_argument(
        "--raw-events-per-day", type=int, help=f"events/day of the {RAW_DAYS - 1} raw days before the last (default: --events-per-day)"
    )
    parser.add_argument("--raw-runs", type=int, default=20, help="timed runs per 24-hour raw-events question (p99 of 20 is the slowest)")
    parser.add_argument("--week-runs", type=int, default=10, help="timed runs per 7-day raw-events question (each scans the week)")
    parser.add_argument("--connections", default="4,16,64,256", help="load-test steps (concurrent connections)")
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--refresh", type=float, default=60.0, help="seconds between a user's dashboard refreshes")
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder instead of a temporary one")
    parser.add_argument("--only", choices=("all", "raw"), default="all", help="raw: only the raw-events questions (no dashboards, no load)")
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
            taken = build(ws.client, ws.plan, args.days, args.events_per_day, now, args.users)
            print(f"  rollups built in {taken:.0f} s", file=sys.stderr)
        if not ws.client.query(f"EXISTS TABLE {PEER_EVENTS}").result_rows[0][0]:
            older = _older_rate(work, args.events_per_day, args.raw_events_per_day or args.events_per_day)
            print(f"raw events: {RAW_DAYS} days, the last at {args.events_per_day:,}/day, the others at {older:,}/day ...", file=sys.stderr)
            ws.client.command(f"TRUNCATE TABLE {ws.plan.streams[0].raw_table}")  # a folder kept from before the peer existed
            taken = build_raw(ws.client, ws.plan, now, args.events_per_day, older, args.users)
            taken_people = build_people(ws.client, now, args.users)
            print(
                f"  raw events written in {taken:.0f} s (rta's table), traits of {args.users:,} people in {taken_people:.0f} s",
                file=sys.stderr,
            )
        waited = settle(ws.client)
        print(f"  background merges settled after {waited:.0f} s", file=sys.stderr)
        size = ws.client.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active").result_rows[0][0]
        print(f"\n{args.days} days x {args.events_per_day:,} events/day; {size / 1e9:.1f} GB on disk\n")
        if args.only == "all":
            print(f"{'question':<42}{'answered by':<31}{'p50 ms':>9}{'p99 ms':>9}")
            for name, how, p50, p99 in time_queries(ws, args.runs) + time_live(ws, args.runs, args.events_per_day):
                print(f"{name:<42}{how:<31}{p50:>9.1f}{p99:>9.1f}")
        print_raw_questions(ws, args.raw_runs, args.week_runs)
        steps = [int(c) for c in args.connections.split(",") if c and args.only == "all"]
        if steps:
            _load_tables(ws, steps, args.load_seconds, args.events_per_day, args.refresh)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
