"""Freshness under steady load: from the collect API's 200 to the first query that counts the event, rta vs ClickHouse-native.

    python bench/freshness.py [--rates 1000,10000,50000,100000] [--seconds 20] [--senders 2] [--plot freshness.png]
    python bench/freshness.py --quick        # one 1K events/s step of 4 s per system (the smoke test)

Each system gets the same load, one after the other (each with the machine to itself), at steady
rates: the given steps, then x1.5 per step until it saturates (stores under 90% of the asked rate,
the senders cannot place the load, or a probe is lost), ``--seconds`` per step:

- load:  ``--senders`` processes (``--threads`` connections each, every one waiting for its answer
         before its next request, as an SDK does) post 500-event Segment batches
         (``/v1/batch``, the layout of bench/ingest.py with a page load time, fresh message ids and
         the current timestamp in every request) on a fixed schedule over loopback; they share the
         two cores with the system under test, and what they place is measured, not assumed;
- probe: every 0.2 s one marked event (a purchase whose campaign is unique) in its own request,
         until a few seconds before the load stops (a quarter of the step, at most 5 s: every probe
         is followed by steady traffic); a poller asks the metric query for every acknowledged
         probe not yet counted, back to back (``--poll`` apart): freshness is the time from the
         probe's 200 to the answer of the first query that counts it; a probe not counted within
         ``--timeout`` is lost.

The systems:

- rta:        `rta run` on a fresh project with the shop example's metrics (metrics/shop.py), on
              embedded chdb: the collect API (fsync before every answer) -> log -> Bytewax flow
              -> rollups; probes are read with ``POST /v1/query`` (purchases by campaign, where
              campaign in the probes, grain total, last hour) with the run's read key, as a
              dashboard reads (the API's result cache included);
- rta-sql:    the same, its probes read through ``POST /v1/sql`` with the peers' statement on the
              traffic rollup's minute table (no cache: how fresh rta's store is; a diagnostic);
- clickhouse: the ClickHouse-native path: a small HTTP receiver (raw ASGI on uvicorn, msgspec JSON)
              flattens each Segment batch to one JSONEachRow row per event (the stream's declared
              fields) and inserts it into a raw MergeTree table (rta's raw events DDL) whose
              materialized view builds one minute AggregatingMergeTree (the traffic rollup's
              table: purchases and the rest by country, device, campaign), answering 200 once the
              rows are in the store (``async_insert=1, wait_for_async_insert=1``); probes are read
              with the same question in SQL on that table;
- clickhouse-shop: the same receiver, its views building all 14 rollup tables of the shop
              (minute, hour and day, with their projections) as rta keeps them: the same work,
              as bench/flow.py's ClickHouse-native peer.

No ClickHouse server binary here: each peer runs chdb in its own process and data folder, and chdb
has no async insert queue (``async_insert=1`` is accepted and ignored: one part per INSERT), so the
receiver does what the queue does with ClickHouse's defaults: the rows of the requests that arrive
within an adaptive 50-200 ms busy timeout (or 10 MB) go in one INSERT, then each of those requests
is answered. The peers do not fsync (ClickHouse's default); rta fsyncs its log before each 200.
Since a peer answers only once the rows are stored, its freshness after the 200 is little more
than one poll; the wait is in its ack instead, so the table gives both (and the probes' send ->
counted p99).

Per step: asked rate, what the senders placed (accepted events/s), what reached the store (raw
events counted at the step's start and end), the probes' ack latency and freshness p50/p95/p99/max
(a lost probe counts as infinitely late), probes lost, the server's CPU. Then the rates where p99
crosses 2 s and 60 s, the goal (p50 <= 1 s, p99 <= 2 s up to 100K events/s on 2 cores), and a
PNG of p50/p99 against the stored rate for every system.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHOP = ROOT / "metrics" / "shop.py"
RTA = [sys.executable, "-m", "rta.cli"]
BATCH = 500
PEER_KEY = "bench-peer"
PEERS = {"clickhouse": "minute", "clickhouse-shop": "shop"}  # the native peers and what their views build
RQID, STAMP = b"@RQID@", b"@TS@"  # markers in the batch template, replaced per request


# --- the load: Segment batches on a schedule ---------------------------------------------------


def _template(events: int) -> bytes:
    """A batch as bench/ingest.py sends it (and a page load time), with markers for the request id and the time."""
    countries, devices = ["US", "FR", "DE", "BR", "IN"], ["mobile", "desktop", "tablet"]
    batch = []
    for i in range(events):
        purchase = i % 10 == 0
        props: dict[str, object] = {"country": countries[i % 5], "device": devices[i % 3], "campaign": "spring", "path": "/p"}
        props |= {"revenue": 12.5} if purchase else {"load_ms": 120.0 + i % 900}
        batch.append({
            "type": "track", "event": "purchase" if purchase else "page_view", "userId": f"user-{i}",
            "messageId": f"{RQID.decode()}-{i}", "timestamp": STAMP.decode(), "properties": props,
            "context": {"library": {"name": "bench"}},
        })  # fmt: skip
    return json.dumps({"batch": batch}).encode()


def _now_text() -> bytes:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


def send_main(args: argparse.Namespace) -> None:
    """A sender process: ``--rate`` events/s in ``--batch``-event requests from ``--threads``
    connections, one request every batch/rate seconds from ``--start-at`` (wall clock) for
    ``--seconds``; prints what it placed as JSON."""
    import resource

    host, port = args.send.split(":")
    pieces = _template(args.batch).split(RQID)
    heads = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    interval = args.batch / args.rate
    start = args.start_at + args.offset * interval
    end = args.start_at + args.seconds
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "requests": 0, "errors": 0}
    latencies: list[float] = []

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            at = start + i * interval
            if at >= end or time.time() >= end:  # a request the schedule could not place in the step is not sent
                break
            if (delay := at - time.time()) > 0:
                time.sleep(delay)
            rqid = f"s{args.sender_id}-{args.run_id}-{i}".encode()
            body = rqid.join(pieces).replace(STAMP, _now_text())
            sent = time.perf_counter()
            ok, accepted = False, 0
            for attempt in range(2):  # a kept connection the server closed while idle fails before it is read: once more
                reused = conn is not None
                try:
                    conn = conn or http.client.HTTPConnection(host, int(port), timeout=60)
                    conn.request("POST", "/v1/batch", body, heads)
                    response = conn.getresponse()
                    answer = response.read()
                    ok, accepted = response.status == 200, json.loads(answer).get("accepted", 0) if response.status == 200 else 0
                    break
                except (OSError, http.client.HTTPException, ValueError) as err:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if not (
                        reused and attempt == 0 and isinstance(err, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
                    ):
                        break
            with lock:
                state["requests"] += 1
                state["accepted"] += accepted
                state["errors"] += 0 if ok else 1
                latencies.append(time.perf_counter() - sent)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0  # noqa: E731
    print(json.dumps({**state, "cpu": usage.ru_utime + usage.ru_stime, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}))


# --- the ClickHouse-native peer: a receiver in front of chdb ------------------------------------


class AsyncInserts:
    """ClickHouse's asynchronous insert queue with its defaults, kept by the receiver (chdb has none):
    the rows of the requests that arrive within the busy timeout are inserted together, and each
    request is answered when that INSERT is done (``wait_for_async_insert=1``). The timeout adapts
    between 50 and 200 ms by ClickHouse's rule (AsynchronousInsertQueue::getBusyWaitTimeoutMs): an
    insert within 50 ms of the one before raises it by 20%; one after a pause longer than the
    lowered timeout, when the last two flushes were that far apart too, lowers it; a buffer is
    flushed at once at 10 MB (``async_insert_max_data_size``)."""

    def __init__(self, flush: Callable[[bytes], None], threads: int = 2) -> None:
        import asyncio

        self.flush = flush
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="peer-insert")
        self.loop = asyncio.get_running_loop()
        self.rows: list[bytes] = []
        self.waiters: list[Any] = []
        self.size = 0
        self.timer: Any = None
        self.timeout = 0.05
        self.last_insert = 0.0
        self.flushes = (0.0, 0.0)  # the last two flushes

    def _adapt(self, now: float) -> None:
        lower = min(self.timeout / 1.2, self.timeout - 0.001)
        if self.last_insert + 0.05 > now:
            self.timeout = min(0.2, max(self.timeout * 1.2, self.timeout + 0.001))
        elif self.last_insert + lower < now and self.flushes[0] + lower < self.flushes[1]:
            self.timeout = max(0.05, lower)
        self.last_insert = now

    async def insert(self, rows: bytes) -> None:
        future = self.loop.create_future()
        self._adapt(time.monotonic())
        if self.timer is None:  # the first rows of a new buffer wait for the timeout as it is now
            self.timer = self.loop.call_later(self.timeout, self._flush)
        self.rows.append(rows)
        self.waiters.append(future)
        self.size += len(rows)
        if self.size >= 10 * 1024 * 1024:
            self._flush()
        await future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        rows, waiters = self.rows, self.waiters
        self.rows, self.waiters, self.size, self.timer = [], [], 0, None
        self.flushes = (self.flushes[1], time.monotonic())
        done = self.loop.run_in_executor(self.pool, self.flush, b"".join(rows))

        def answer(finished: Any) -> None:
            error = finished.exception()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error) if error else waiter.set_result(None)

        done.add_done_callback(answer)


def _peer_schema(client: Any, rollups: str) -> tuple[str, str, str]:
    """The raw table (rta's raw events DDL: the same columns) and materialized views into the rollup
    tables, as bench/flow.py's ClickHouse-native peer builds them; returns the raw table, the
    traffic rollup's minute table and its purchases column."""
    from flow import _native_aggregate, _plan  # bench/flow.py: the same views over the same tables

    from rta.compiler.ddl import GrainTable, grain_table, raw_table
    from rta.compiler.sql_filter import show_filter

    plan = _plan(True)
    stream = plan.streams[0]
    client.command(raw_table(stream).sql(dialect="clickhouse"))
    start_of = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}
    for rollup in plan.rollups:
        for table in rollup.tables:
            if rollups == "minute" and (rollup.name != "traffic" or table.grain != "1m"):
                continue
            client.command(
                grain_table(rollup, GrainTable(table.grain, table.table, table.view, table.ttl_seconds)).sql(dialect="clickhouse")
            )
            cols = []
            for p in rollup.parts:
                cond = show_filter(p.where) if p.where is not None else "1"
                cols.append(f"{_native_aggregate(p.flow_op, p.field, cond, p.kind.params)} AS {p.column}")
            client.command(
                f"CREATE MATERIALIZED VIEW native_{table.table} TO {table.table} AS "
                f"SELECT {start_of[table.grain]}({stream.time}) AS bucket, {', '.join((*rollup.dims, *cols))} "
                f"FROM {stream.raw_table} GROUP BY {', '.join(('bucket', *rollup.dims))}"
            )
    return _probe_target(plan)


