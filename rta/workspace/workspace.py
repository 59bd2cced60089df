"""The workspace: one project's definitions and store, queried from Python, the CLI and the API.

The notebook facade sits above everything it offers (queries, loads, dashboards, reports,
alerts); the layers below type against :class:`rta.query.protocol.Workspace`, which this satisfies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from clickhouse_connect.driver.client import Client

from rta.compiler.ddl import STATS_TABLE
from rta.compiler.naming import version_of
from rta.compiler.plan import StreamPlan
from rta.dsl.durations import GRAINS
from rta.errors import BackendError, QueryError
from rta.project import Project, load_project
from rta.query.cache import QueryCache
from rta.query.console import ConsoleLimits, check_sql, table_aliases
from rta.query.metric_query import Executed, MetricQuery, make_query, raw_answered, run_query
from rta.query.protocol import Answer, Explanation, Freshness
from rta.query.request import Asked, QueryRequest
from rta.query.session_metrics import asks_sessions, make_session_query, run_session_query
from rta.query.shared_cache import RedisResults
from rta.store.client import EMBEDDED
from rta.store.client import connect as connect_store
from rta.store.properties import materialized
from rta.store.schema import apply
from rta.store.writer import inserts_done
from rta.workspace.base import VERSION_SQL, WorkspaceBase
from rta.workspace.owner import Owner, published, quietly, read_owner
from rta.workspace.remote import RemoteWorkspace

CACHE_TTL = {"1m": 60.0, "1h": 300.0, "1d": 3600.0}  # seconds, tied to the grain


@dataclass(repr=False, eq=False)
class Workspace(WorkspaceBase):
    """A project's metrics and the store this process holds. Build it with :func:`connect`."""

    project: Project
    client: Client
    dsn: str
    cache: QueryCache[pl.DataFrame] = field(default_factory=QueryCache)
    limits: ConsoleLimits = field(default_factory=ConsoleLimits)
    shared: RedisResults | None = None  # results shared across API replicas
    _readonly: Client | None = field(default=None, repr=False)
    _version: tuple[float, tuple[object, int]] = field(default=(0.0, (None, 0)), repr=False)  # (checked at, (store version, inserts))
    _version_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _serving: tuple[str, contextlib.ExitStack] | None = field(default=None, repr=False)

    def _readonly_client(self) -> Client:
        if self._readonly is None:
            # A separate client: read-only settings on a shared one would stick
            # (docs/architecture.md, "A separate client for read-only work").
            self._readonly = connect_store(self.dsn, **self.limits.settings())
        return self._readonly

    def read(self, sql: str, params: Mapping[str, object]) -> pl.DataFrame:
        """Run a read-only statement rta built itself, with the console's limits."""
        try:
            frame = pl.from_arrow(self._readonly_client().query_arrow(sql, parameters=dict(params)))
        except Exception as err:
            self._retire_readonly()
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            msg = f"the query failed: {first}"
            raise QueryError(msg) from None
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _retire_readonly(self) -> None:
        # Measured on chdb: after a failed query the client's next result is a stale buffer
        # ("Invalid flatbuffers message"), so a failed statement retires the client.
        if self._readonly is not None:
            self._readonly.close()
            self._readonly = None

    def sql(self, text: str) -> pl.DataFrame:
        """Run one read-only SELECT over the project's tables (stream names stand for raw events,
        ``<rollup>_<grain>`` for rollup tables) with time, row and memory limits."""
        statement = check_sql(text, table_aliases(self.plan))  # refusals happen here, before the store
        return self.read(statement.sql(dialect="clickhouse"), {})

    def load(self, events: pl.DataFrame | str | Path | list[str | Path], *, stream: str | None = None) -> str:
        """Run events (a frame, or JSON-lines/Parquet files) through the flow into the store, like
        ``rta load``; loading the same events again adds nothing. Returns the flow's summary."""
        from rta.flows.frames import BatchSource, frame_batches  # loaded only when asked
        from rta.flows.runner import run_flow, summary
        from rta.flows.sources import FileSource

        if stream is None and len(self.plan.streams) != 1:
            msg = f"the project has streams {[s.name for s in self.plan.streams]}; pass stream="
            raise QueryError(msg)
        name = stream or self.plan.streams[0].name
        source: object
        if isinstance(events, pl.DataFrame):
            # Batches are keyed by content: the same frame loaded twice is deduplicated by the store.
            digest = f"{events.hash_rows(seed=7).sum():x}-{events.height}"
            chunks = [events.slice(i, 100_000) for i in range(0, events.height, 100_000)]
            source = BatchSource(frame_batches(name, chunks, key_prefix=f"frame-{digest}"))
        else:
            paths = [Path(p) for p in (events if isinstance(events, list) else [events])]
            source = FileSource(paths, self.plan.stream(name))
        return summary(run_flow(self.plan, source, self.client))  # type: ignore[arg-type]

    def load_demo(self, events: int = 100_000, *, days: int = 7, seed: int = 1, now: datetime | None = None) -> str:
        """Load synthetic shop traffic (the `rta run --demo` generator): about ``events`` over the
        ``days`` before the current minute (``now``'s), through the flow.

        The demo is a function of time (:func:`rta.flows.demo.anchored`): each UTC hour's events,
        insert ids included, depend only on ``seed``, ``events`` and ``days``, and events
        whose insert id was loaded before are skipped (as `rta load` does). So the same call run
        again adds nothing, and run later adds only the minutes since: a notebook can be rerun.
        """
        from rta.flows.demo import HOUR_MS, Population, anchored, with_traffic  # loaded only when asked
        from rta.flows.frames import BatchSource
        from rta.flows.runner import run_flow, summary
        from rta.flows.sources import LoadedIds, SourceBatch

        if events < 1 or days < 1:
            msg = f"load_demo takes events >= 1 and days >= 1, got events={events}, days={days}"
            raise QueryError(msg)
        if len(self.plan.streams) != 1:
            msg = f"the project has streams {[s.name for s in self.plan.streams]}; the demo feeds a project with one"
            raise QueryError(msg)
        stream = self.plan.streams[0]
        now = (now or datetime.now(UTC)).astimezone(UTC)
        end = int(now.timestamp() * 1000) // 60_000 * 60_000  # events before the current minute
        per_hour = max(1, round(events / (days * 24)))
        population = Population(seed, users=max(1_000, events // 20))
        frame = with_traffic(anchored(population, per_hour, end - days * 24 * HOUR_MS, end), stream.dims)
        loaded = LoadedIds.read(self.client, stream, now) if stream.insert_id else None
        digest = f"{frame.hash_rows(seed=7).sum():x}-{frame.height}"  # the same events form the same batches
        batches = []
        for i in range(0, max(frame.height, 1), 100_000):
            chunk, key = frame.slice(i, 100_000), f"demo-{digest}:{i}"
            if loaded is not None:
                chunk, key = loaded.admit(chunk, key)
            batches.append(SourceBatch(key, stream.name, chunk))
        stats = run_flow(self.plan, BatchSource(batches), self.client, clock=lambda: now)
        if loaded is not None:
            loaded.commit(self.client)  # after every insert landed
        repeats = f"\nskipped {loaded.repeats:,} demo events loaded before" if loaded is not None and loaded.repeats else ""
        return summary(stats) + repeats

    def _property_columns(self, stream: StreamPlan) -> frozenset[str]:
        return materialized(self.client, stream.raw_table) if stream.raw_table else frozenset()

    def freshness(self, now: datetime | None = None, *, stream: str | None = None) -> Freshness:
        """When the flow last wrote and how far its event-time watermark has come (of one stream, or all)."""
        now = now or datetime.now(UTC)
        where, params = ("WHERE stream = {s:String}", {"s": stream}) if stream else ("", {})
        sql = f"SELECT max(last_seen), maxIf(newest_event, outcome = 'accepted'), countIf(outcome = 'accepted') FROM {STATS_TABLE} {where}"
        written, newest, accepted = self.client.query(sql, parameters=params).result_rows[0]
        if written is None or written.timestamp() <= 0:
            return Freshness(None, None, None)
        written = written if written.tzinfo else written.replace(tzinfo=UTC)
        newest = (newest if newest.tzinfo else newest.replace(tzinfo=UTC)) if accepted else None
        lag = (now - newest).total_seconds() if newest is not None else None
        return Freshness(written, newest, lag)

    def answer(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Answer:
        """Like :meth:`query`, with the checked query and whether the cache answered."""
        now = now or datetime.now(UTC)
        request = metrics if isinstance(metrics, QueryRequest) else QueryRequest.of(metrics, **options)
        if asks_sessions(self.plan, request):  # visits, bounce rate, ...: from the stream's visits (rta/query/session_metrics.py)
            visits = make_session_query(self.plan, request, now=now)
            frame, hit = self._cached(visits, cache, now, None)
            return Answer(frame, visits, hit)
        q = make_query(self.plan, request, now=now)
        frame, hit = self._cached(q, cache, now, None)
        return Answer(frame, q, hit, raw_answered(self.plan, q, now))

    def cached_answer(self, metrics: Asked, **options: object) -> Answer | None:
        """The answer if this process has it cached, without touching the store (never blocks)."""
        now = datetime.now(UTC)
        request = metrics if isinstance(metrics, QueryRequest) else QueryRequest.of(metrics, **options)
        if asks_sessions(self.plan, request):
            visits = make_session_query(self.plan, request, now=now)
            found = self.cache.peek(self._cache_key(visits, now))
            return None if found is None else Answer(found, visits, True)
        q = make_query(self.plan, request, now=now)
        frame = self.cache.peek(self._cache_key(q, now))
        return None if frame is None else Answer(frame, q, True, raw_answered(self.plan, q, now))

    def explain(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Explanation:
        """Answer the query and tell which tables served it, what they read, how long it took."""
        log: list[Executed] = []
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        q = make_query(self.plan, metrics, now=now, **options)
        _, hit = self._cached(q, cache, now, log)
        return Explanation(q, tuple(log), time.perf_counter() - started, "hit" if hit else "miss")

    def _cached(self, q: MetricQuery, cache: bool, now: datetime, log: list[Executed] | None) -> tuple[pl.DataFrame, bool]:
        def compute() -> pl.DataFrame:
            if asks_sessions(self.plan, QueryRequest(q.metrics)):
                return self._with_final(run_session_query(self.client, self.plan, q), q, now)
            return self._with_final(run_query(self.client, self.plan, q, now=now, log=log), q, now)

        if not cache:
            return compute(), False
        ttl = CACHE_TTL[q.grain]
        key = self._cache_key(q, now)
        if self.shared is None:
            return self.cache.get_or_compute(key, ttl, compute)
        shared_hit = False

        def compute_shared() -> pl.DataFrame:
            nonlocal shared_hit
            frame = self.shared.get(key)  # type: ignore[union-attr]
            if frame is not None:
                shared_hit = True
                return frame
            frame = compute()
            self.shared.set(key, frame, ttl)  # type: ignore[union-attr]
            return frame

        frame, hit = self.cache.get_or_compute(key, ttl, compute_shared)
        return frame, hit or shared_hit

    def _cache_key(self, q: MetricQuery, now: datetime) -> tuple[MetricQuery, object]:
        """Results are keyed by the flow's last write too (checked at most once a second): live
        dashboards see new events within about a second, late ones included, and while nothing
        is written a result lives for its grain's TTL."""
        return q, self._versions()

    def data_version(self) -> object:
        """When the flow last wrote, and its tally. Read again at most once a second, on a thread:
        callers on an event loop (the APIs' cached path) never wait for the store."""
        return self._versions()[0]

    def _versions(self) -> tuple[object, int]:
        """The store's version and this process's inserts when it was read."""
        checked, versions = self._version
        if checked == 0.0:
            versions = self._read_version()
            self._version = (time.monotonic(), versions)
        elif time.monotonic() - checked > 1.0 and not self._version_lock.locked():
            threading.Thread(target=self._refresh_version, name="rta-data-version", daemon=True).start()
        return versions

    def _read_version(self) -> tuple[object, int]:
        # With this process's own inserts, read first: the flow's writers take a flush's tally and its
        # rollups' rows from one queue, so the tally (the store's version) can land first, and an answer
        # computed in between was cached under the new version until the next write.
        done = inserts_done()
        return tuple(self.client.query(VERSION_SQL).result_rows[0]), done

    def _refresh_version(self) -> None:
        if not self._version_lock.acquire(blocking=False):
            return
        try:
            self._version = (time.monotonic(), self._read_version())
        except Exception:  # the store is busy or gone: keep the last version, try again next second
            self._version = (time.monotonic(), self._version[1])
        finally:
            self._version_lock.release()

    def serve(self, port: int = 0) -> str:
        """Serve this workspace's queries and dashboard pages on loopback (``port=0``: a free one) and
        publish where in ``.rta/run.json``, so the project's other processes query through this one
        while it lives. Returns the address. Stops with :meth:`close` or when the process ends."""
        if self._serving is not None:
            return self._serving[0]
        from rta.contract.keys import KeyStore
        from rta.dash.pages import DashboardPages
        from rta.query.api import QueryApi, serve_in_thread

        keys = KeyStore(self.project.root)
        bound, stop = serve_in_thread(DashboardPages(self, keys, QueryApi(self, keys)), host="127.0.0.1", port=port)
        url = f"http://127.0.0.1:{bound}"
        stack = contextlib.ExitStack()
        stack.callback(stop)
        stack.enter_context(published(self.project.root, lambda _: url, kind="notebook"))
        self._serving = (url, stack)
        atexit.register(stack.close)
        return url

    def stop_serving(self) -> None:
        """Stop answering for other processes (they will open the store themselves once it is closed)."""
        if self._serving is not None:
            self._serving[1].close()
            self._serving = None

    def close(self) -> None:
        """Stop serving (if this workspace does) and close the store; other processes may open it then."""
        self.stop_serving()
        self._retire_readonly()
        self.client.close()

    def _where(self) -> str:
        served = f", served at {self._serving[0]}" if self._serving is not None else ""
        return f"{self.dsn} (held by this process{served})"

    def _with_final(self, frame: pl.DataFrame, q: MetricQuery, now: datetime) -> pl.DataFrame:
        watermark = self.freshness(now).watermark
        if watermark is None:
            return frame.with_columns(pl.lit(False).alias("final"))
        if q.total:
            return frame.with_columns(pl.lit(q.end <= watermark).alias("final"))
        settled = watermark - timedelta(seconds=GRAINS[q.grain])
        return frame.with_columns((pl.col("bucket") <= settled).alias("final"))


def connect(project: str | Path = ".", *, dsn: str | None = None, serve: bool | None = None) -> Workspace | RemoteWorkspace:
    """Open a project's workspace: its definitions and its store (created if missing).

    An embedded store (``chdb://``) can be open in one process only. When another process of
    the project holds it (``rta run``, or a notebook kernel), the workspace asks that process
    over loopback instead, with the same answers. A process that opens the store itself serves
    it the same way (``serve``; by default when it is interactive: a notebook kernel, a REPL), so
    a second notebook works while the first kernel lives.

    Example (a project folder made by ``rta init myshop``; tests/test_query.py runs the same)::

        ws = rta.connect("myshop")
        ws.query("revenue", last="7d", by="country", top=5)
    """
    loaded = load_project(project)
    store = dsn or loaded.dsn
    embedded = store.startswith(EMBEDDED) and store != "chdb://memory"
    owner = read_owner(loaded.root) if embedded else None
    if owner is not None:  # asked before opening: the engine would print its lock error first
        return RemoteWorkspace(loaded, owner.url, owner.key, str(owner))
    try:
        client = quietly(lambda: connect_store(store)) if embedded else connect_store(store)
    except BackendError as err:
        owner = _published_soon(loaded.root) if "open in another process" in str(err) else None
        if owner is None:
            raise
        return RemoteWorkspace(loaded, owner.url, owner.key, str(owner))
    apply(loaded.plan, client)
    redis_url = os.environ.get("RTA_REDIS_URL") or loaded.settings.get("cache", {}).get("redis_url")
    shared = RedisResults(redis_url, version_of(loaded.plan.ddl_sql())) if redis_url else None
    ws = Workspace(loaded, client, store, shared=shared)
    if embedded and (serve if serve is not None else _interactive()):
        ws.serve()
    return ws


def _interactive() -> bool:
    return "ipykernel" in sys.modules or hasattr(sys, "ps1") or bool(sys.flags.interactive)


def _published_soon(root: Path, seconds: float = 5.0) -> Owner | None:
    """The owner's address: a process that just opened the store publishes it a moment later."""
    deadline = time.monotonic() + seconds
    while True:
        owner = read_owner(root)
        if owner is not None or time.monotonic() > deadline:
            return owner
        time.sleep(0.1)