def _probe_target(plan: Any) -> tuple[str, str, str]:
    traffic = next(r for r in plan.rollups if r.name == "traffic")
    column = next(p.column for p in traffic.parts if p.column.startswith("purchases__"))
    return str(plan.streams[0].raw_table), traffic.table("1m").table, column


def peer_main(args: argparse.Namespace) -> None:
    """The ClickHouse-native receiver: ``POST /v1/batch`` (Segment batches), ``POST /sql``, ``GET /health``."""
    import msgspec  # rta's own JSON library: installed wherever rta is
    import uvicorn

    from rta.store.client import connect, sibling

    client = connect("chdb://" + str(args.data))
    raw, _, _ = _peer_schema(client, args.peer_rollups)
    writers = [sibling(client) or client for _ in range(2)]
    free = list(writers)
    free_lock = threading.Lock()
    settings = {  # rows leave the EPHEMERAL property texts out: the maps take their type's default
        "input_format_skip_unknown_fields": 1,
        "date_time_input_format": "best_effort",
        "input_format_defaults_for_omitted_fields": 0,
        "async_insert": 1,  # what a ClickHouse server would be asked for; chdb ignores it (AsyncInserts does the queueing)
        "wait_for_async_insert": 1,
    }
    fields = ("country", "device", "campaign", "path", "revenue", "load_ms")

    def flush(rows: bytes) -> None:
        with free_lock:
            writer = free.pop()
        try:
            writer.raw_insert(raw, insert_block=rows, fmt="JSONEachRow", settings=settings)
        finally:
            with free_lock:
                free.append(writer)

    def flatten(body: bytes) -> tuple[bytes, int]:
        """One JSONEachRow line per message: the declared fields, as a native user maps them."""
        now = datetime.now(UTC).isoformat()
        lines = []
        for m in msgspec.json.decode(body)["batch"]:
            props = m.get("properties") or {}
            row = {
                "timestamp": m.get("timestamp") or now,
                "insert_id": m.get("messageId") or "",
                "user_id": m.get("userId") or m.get("anonymousId") or "",
                "event": m.get("event") or "",
            }
            row.update((f, props[f]) for f in fields if f in props)
            lines.append(msgspec.json.encode(row))
        return b"\n".join(lines) + b"\n", len(lines)

    queue: list[AsyncInserts] = []
    querying = ThreadPoolExecutor(max_workers=4, thread_name_prefix="peer-query")

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, status, answer = b"".join(chunks), 200, b"{}"
        headers = dict(scope["headers"])
        try:
            if scope["path"] == "/v1/batch":
                if headers.get(b"authorization") != f"Bearer {PEER_KEY}".encode():
                    raise PermissionError
                if not queue:
                    queue.append(AsyncInserts(flush))
                rows, n = flatten(body)
                await queue[0].insert(rows)
                answer = msgspec.json.encode({"success": True, "accepted": n})
            elif scope["path"] == "/sql":
                import asyncio

                result = await asyncio.get_running_loop().run_in_executor(querying, lambda: client.query(body.decode()).result_rows)
                answer = msgspec.json.encode({"rows": result})
            elif scope["path"] != "/health":
                status = 404
        except PermissionError:
            status, answer = 401, b'{"error": "bad key"}'
        except Exception as err:  # noqa: BLE001 (the bench reports it)
            status, answer = 500, msgspec.json.encode({"error": str(err)})
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")


# --- the systems under test, as the parent sees them ----------------------------------------------


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Http:
    """One keep-alive connection per thread to a loopback server; reconnects after an error."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, {"Content-Type": "application/json", **headers}
        self.local = threading.local()

    def post(self, path: str, body: bytes, timeout: float = 60) -> tuple[int, Any]:
        for _ in range(2):  # a kept connection the server closed while idle (uvicorn: after 5 s) fails once
            conn = getattr(self.local, "conn", None)
            try:
                if conn is None:
                    conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                conn.request("POST", path, body, self.headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else {}
            except (OSError, http.client.HTTPException, ValueError):
                if conn is not None:
                    conn.close()
                self.local.conn = None
        return 0, {}


@dataclass
class System:
    name: str
    label: str  # what it is, for the table
    process: subprocess.Popen[bytes]
    port: int  # the collect endpoint's
    write_key: str
    ask: Callable[[list[str]], set[str] | None]  # probes counted (None: the query failed)
    stored: Callable[[], int | None]
    stop_note: str = ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu(self) -> float:
        """CPU seconds the server process has used (every thread)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_health(port: int, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")


def start_rta(work: Path, name: str) -> System:
    """`rta run` on a fresh project with the shop metrics on embedded chdb, like bench/ingest.py starts it."""
    from rta.compiler import compile
    from rta.project import load_definitions
    from rta.workspace.owner import read_owner

    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    project = work / name
    (project / "metrics").mkdir(parents=True)
    (project / "metrics" / "shop.py").write_text(SHOP.read_text())
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\nrate_per_key = 100000000\n')
    created = subprocess.run([*RTA, "keys", "create", "write", "-p", str(project)], capture_output=True, text=True, check=True, env=env)
    port = _port()
    log = work / f"{name}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [*RTA, "run", "-p", str(project), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=handle, env=env
        )
    _wait_health(port, "/v1/health", process, log)
    deadline = time.monotonic() + 60
    while (owner := read_owner(project)) is None:  # the run's read key
        if time.monotonic() > deadline:
            raise SystemExit("rta run did not publish .rta/run.json")
        time.sleep(0.1)
    api = Http(port, {"Authorization": f"Bearer {owner.key}"})
    _, minute, column = _probe_target(compile(load_definitions((SHOP,))))

    def ask(probes: list[str]) -> set[str] | None:
        if name == "rta-sql":
            status, answer = api.post("/v1/sql", json.dumps({"sql": _probe_sql(minute, column, probes)}).encode())
            return {row["campaign"] for row in answer.get("data", [])} if status == 200 else None
        query = {"metrics": ["purchases"], "by": ["campaign"], "where": {"field": "campaign", "in": probes}}
        query |= {"last": "1h", "grain": "total", "fill_gaps": False}
        status, answer = api.post("/v1/query", json.dumps(query).encode())
        return {row["campaign"] for row in answer.get("data", []) if row.get("purchases")} if status == 200 else None

    def stored() -> int | None:
        status, answer = api.post("/v1/sql", b'{"sql": "SELECT count() FROM events"}')
        return int(answer["data"][0]["count()"]) if status == 200 else None

    read = "POST /v1/query (dashboard path, result cache)" if name == "rta" else "POST /v1/sql on the traffic minute rollup (no cache)"
    label = f"`rta run`, shop metrics, embedded chdb; collect API fsyncs before 200; probes read by {read}"
    return System(name, label, process, port, created.stdout.strip(), ask, stored)


def _probe_sql(minute: str, column: str, probes: list[str]) -> str:
    """The probes counted in the traffic rollup's minute table, in the last hour."""
    names = ", ".join(f"'{p}'" for p in probes)
    return (
        f"SELECT campaign FROM {minute} WHERE bucket >= now() - INTERVAL 1 HOUR AND campaign IN ({names}) "
        f"GROUP BY campaign HAVING sum({column}) > 0"
    )


def start_peer(work: Path, name: str) -> System:
    from rta.compiler import compile
    from rta.project import load_definitions

    raw, minute, column = _probe_target(compile(load_definitions((SHOP,))))
    port = _port()
    log = work / f"{name}.log"
    rollups = PEERS[name]
    command = [sys.executable, __file__, "--peer-serve", "--data", str(work / f"{name}-data"), "--port", str(port)]
    with log.open("w") as handle:
        process = subprocess.Popen([*command, "--peer-rollups", rollups], stdout=handle, stderr=subprocess.STDOUT)
    _wait_health(port, "/health", process, log)
    api = Http(port, {})

    def ask(probes: list[str]) -> set[str] | None:
        status, answer = api.post("/sql", _probe_sql(minute, column, probes).encode())
        return {row[0] for row in answer.get("rows", [])} if status == 200 else None

    def stored() -> int | None:
        status, answer = api.post("/sql", f"SELECT count() FROM {raw}".encode())
        return int(answer["rows"][0][0]) if status == 200 else None

    views = "all 14 rollup tables of the shop, as rta keeps them" if rollups == "shop" else "one minute AggregatingMergeTree (traffic)"
    label = (
        f"receiver (uvicorn + msgspec) -> JSONEachRow -> raw MergeTree -> MVs into {views}; chdb in its own "
        "process (no server binary here), async insert emulated in the receiver (chdb ignores async_insert=1); no fsync; "
        "probes read by SQL on the traffic minute rollup"
    )
    return System(name, label, process, port, PEER_KEY, ask, stored)


# --- probes ---------------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    sent: float
    acked: float | None = None
    counted: float | None = None
    failed: bool = False


@dataclass
class Prober:
    """Sends a marked event every ``every`` seconds and polls until each is counted (or lost)."""

    system: System
    run_id: str
    every: float
    poll: float
    timeout: float
    probes: list[Probe] = field(default_factory=list)
    poll_seconds: list[float] = field(default_factory=list)
    poll_failures: int = 0
    sending: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.sending = True
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe")
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._poller = threading.Thread(target=self._poll_loop, daemon=True)
        self._sender.start()
        self._poller.start()

    def stop_sending(self) -> None:
        self.sending = False
        self._sender.join()
        self._pool.shutdown(wait=True)

    def finish(self) -> None:
        """Wait until every probe is counted or lost, then stop polling."""
        while any(
            p.counted is None and not p.failed and (p.acked is None or time.monotonic() - p.acked < self.timeout) for p in self.probes
        ):
            time.sleep(0.1)
        self._stop.set()
        self._poller.join()

    def _send_loop(self) -> None:
        n = 0
        next_at = time.monotonic()
        while self.sending:
            n += 1
            probe = Probe(f"probe-{self.run_id}-{n}", time.monotonic())
            with self._lock:
                self.probes.append(probe)
            self._pool.submit(self._send, probe)
            next_at += self.every
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _send(self, probe: Probe) -> None:
        message = {
            "type": "track", "event": "purchase", "userId": "probe", "messageId": probe.name,
            "timestamp": _now_text().decode(),
            "properties": {"campaign": probe.name, "country": "US", "device": "desktop", "path": "/probe", "revenue": 1.0},
        }  # fmt: skip
        body = json.dumps({"batch": [message]}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.system.write_key}"}
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.system.port, timeout=self.timeout)
            probe.sent = time.monotonic()
            conn.request("POST", "/v1/batch", body, headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                probe.acked = time.monotonic()
            else:
                probe.failed = True
        except (OSError, http.client.HTTPException):
            probe.failed = True

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                waiting = [p for p in self.probes if p.acked is not None and p.counted is None and now - p.acked < self.timeout]
            if not waiting:
                time.sleep(self.poll)
                continue
            asked = time.monotonic()
            counted = self.system.ask([p.name for p in waiting])
            answered = time.monotonic()
            self.poll_seconds.append(answered - asked)
            if counted is None:
                self.poll_failures += 1
            else:
                for p in waiting:
                    if p.name in counted:
                        p.counted = answered
            time.sleep(max(0.0, self.poll - (time.monotonic() - asked)))


# --- one step, and the ladder of steps ------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; ``inf`` entries (lost probes) sort last."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _counted(system: System) -> tuple[int | None, float]:
    """The store's event count and when it was read (the middle of the query)."""
    asked = time.monotonic()
    count = system.stored()
    return count, (asked + time.monotonic()) / 2


def run_step(system: System, rate: int, args: argparse.Namespace, step: int) -> dict[str, Any]:
    run_id = f"{system.name}{step}x{time.time_ns() % 10**9}"
    senders = max(1, min(args.senders, math.ceil(rate / 5000)))  # one process is plenty at the low steps
    start_at = time.time() + 1.5  # the senders import first, then start together
    command = [sys.executable, __file__, "--send", f"127.0.0.1:{system.port}", "--key", system.write_key, "--batch", str(args.batch)]
    command += ["--rate", str(rate / senders), "--seconds", str(args.seconds), "--start-at", str(start_at), "--threads", str(args.threads)]
    children = [
        subprocess.Popen([*command, "--sender-id", str(k), "--run-id", run_id, "--offset", str(k / senders)], stdout=subprocess.PIPE)
        for k in range(senders)
    ]
    prober = Prober(system, run_id, args.probe_every, args.poll, args.timeout)
    time.sleep(max(0.0, start_at - time.time()))
    before, cpu_before, t0 = system.stored(), system.cpu(), time.monotonic()
    prober.start()
    # The stored rate is the store's count over the step after its first seconds (the pipeline filling: a
    # system keeping up stores the asked rate from then on; one falling behind stores less and less).
    time.sleep(max(0.0, start_at + min(2.0, args.seconds / 4) - time.time()))
    first, at_first = _counted(system)
    # Probes stop a few seconds before the load does, so each is followed by steady traffic (at the end of
    # traffic, rta's /v1/query can keep a cached answer that missed the last write for up to its TTL).
    time.sleep(max(0.0, start_at + args.seconds - min(5.0, args.seconds / 4) - time.time()))
    prober.stop_sending()
    time.sleep(max(0.0, start_at + args.seconds - time.time()))
    last, at_last = _counted(system)
    cpu_after, t1 = system.cpu(), time.monotonic()
    results = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    prober.finish()
    accepted = sum(r["accepted"] for r in results)
    expected = (before or 0) + accepted + sum(1 for p in prober.probes if p.acked is not None)
    drain_started, stored_now = time.monotonic(), last
    while stored_now is None or stored_now < expected:  # what was accepted reaches the store before the next step
        if time.monotonic() - drain_started > args.timeout:
            break
        time.sleep(0.25)
        stored_now = system.stored()
    drained = stored_now is not None and stored_now >= expected
    late = [p.counted - p.acked if p.counted is not None else math.inf for p in prober.probes if p.acked is not None]
    acks = sorted(p.acked - p.sent for p in prober.probes if p.acked is not None)
    e2e = [p.counted - p.sent if p.counted is not None else math.inf for p in prober.probes if p.acked is not None]
    seconds = t1 - t0
    stored = (last - first) / (at_last - at_first) if last is not None and first is not None else math.nan
    return {
        "system": system.name, "asked": rate, "senders": senders,
        "sent": accepted / args.seconds, "errors": sum(r["errors"] for r in results),
        "stored": stored, "drained": drained, "drain_s": time.monotonic() - drain_started,
        "batch_p50_ms": statistics.median([r["p50_ms"] for r in results]), "batch_p99_ms": max(r["p99_ms"] for r in results),
        "ack_p50": _percentile(acks, 0.5), "ack_p99": _percentile(acks, 0.99),
        "p50": _percentile(late, 0.5), "p95": _percentile(late, 0.95), "p99": _percentile(late, 0.99), "max": _percentile(late, 1.0),
        "e2e_p50": _percentile(e2e, 0.5), "e2e_p99": _percentile(e2e, 0.99),
        "probes": len(late), "counted": sum(1 for v in late if v != math.inf), "lost": sum(1 for v in late if v == math.inf),
        "probe_errors": sum(1 for p in prober.probes if p.failed),
        "poll_ms": statistics.median(prober.poll_seconds) * 1000 if prober.poll_seconds else math.nan,
        "poll_failures": prober.poll_failures,
        "server_cores": (cpu_after - cpu_before) / seconds, "sender_cores": sum(r["cpu"] for r in results) / seconds,
    }  # fmt: skip


def _saturated(row: dict[str, Any]) -> bool:
    return row["stored"] < 0.9 * row["asked"] or row["sent"] < 0.9 * row["asked"] or row["lost"] > 0 or not row["drained"]


def run_ladder(system: System, args: argparse.Namespace) -> list[dict[str, Any]]:
    rates = list(args.rates)
    rows: list[dict[str, Any]] = []
    step = 0
    while step < len(rates):
        rate = rates[step]
        row = run_step(system, rate, args, step)
        rows.append(row)
        print(f"  {system.name} {rate:>9,} ev/s asked: stored {row['stored']:,.0f}/s, freshness p50 {_s(row['p50'])} "
              f"p99 {_s(row['p99'])}, lost {row['lost']}", file=sys.stderr, flush=True)  # fmt: skip
        if _saturated(row):
            if step < len(rates) - 1 or args.saturate:  # it stops here: the steps above would saturate too
                system.stop_note = f"saturated at {rate:,} ev/s asked: the ladder stops there"
            break
        if step == len(rates) - 1 and args.saturate and rate * args.growth <= args.max_rate:
            rates.append(int(round(rate * args.growth, -3)))
        step += 1
        time.sleep(args.settle)
    return rows


# --- the report -----------------------------------------------------------------------------------


def _s(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value == math.inf:
        return "lost"
    return f"{value:.2f}"


def _crossing(rows: list[dict[str, Any]], threshold: float, timeout: float) -> str:
    """The stored rate where p99 first exceeds ``threshold`` s, interpolated between the steps around it."""
    previous = None
    for row in rows:
        if row["p99"] > threshold:
            if previous is None:
                return f"already at the first step ({row['stored']:,.0f} ev/s stored)"
            x0, y0, x1, y1 = previous["stored"], previous["p99"], row["stored"], min(row["p99"], timeout * 2)
            at = x0 + (x1 - x0) * (threshold - y0) / (y1 - y0) if y1 > y0 else x1
            return f"~{at:,.0f} ev/s (between {previous['asked']:,} and {row['asked']:,} asked)"
        previous = row
    top = rows[-1]["stored"] if rows else 0
    return f"not reached (up to {top:,.0f} ev/s stored)"


def _machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?"
    )
    from importlib.metadata import version

    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, chdb-core {version('chdb-core')}, load {load}"


def report(rows: list[dict[str, Any]], systems: list[System], args: argparse.Namespace, machine: str) -> None:
    peer = {r["asked"]: r for r in rows if r["system"] == "clickhouse"}
    print(f"\nFreshness under steady load: {args.batch}-event Segment batches, {args.seconds:g} s per step, a probe every "
          f"{args.probe_every:g} s, polled every {args.poll:g} s; fresh = the probe's 200 -> the first query that counts it, "
          f"e2e = the probe sent -> counted; seconds, a probe not counted in {args.timeout:g} s is lost")  # fmt: skip
    print(f"machine: {machine}")
    for system in systems:
        print(f"  {system.name}: {system.label}" + (f" ({system.stop_note})" if system.stop_note else ""))
    header = f"{'system':<16}{'asked/s':>9}{'sent/s':>10}{'stored/s':>10}{'stored':>7}{'ack p50/p99 ms':>16}"
    header += f"{'fresh p50':>10}{'p95':>7}{'p99':>7}{'max':>7}{'e2e p99':>8}{'vs peer':>8}{'probes':>7}{'lost':>5}{'cores':>6}  notes"
    print(header)
    order = {s.name: i for i, s in enumerate(systems)}
    for r in sorted(rows, key=lambda r: (r["asked"], order[r["system"]])):
        other = peer.get(r["asked"])
        ratio = "-"
        if r["system"] != "clickhouse" and other is not None and 0 < other["e2e_p99"] < math.inf and r["e2e_p99"] < math.inf:
            ratio = f"{r['e2e_p99'] / other['e2e_p99']:.1f}x"
        ack = f"{r['ack_p50'] * 1000:,.0f}/{r['ack_p99'] * 1000:,.0f}"
        notes = [f"senders {r['senders']}x{args.threads} used {r['sender_cores']:.2f} cores", f"poll {r['poll_ms']:.0f} ms"]
        notes += [f"batches' ack p50/p99 {r['batch_p50_ms']:,.0f}/{r['batch_p99_ms']:,.0f} ms"]
        notes += [f"{r['errors']} failed batches"] if r["errors"] else []
        notes += [f"{r['probe_errors']} probes refused"] if r["probe_errors"] else []
        notes += [f"{r['poll_failures']} polls failed"] if r["poll_failures"] else []
        notes += [f"not drained {r['drain_s']:.0f} s after the step"] if not r["drained"] else []
        print(f"{r['system']:<16}{r['asked']:>9,}{r['sent']:>10,.0f}{r['stored']:>10,.0f}{r['stored'] / r['asked']:>6.2f}x{ack:>16}"
              f"{_s(r['p50']):>10}{_s(r['p95']):>7}{_s(r['p99']):>7}{_s(r['max']):>7}{_s(r['e2e_p99']):>8}{ratio:>8}"
              f"{r['probes']:>7}{r['lost']:>5}{r['server_cores']:>6.2f}  {', '.join(notes)}")  # fmt: skip
    print("(vs peer: e2e p99 over clickhouse's at the same asked rate; cores: the server process's CPU over the step)")
    for system in systems:
        mine = [r for r in rows if r["system"] == system.name]
        e2e = [{**r, "p99": r["e2e_p99"]} for r in mine]
        print(f"{system.name}: fresh p99 > 2 s from {_crossing(mine, 2.0, args.timeout)}, > {args.timeout:g} s from "
              f"{_crossing(mine, args.timeout, args.timeout)}; e2e p99 > 2 s from {_crossing(e2e, 2.0, args.timeout)}"
              + (f"; {system.stop_note}" if system.stop_note else ""))  # fmt: skip
    ours = {r["asked"]: r for r in rows if r["system"] == "rta"}
    if not ours:
        return
    goal_rates = [rate for rate in ours if rate <= 100_000]
    met = all(ours[rate]["p50"] <= 1 and ours[rate]["p99"] <= 2 and not _saturated(ours[rate]) for rate in goal_rates)
    top = ours.get(100_000)
    if top:
        at_top = f"at 100K asked: {top['stored']:,.0f} stored/s, fresh p50 {_s(top['p50'])} s, p99 {_s(top['p99'])} s"
    else:
        at_top = "100K events/s was not run" + (" (saturated before it)" if max(ours) < 100_000 and len(ours) < len(args.rates) else "")
    failed = [f"{rate:,}" for rate in goal_rates if not (ours[rate]["p50"] <= 1 and ours[rate]["p99"] <= 2 and not _saturated(ours[rate]))]
    missed = f" (missed at {', '.join(failed)} asked)" if failed else ""
    verdict = "met" if met and top else "not met"
    print(f"goal (p50 <= 1 s, p99 <= 2 s up to 100K events/s sustained on 2 cores): rta {verdict}{missed}; {at_top}")


def plot(rows: list[dict[str, Any]], path: Path, timeout: float) -> None:
    """p50 and p99 against the stored rate for every system, as a PNG (Altair + vl-convert): freshness
    from the 200 (the goal's measure) beside the time from sending (where the peers' wait is)."""
    import altair as alt
    import vl_convert

    def panel(keys: tuple[str, str], title: str) -> alt.LayerChart:
        points = [
            {
                "system": r["system"],
                "percentile": q,
                "asked": r["asked"],
                "stored events/s": max(r["stored"], 1.0),
                "seconds": max(min(r[k], timeout), 0.001),
            }  # fmt: skip
            for r in rows
            for q, k in zip(("p50", "p99"), keys, strict=True)
            if not math.isnan(r[k]) and not math.isnan(r["stored"])
        ]
        lines = (
            alt.Chart(alt.Data(values=points))
            .mark_line(point=True)
            .encode(
                x=alt.X("stored events/s:Q", scale=alt.Scale(type="log"), title="events stored per second"),
                y=alt.Y("seconds:Q", scale=alt.Scale(type="log"), title=f"seconds (a lost probe is drawn at {timeout:g})"),
                color=alt.Color("system:N"),
                strokeDash=alt.StrokeDash("percentile:N"),
                order=alt.Order("asked:Q"),  # the ladder's order: a saturated step stores less than the one before
            )
        )
        goal = alt.Chart(alt.Data(values=[{"y": 1.0}, {"y": 2.0}])).mark_rule(color="gray", strokeDash=[2, 2]).encode(y="y:Q")
        return (lines + goal).properties(width=420, height=320, title=title)

    chart = alt.hconcat(
        panel(("p50", "p99"), "freshness: the probe's 200 -> counted (goal lines 1 s, 2 s)"),
        panel(("e2e_p50", "e2e_p99"), "end to end: the probe sent -> counted"),
    )
    path.write_bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1000,10000,50000,100000", help="events/s per step, comma-separated")
    parser.add_argument("--saturate", type=int, default=1, help="after the last rate, x--growth per step until saturated (0: no)")
    parser.add_argument("--growth", type=float, default=1.5)
    parser.add_argument("--max-rate", type=int, default=2_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per step")
    parser.add_argument("--senders", type=int, default=2, help="sender processes (fewer at low rates)")
    parser.add_argument(
        "--threads", type=int, default=64, help="connections per sender process (each waits for its answer, as an SDK does)"
    )
    parser.add_argument("--batch", type=int, default=BATCH, help="events per request")
    parser.add_argument("--probe-every", type=float, default=0.2)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between polls (from the start of one to the next)")
    parser.add_argument("--timeout", type=float, default=60.0, help="a probe not counted this long after its 200 is lost")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between steps")
    parser.add_argument(
        "--systems",
        default="rta,clickhouse,clickhouse-shop",
        help="of rta, rta-sql (probes read by SQL on the rollup: no cache), clickhouse (raw + one minute rollup), "
        "clickhouse-shop (raw + the shop's 14 rollup tables)",
    )
    parser.add_argument("--peer-rollups", choices=("shop", "minute"), default="minute", help=argparse.SUPPRESS)
    parser.add_argument("--plot", type=Path, default=Path("freshness.png"), help="the PNG to write")
    parser.add_argument("--quick", action="store_true", help="one 1K events/s step of 4 s per system (a smoke test)")
    for hidden in ("--send", "--key", "--data"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--peer-serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    for hidden in ("--rate", "--start-at", "--offset"):
        parser.add_argument(hidden, type=float, help=argparse.SUPPRESS)
    parser.add_argument("--sender-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        send_main(args)
        return
    if args.peer_serve:
        sys.path.insert(0, str(ROOT / "bench"))
        peer_main(args)
        return
    if args.quick:
        args.rates, args.seconds, args.saturate = "1000", 4.0, 0
    args.rates = [int(float(r)) for r in args.rates.split(",")]
    machine = _machine()
    rows: list[dict[str, Any]] = []
    systems: list[System] = []
    with tempfile.TemporaryDirectory(prefix="rta-bench-freshness-") as tmp:
        work = Path(tmp)
        for name in args.systems.split(","):
            print(f"{name}: starting", file=sys.stderr, flush=True)
            if name not in ("rta", "rta-sql", *PEERS):
                raise SystemExit(f"unknown system {name!r}; the systems are rta, rta-sql, {', '.join(PEERS)}")
            system = start_rta(work, name) if name.startswith("rta") else start_peer(work, name)
            systems.append(system)
            try:
                rows += run_ladder(system, args)
            finally:
                system.stop()
            with contextlib.suppress(OSError):  # the next system starts on a quiet disk
                shutil.rmtree(work / (name if name.startswith("rta") else f"{name}-data"))
            os.sync()
            time.sleep(args.settle)
    machine += f" (load {'/'.join(f'{x:.2f}' for x in os.getloadavg())} at the end)"
    report(rows, systems, args, machine)
    plot(rows, args.plot, args.timeout)
    print(f"plot: {args.plot.resolve()}")


if __name__ == "__main__":
    main()
