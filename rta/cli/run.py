"""The `rta` command: init, compile, load, run, query."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from rta.errors import RtaError

if TYPE_CHECKING:  # the CLI imports its layers lazily: `rta --help` stays fast
    from collections.abc import Callable

    import polars as pl
    from bytewax.inputs import Source
    from clickhouse_connect.driver.client import Client

    from rta.alerts.engine import AlertEngine
    from rta.alerts.notify import Message
    from rta.alerts.ssrf import AllowList
    from rta.contract.keys import KeyStore
    from rta.dash.scheduled import ReportScheduler
    from rta.dsl.channels import Channel
    from rta.flows.sources import SourceBatch
    from rta.flows.stats import FlowStats
    from rta.ingest.collect import CollectApi
    from rta.project import Project
    from rta.sdk import Client as Sender
    from rta.workspace import Workspace

app = typer.Typer(help="rta: real-time analytics with metrics as code.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="API keys: read keys query, write keys only ingest.", no_args_is_help=True)
serve_app = typer.Typer(help="Serve one face of rta on its own.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
alerts_app = typer.Typer(help="Alert rules: list, test, history, silence, backtest.", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(alerts_app, name="alerts")
reports_app = typer.Typer(help="Scheduled reports: list, send now.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project folder (holds rta.toml and metrics/).")]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _fail(err: Exception) -> NoReturn:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


def _project(root: Path) -> Project:
    from rta.project import load_project

    return load_project(root)


def _store(project: Project) -> Client:
    from rta.store.client import connect
    from rta.store.schema import apply

    client = connect(project.dsn)
    apply(project.plan, client)
    return client


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")]) -> None:
    """Create a project folder with rta.toml and an example metrics file."""
    config = directory / "rta.toml"
    if config.exists():
        _fail(RtaError(f"{config} already exists; pick another folder or edit it"))
    (directory / "metrics").mkdir(parents=True, exist_ok=True)
    example = resources.files("rta.examples").joinpath("shop.py").read_text()
    (directory / "metrics" / "shop.py").write_text(example)
    config.write_text('[store]\ndsn = "chdb://data"   # or http://host:8123; RTA_CLICKHOUSE_DSN overrides\n')
    typer.echo(f"created {config} and {directory / 'metrics' / 'shop.py'}\nnext: cd {directory} && rta run --demo")


@app.command("compile")
def compile_(project: ProjectOpt = Path(".")) -> None:
    """Print the compiled plan: ClickHouse DDL and the dataflow steps."""
    try:
        typer.echo(str(_project(project).plan), nl=False)
    except RtaError as err:
        _fail(err)


def _stream_name(project: Project, stream: str | None) -> str:
    names = [s.name for s in project.plan.streams]
    if stream is None:
        if len(names) != 1:
            raise RtaError(f"the project has streams {names}; choose one with --stream")
        return names[0]
    project.definitions.stream(stream)
    return stream


def _reporter() -> Callable[[FlowStats], None]:
    from rta.flows.runner import progress_line

    previous: dict[str, float] = {}
    tty = sys.stderr.isatty()

    def report(stats: FlowStats) -> None:
        line = progress_line(stats, previous)
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    return report


@app.command()
def load(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines (.jsonl, .ndjson) or Parquet files.")],
    project: ProjectOpt = Path("."),
    stream: Annotated[str | None, typer.Option(help="Stream the events belong to.")] = None,
) -> None:
    """Replay event files through the flow into the store; events whose insert id was loaded before add nothing.

    So loading a file twice, the same events in another order, or split into other files, counts
    each event once (events without an insert id count each time their file's content is new).
    """
    from datetime import UTC, datetime

    from rta.flows.runner import run_flow, summary
    from rta.flows.sources import FileSource, LoadedIds
    from rta.flows.stats import FlowStats

    try:
        proj = _project(project)
        plan_stream = proj.plan.stream(_stream_name(proj, stream))
        sources = [FileSource(files, plan_stream)]  # checks every file before the store opens
        client = _store(proj)
        now = datetime.now(UTC)  # the whole load is judged (late, ahead) at one time, as its repeats are
        loaded = LoadedIds.read(client, plan_stream, now) if plan_stream.insert_id else None
        if loaded is not None:  # a flow per file: what a file keeps then depends on the record and the file only
            sources = [FileSource([f], plan_stream, loaded=loaded) for f in files]
        stats, report = FlowStats(), _reporter()
        for source in sources:
            run_flow(proj.plan, source, client, stats=stats, report=report, clock=lambda: now)
            if loaded is not None:
                loaded.commit(client)  # after every insert of the file landed
    except RtaError as err:
        _fail(err)
    repeats = f"\nskipped {loaded.repeats:,} events whose insert id was already loaded" if loaded and loaded.repeats else ""
    typer.echo("\n" + summary(stats) + repeats, err=True)


def _flow_sources(
    proj: Project,
    stop: threading.Event,
    *,
    demo: bool,
    watch: Path | None,
    rate: int | None,
    history: str | None,
    history_events: int,
    paused: threading.Event,
) -> list[Source[SourceBatch]]:
    """The flow's inputs: the events received (local log or Kafka), then the demo and a watched folder if asked.

    Every process of a cluster builds the same list (the same dataflow); the demo and the
    folder then only produce on the first worker.
    """
    from rta.dsl.durations import parse_duration
    from rta.flows.demo import DemoSource, live_rate
    from rta.flows.inbox import InboxSource
    from rta.flows.log_source import LogSource
    from rta.ingest.service import IngestSettings, log_folder

    stream = _stream_name(proj, None)
    ingest = IngestSettings.of(proj)
    received: Source[SourceBatch]
    if ingest.kafka:
        from rta.flows.kafka_source import KafkaSource
        from rta.ingest.kafka import ensure_topic, topic_for

        ensure_topic(ingest.kafka, topic_for(stream), ingest.partitions)
        received = KafkaSource(ingest.kafka, topic_for(stream), stream, ingest.partitions, stop=stop)
    else:
        retention = ingest.retention_hours * 3600
        received = LogSource(log_folder(proj, stream), stream, ingest.partitions, retention=retention, stop=stop)
    sources: list[Source[SourceBatch]] = [received]
    if watch is not None:
        sources.append(InboxSource(watch, proj.plan.stream(stream), stop=stop))
    if demo:
        seconds = parse_duration(history, what="--history") if history else 0
        live = live_rate(rate, seconds, history_events)
        if seconds:
            typer.echo(f"rta: demo backfills {history_events:,} events over {history}, then streams {live:,} events/s", err=True)
        sources.append(DemoSource(stream, rate=live, history_seconds=seconds, history_events=history_events, stop=stop, paused=paused))
    return sources


@app.command()
def run(
    project: ProjectOpt = Path("."),
    demo: Annotated[bool, typer.Option(help="Also generate realistic shop traffic.")] = False,
    watch: Annotated[Path | None, typer.Option(help="Also ingest *.jsonl files as they land in this folder.")] = None,
    port: Annotated[int, typer.Option(help="Port of the collect and query APIs (0: none, and no collect API).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    rate: Annotated[
        int | None, typer.Option(help="Demo events per second (default: the history's own rate with --history, else 20,000).")
    ] = None,
    history: Annotated[str | None, typer.Option(help="Backfill demo history first, e.g. 7d.")] = None,
    history_events: Annotated[int, typer.Option(help="Events in the backfilled history.")] = 1_000_000,
    demo_for: Annotated[float | None, typer.Option(help="Stop the demo traffic after this many seconds; keep running.")] = None,
    alerts: Annotated[bool, typer.Option(help="Evaluate the project's alert rules.")] = True,
    processes: Annotated[int, typer.Option(help="Run the flow as a Bytewax cluster of this many processes.")] = 1,
    collect: Annotated[bool, typer.Option(help="Serve the collect API (off when `rta serve ingest` receives events).")] = True,
) -> None:
    """Receive events (collect API -> durable log -> flow -> store), serve queries, evaluate alerts, until Ctrl-C."""
    import subprocess

    from rta.flows.runner import run_flow, summary
    from rta.ingest.service import collect_app
    from rta.workspace import Workspace

    stop, paused = threading.Event(), threading.Event()
    try:
        if processes < 1:
            raise RtaError(f"--processes takes 1 or more, got {processes}")
        proj = _project(project)
        client = _store(proj)
        # One client per role: the flow's writer, the APIs, the alert engine.
        ws = Workspace(proj, _store(proj), proj.dsn)
        engine = _alert_engine(Workspace(proj, _store(proj), proj.dsn)) if alerts and proj.definitions.alerts else None
        scheduler = _report_scheduler(proj, Workspace(proj, _store(proj), proj.dsn)) if proj.definitions.reports else None
        options = {"demo": demo, "watch": watch, "rate": rate, "history": history, "history_events": history_events}
        sources = _flow_sources(proj, stop, paused=paused, **options)  # type: ignore[arg-type]
        receiver = collect_app(proj, _stream_name(proj, None)) if port and collect else None
    except RtaError as err:
        _fail(err)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for seconds_, event in ((duration, stop), (demo_for, paused)):
        if seconds_ is not None:
            timer = threading.Timer(seconds_, event.set)
            timer.daemon = True  # a flow that ends first must not wait for it
            timer.start()
    recovery = proj.root / ".rta" / "recovery"
    cluster, workers = None, []
    if processes > 1:  # process 0 (this one) owns the store; the others only run their share of the flow
        addresses = [f"127.0.0.1:{_free_port()}" for _ in range(processes)]
        cluster = (addresses, 0)
        _init_recovery(recovery)
        for index in range(1, processes):
            command = [sys.executable, "-m", "rta.cli", "flow-worker", "-p", str(proj.root), "--addresses", ",".join(addresses),
                       "--proc-id", str(index), "--parent", str(os.getpid())]  # fmt: skip
            command += ["--demo"] if demo else []
            command += ["--watch", str(watch)] if watch is not None else []
            workers.append(subprocess.Popen(command))
    extras = [*(["demo traffic"] if demo else []), *([f"files landing in {watch}"] if watch is not None else [])]
    what = "events" + (f" (and {', '.join(extras)})" if extras else "")
    typer.echo(f"rta: flowing {what} into {proj.dsn} (Ctrl-C stops)" + (f" with {processes} processes" if processes > 1 else ""), err=True)
    if engine is not None:
        typer.echo(f"rta: evaluating {len(engine.rules)} alert rule(s)", err=True)
    if scheduler is not None:
        typer.echo(f"rta: {len(scheduler.schedules)} scheduled report(s) into {scheduler.folder}", err=True)
    try:
        with _serve(proj, ws, host, port, receiver[0] if receiver else None), _alert_loop(engine), _report_loop(scheduler):
            if workers:  # the cluster ends when every process's inputs end

                def stop_workers() -> None:
                    stop.wait()
                    for worker in workers:
                        worker.terminate()

                threading.Thread(target=stop_workers, daemon=True).start()
            stats = run_flow(proj.plan, sources, client, report=_reporter(), recovery=recovery, cluster=cluster)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        if receiver is not None:
            receiver[1].close()
    typer.echo("\n" + summary(stats), err=True)


@app.command("flow-worker", hidden=True)
def flow_worker(
    project: ProjectOpt = Path("."),
    addresses: Annotated[str, typer.Option(help="Every process's host:port, comma separated.")] = "",
    proc_id: Annotated[int, typer.Option(help="This process's index.")] = 1,
    parent: Annotated[int, typer.Option(help="Stop when this process is gone.")] = 0,
    demo: Annotated[bool, typer.Option()] = False,
    watch: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """One more process of `rta run --processes N`: its share of the flow, no store, no APIs."""
    from rta.flows.runner import run_flow, summary

    stop, paused = threading.Event(), threading.Event()
    proj = _project(project)
    options = {"demo": demo, "watch": watch, "rate": 0, "history": None, "history_events": 0}
    sources = _flow_sources(proj, stop, paused=paused, **options)  # type: ignore[arg-type]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_parent() -> None:  # killed parent, orphaned worker: stop too
        while not stop.wait(1.0):
            try:
                os.kill(parent, 0)
            except OSError:
                stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    stats = run_flow(proj.plan, sources, None, recovery=proj.root / ".rta" / "recovery", cluster=(addresses.split(","), proc_id))
    typer.echo(f"\nrta flow worker {proc_id}: " + summary(stats).replace("\n", "; "), err=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _init_recovery(folder: Path) -> None:
    from bytewax.recovery import init_db_dir

    if not folder.is_dir():
        folder.mkdir(parents=True)
        init_db_dir(folder, 1)


@app.command()
def send(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines files: Segment messages, or flat events as `rta load` reads them.")],
    key: Annotated[str, typer.Option("--key", envvar="RTA_WRITE_KEY", help="A write key (or $RTA_WRITE_KEY).")],
    host: Annotated[str, typer.Option(help="The collect API.")] = "http://127.0.0.1:8765",
    max_wait: Annotated[str, typer.Option(help="How long to wait for a collect API that stopped answering, e.g. 90s, 10m.")] = "10m",
) -> None:
    """Send events to a running collect API with the Python SDK (batched, gzipped, retried).

    Lines without an id get one derived from the file's content and the line's number, so sending
    a file again (or a copy of it) counts each event once. While the API does not answer, what
    is in flight is spilled to disk and reading waits, up to --max-wait. Exit status: 0 when every
    event was acknowledged; 1 when some were refused or were not JSON; 75 when some were not
    acknowledged (send the same files again).
    """
    import json
    import tempfile

    from rta.dsl.durations import parse_duration
    from rta.sdk import Client, file_digest, message_from

    try:
        patience = parse_duration(max_wait, what="--max-wait")
    except RtaError as err:
        _fail(err)
    for path in files:
        if not path.is_file():
            _fail(RtaError(f"cannot send {str(path)!r}: no such file"))
    bad = unread = 0
    with tempfile.TemporaryDirectory(prefix="rta-send-") as spill:
        client = Client(key, host, block=True, max_retries=3, max_backoff=2.0, spill_dir=spill)
        watch = _SendWatch(client, host, patience)
        for path in files:
            digest = file_digest(path)
            with path.open() as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    if unread or not watch.wait_for_server():
                        unread += 1  # given up: counted, not sent
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError as err:
                        bad += 1
                        typer.echo(f"{path}:{number}: not JSON ({err}); skipped", err=True)
                        continue
                    client.send(message_from(item, f"{digest}-{number}"))
        if not unread:
            watch.drain()
        client.close(timeout=15)
        unacknowledged = client.pending + unread
    typer.echo(f"sent {client.sent:,} events; dropped {client.dropped:,}; {bad:,} lines were not JSON", err=True)
    for reason in client.rejected[:5]:
        typer.echo(f"refused: {reason}", err=True)
    if unacknowledged:
        typer.echo(
            f"error: {unacknowledged:,} events were not acknowledged: {host} did not answer for {max_wait} "
            f"({client.last_error or 'no answer'}); sending the same files again is safe: events keep their ids, "
            "and the collect API counts an id it saw within its dedup window (1 hour by default) once",
            err=True,
        )
    if client.dropped or bad:
        raise typer.Exit(1)
    if unacknowledged:
        raise typer.Exit(75)  # EX_TEMPFAIL: try again later


class _SendWatch:
    """How long `rta send` waits for a collect API that stopped answering, and what it prints meanwhile."""

    def __init__(self, client: Sender, host: str, patience: float, every: float = 10.0) -> None:
        self._client = client
        self._host = host
        self._patience = patience
        self._every = every
        self._said = 0.0
        self._away = False

    def wait_for_server(self) -> bool:
        """Return at once while the API answers; else wait until it does (True) or for too long (False)."""
        while self._client.outage_since is not None:
            if not self._tick() or not self._client.running:
                return False
            time.sleep(0.1)
        self._tick()
        return True

    def drain(self) -> bool:
        """Wait until every event was answered (True), or the API was away for too long (False)."""
        while self._client.pending:
            if not self._tick() or not self._client.running:
                return False
            time.sleep(0.1)
        return True

    def _tick(self) -> bool:
        now, since = time.monotonic(), self._client.outage_since
        if since is None:
            if self._away:
                self._away = False
                typer.echo(f"rta send: {self._host} answers again; {self._client.pending:,} events on their way", err=True)
            return True
        if now - since > self._patience:
            return False
        if not self._away or now - self._said >= self._every:  # at once when it goes away, then now and then
            self._away = True
            self._said = now
            typer.echo(
                f"rta send: {self._host} has not answered for {now - since:.0f}s ({self._client.last_error}); "
                f"{self._client.pending:,} events wait ({self._client.spilled:,} spilled to disk); "
                f"giving up in {self._patience - (now - since):.0f}s",
                err=True,
            )
        return True


def _alert_engine(ws: Workspace) -> AlertEngine:
    import logging

    from rta.alerts.engine import AlertEngine

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("\nrta alerts: %(message)s"))
    logger = logging.getLogger("rta.alerts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return AlertEngine(ws)


def _reports_folder(proj: Project) -> Path:
    section = proj.settings.get("reports", {})
    folder = section.get("folder", "reports") if isinstance(section, dict) else "reports"
    if not isinstance(folder, str) or not folder:
        raise RtaError(f"rta.toml: [reports] folder takes a path, got {folder!r}")
    return proj.root / folder


def _report_scheduler(proj: Project, ws: Workspace) -> ReportScheduler:
    from rta.alerts.engine import allow_list, check_channels
    from rta.alerts.notify import Notifier
    from rta.dash.scheduled import ReportScheduler

    allow = allow_list(proj.settings)
    check_channels(proj.definitions.reports, allow)
    notifier = Notifier(allow=allow)
    return ReportScheduler(ws, proj.definitions.reports, proj.root, _reports_folder(proj), notifier.send, close=notifier.close)


@contextmanager
def _report_loop(scheduler: ReportScheduler | None) -> Iterator[None]:
    if scheduler is None:
        yield
        return
    from rta.dash.scheduled import ReportLoop

    loop = ReportLoop(scheduler).start()
    try:
        yield
    finally:
        loop.stop()
        if scheduler.close is not None:
            scheduler.close()  # deliver what is queued


@contextmanager
def _alert_loop(engine: AlertEngine | None) -> Iterator[None]:
    if engine is None:
        yield
        return
    from rta.alerts.loop import AlertLoop

    loop = AlertLoop(engine).start()
    try:
        yield
    finally:
        loop.stop()


@contextmanager
def _serve(proj: Project, ws: Workspace, host: str, port: int, collect: CollectApi | None) -> Iterator[None]:
    """Serve the collect and query APIs beside the flow and publish where, so other processes query through it."""
    if not port:
        yield
        return
    import json
    import os

    from rta.contract.keys import KeyStore, run_key
    from rta.dash.pages import DashboardPages
    from rta.ingest.service import Router
    from rta.query.api import QueryApi, serve_in_thread
    from rta.workspace.remote import RUN_FILE

    keys = KeyStore(proj.root)
    url = f"http://127.0.0.1:{port}"
    run_file = proj.root / RUN_FILE
    # The key ends with the run; one a crashed run left (in run.json and its links) is revoked first.
    with run_key(keys, run_file) as (_, secret):
        query_api = DashboardPages(ws, keys, QueryApi(ws, keys))
        _, stop_api = serve_in_thread(Router(collect, query_api) if collect else query_api, host=host, port=port)
        run_file.write_text(json.dumps({"pid": os.getpid(), "url": url, "key": secret}))
        os.chmod(run_file, 0o600)
        typer.echo(f"rta: query API on {url} (other processes use it automatically)", err=True)
        for board in proj.definitions.dashboards:
            typer.echo(
                f"rta: dashboard {board.name!r} at {url}/d/{board.name}?key={secret} "
                f"(this key ends with the run; `rta share {board.name}` makes a lasting link)",
                err=True,
            )
        if collect is not None:
            typer.echo(
                f"rta: collect API on {url}/v1/batch (Segment spec; `rta keys create write` for a key), tracker at {url}/rta.js", err=True
            )
        try:
            yield
        finally:
            run_file.unlink(missing_ok=True)
            stop_api()


@app.command()
def query(
    metrics: Annotated[list[str], typer.Argument(help="Metric names.")],
    project: ProjectOpt = Path("."),
    last: Annotated[str, typer.Option(help="Time range back from now, e.g. 24h, 7d.")] = "7d",
    grain: Annotated[str, typer.Option(help="Bucket size: auto, 1m, 1h or 1d.")] = "auto",
    by: Annotated[list[str] | None, typer.Option(help="Split by a dimension (repeatable).")] = None,
    where: Annotated[list[str] | None, typer.Option(help="Filter dim=value or dim=a,b (repeatable).")] = None,
    compare: Annotated[str | None, typer.Option(help="previous_period, previous_day, previous_week or previous_year.")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the N largest groups of --by.")] = None,
    explain: Annotated[bool, typer.Option(help="Tell which tables answered and what they read.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Print metrics by time bucket from the rollups."""
    from rta.workspace import connect

    try:
        filters = _filters(where)
        ws = connect(project)
        options = {"last": last, "grain": grain, "by": by or [], "where": filters, "compare": compare, "top": top}
        # Explaining first answers from the store (a cache miss); the query then reads the cache.
        explained = ws.explain(metrics, **options) if explain else None  # type: ignore[arg-type]
        frame = ws.query(metrics, **options)  # type: ignore[arg-type]
    except RtaError as err:
        _fail(err)
    if explained is not None:
        typer.echo(str(explained), err=True)
    _print(frame, fmt)


def _filters(where: list[str] | None) -> dict[str, list[str]]:
    """--where dim=value or dim=a,b (repeatable) as a where= mapping."""
    filters: dict[str, list[str]] = {}
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise RtaError(f"--where takes dim=value or dim=a,b, got {item!r}")
        filters.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return filters


@app.command()
def report(
    dashboard: Annotated[str | None, typer.Argument(help="The dashboard's name (optional when the project has one).")] = None,
    project: ProjectOpt = Path("."),
    last: Annotated[str | None, typer.Option(help="Time range back from now, e.g. 24h, 7d (default: the dashboard's).")] = None,
    grain: Annotated[str | None, typer.Option(help="auto, 1m, 1h or 1d.")] = None,
    where: Annotated[list[str] | None, typer.Option(help="Filter dim=value or dim=a,b (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    pdf: Annotated[Path | None, typer.Option(help="Also print it to this PDF (needs Chromium).")] = None,
    png: Annotated[Path | None, typer.Option(help="Also write each chart as PNG into this folder.")] = None,
    svg: Annotated[Path | None, typer.Option(help="Also write each chart as SVG into this folder.")] = None,
    data: Annotated[Path | None, typer.Option(help="Also write each panel's data into this folder.")] = None,
    data_format: Annotated[str, typer.Option(help="csv or parquet.")] = "csv",
) -> None:
    """Write a self-contained HTML report of a dashboard: opens offline, one file."""
    from rta.dash import report as write
    from rta.workspace import connect

    try:
        files = write(
            connect(project),
            dashboard,
            out=out,
            pdf=pdf,
            images=png or svg,
            image_format="png" if png else "svg",
            data=data,
            data_format=data_format,
            last=last,
            grain=grain,
            where=_filters(where),
        )
    except RtaError as err:
        _fail(err)
    for written in (files.html, files.pdf, *files.images, *files.data):
        if written is not None:
            typer.echo(str(written))
    if files.failed:
        typer.echo(f"rta: {len(files.failed)} panel(s) could not be answered and show their error: {', '.join(files.failed)}", err=True)


@app.command()
def share(
    dashboard: Annotated[str, typer.Argument(help="The dashboard's name.")],
    project: ProjectOpt = Path("."),
    url: Annotated[str, typer.Option(help="Where rta run or rta serve query is reachable.")] = "http://127.0.0.1:8765",
) -> None:
    """Create a share token for one dashboard's live page (revoke it with `rta keys revoke ID`)."""
    from rta.dash.pages import share_name
    from rta.project import load_project

    try:
        load_project(project).definitions.dashboard(dashboard)
        key, secret = _keys(project).create("share", share_name(dashboard))
    except RtaError as err:
        _fail(err)
    typer.echo(f"{url.rstrip('/')}/d/{dashboard}?token={secret}")
    typer.echo(
        f"created share key {key.id} for dashboard {dashboard!r}; it opens that page only; `rta keys revoke {key.id}` ends it", err=True
    )


@app.command()
def sql(
    statement: Annotated[str, typer.Argument(help="One SELECT; stream names stand for raw events, <rollup>_<grain> for rollups.")],
    project: ProjectOpt = Path("."),
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Run a read-only SELECT over the project's tables, with time, row and memory limits."""
    from rta.workspace import connect

    try:
        frame = connect(project).sql(statement)
    except RtaError as err:
        _fail(err)
    _print(frame, fmt)


def _print(frame: pl.DataFrame, fmt: Format) -> None:
    if fmt is Format.json:
        typer.echo(frame.write_json())
    elif fmt is Format.csv:
        typer.echo(frame.write_csv(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*frame.columns)
        for row in frame.iter_rows():
            table.add_row(*(_cell(v) for v in row))
        Console().print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:,.4g}"
    return str(value)


def _keys(project: Path) -> KeyStore:
    from rta.contract.keys import KeyStore

    if not project.is_dir():
        _fail(RtaError(f"project folder {str(project)!r} does not exist; create one with `rta init {project}`"))
    return KeyStore(project.resolve())


@keys_app.command("create")
def keys_create(
    kind: Annotated[str, typer.Argument(help="read (queries, dashboards) or write (ingest only).")],
    project: ProjectOpt = Path("."),
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create a key; its secret is printed once."""
    try:
        key, secret = _keys(project).create(kind, name)  # type: ignore[arg-type]
    except RtaError as err:
        _fail(err)
    typer.echo(secret)
    typer.echo(f"created {key.kind} key {key.id} ({key.name}); store the secret now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list(project: ProjectOpt = Path(".")) -> None:
    """List keys (ids, kinds, names; never secrets)."""
    for key in _keys(project).list():
        state = f"revoked {key.revoked}" if key.revoked else "active"
        typer.echo(f"{key.id}  {key.kind:<5}  {key.name:<20}  created {key.created}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")], project: ProjectOpt = Path(".")) -> None:
    """Revoke a key; it stops working at once."""
    try:
        key = _keys(project).revoke(key_id)
    except RtaError as err:
        _fail(err)
    typer.echo(f"revoked {key.kind} key {key.id} ({key.name})")


@app.command()
def suggest(
    project: ProjectOpt = Path("."),
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="A dashboard filter (repeatable); default: rta.toml [dashboards] filters.")
    ] = None,
) -> None:
    """Suggest rollups so every metric answers, fast, under the dashboards' filters."""
    from rta.query.suggest import suggest_rollups

    try:
        proj = _project(project)
        chosen = filters or proj.settings.get("dashboards", {}).get("filters", [])
        if not chosen:
            raise RtaError("no dashboard filters: pass --filter country --filter device, or set [dashboards] filters = [...] in rta.toml")
        found = suggest_rollups(proj.plan, chosen)
    except RtaError as err:
        _fail(err)
    if not found:
        typer.echo(f"every metric answers from a fitting rollup under filters {', '.join(chosen)}")
    for s in found:
        typer.echo(f"# {s.reason}\n{s.code()}")


BENCHMARKS = ("flow", "query", "ingest")


@app.command()
def bench(
    which: Annotated[
        str, typer.Argument(help="flow (throughput vs peers), query (latency, concurrency vs raw events) or ingest (collect API vs peers).")
    ],
    args: Annotated[list[str] | None, typer.Argument(help="Options passed to the benchmark, e.g. -- --events 2000000.")] = None,
) -> None:
    """Run a benchmark from a source checkout's bench/ folder; it prints a table comparing rta with its peers."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "bench" / f"{which}.py"
    if which not in BENCHMARKS:
        _fail(RtaError(f"unknown benchmark {which!r}; valid benchmarks are: {', '.join(BENCHMARKS)}"))
    if not script.is_file():
        _fail(RtaError(f"{script} not found: benchmarks run from a source checkout (git clone, then pip install -e .)"))
    raise typer.Exit(subprocess.call([sys.executable, str(script), *(args or [])]))


@serve_app.command("ingest")
def serve_ingest(
    project: ProjectOpt = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8766,
    workers: Annotated[int, typer.Option(min=1, help="Processes serving the port, one per core to use; needs as many log partitions.")] = 1,
) -> None:
    """Serve only the collect API, writing the event log (or Kafka); `rta run --no-collect` flows it into the store."""
    import uvicorn

    from rta.ingest.service import IngestSettings, collect_app

    try:
        proj = _project(project)
        stream = _stream_name(proj, None)
        IngestSettings.of(proj).for_workers(workers)
    except RtaError as err:
        _fail(err)
    where = f"http://{host}:{port}/v1/batch"
    if workers > 1:
        from rta.ingest.workers import serve

        typer.echo(f"rta: collect API on {where}, {workers} processes (no store: a running `rta run` flows the log)", err=True)
        raise typer.Exit(serve(proj.root, stream, host, port, workers))
    collect, events = collect_app(proj, stream)
    typer.echo(f"rta: collect API on {where} (no store: a running `rta run` flows the log)", err=True)
    try:
        uvicorn.run(collect, host=host, port=port, log_level="warning", lifespan="off", proxy_headers=False, access_log=False)
    finally:
        events.close()


@serve_app.command("query")
def serve_query(
    project: ProjectOpt = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Serve the REST query API (owns the embedded store while it runs)."""
    import uvicorn

    from rta.contract.keys import KeyStore
    from rta.dash.pages import DashboardPages
    from rta.query.api import QueryApi
    from rta.workspace import Workspace, connect

    try:
        ws = connect(project)
        if not isinstance(ws, Workspace):
            raise RtaError(f"the store is owned by the rta run serving {ws.url}; its query API is already up")
    except RtaError as err:
        _fail(err)
    typer.echo(f"rta: query API on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    keys = KeyStore(ws.project.root)
    app = DashboardPages(ws, keys, QueryApi(ws, keys))
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", proxy_headers=False, access_log=False)


def _local_workspace(project: Path, what: str) -> Workspace:
    from rta.workspace import Workspace, connect

    ws = connect(project)
    if not isinstance(ws, Workspace):
        raise RtaError(f"{what} reads the store directly, and `rta run` owns it now; run it in a notebook with ws.alerts, or stop rta run")
    return ws


@alerts_app.command("list")
def alerts_list(project: ProjectOpt = Path("."), fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """The project's alert rules, their channels and silences."""
    import polars as pl

    from rta.alerts.engine import silences

    try:
        proj = _project(project)
    except RtaError as err:
        _fail(err)
    quiet = silences(proj.root)
    rows = [
        {
            "alert": r.name,
            "condition": r.condition.describe(),
            "by": ", ".join(r.by),
            "pending": f"{r.pending // 60}m",
            "notify": ", ".join(str(c) for c in r.notify),
            "silenced until": f"{quiet[r.name]:%Y-%m-%d %H:%M} UTC" if r.name in quiet else "",
        }
        for r in proj.definitions.alerts
    ]
    _print(pl.DataFrame(rows, schema=dict.fromkeys(["alert", "condition", "by", "pending", "notify", "silenced until"], pl.String)), fmt)


@alerts_app.command("test")
def alerts_test(name: Annotated[str, typer.Argument(help="The alert's name.")], project: ProjectOpt = Path(".")) -> None:
    """Send a test notification to each of the rule's channels now (and show its reading when the store is free)."""
    from datetime import UTC, datetime

    from rta.alerts.engine import allow_list, check_channels
    from rta.alerts.notify import Notification
    from rta.workspace import Workspace, connect

    try:
        proj = _project(project)
        rule = proj.definitions.alert(name)
        allow = allow_list(proj.settings)
        check_channels([rule], allow)
        ws = connect(project)
        if isinstance(ws, Workspace):
            reading = ws.alerts.check(rule)
            _print(reading, Format.table)
        groups: tuple[tuple[dict[str, str], float | None], ...] = (({}, None),)
        note = Notification(
            rule.name, "firing", datetime.now(UTC), rule.condition.describe(), groups, description=rule.description, test=True
        )
    except RtaError as err:
        _fail(err)
    _deliver_each(note, rule.notify, allow)


def _deliver_each(message: Message, channels: tuple[Channel, ...], allow: AllowList) -> None:
    """One delivery attempt per channel, now; exit 1 if any failed (`rta alerts test`, `rta reports send`)."""
    from rta.alerts.notify import DeliveryError, Notifier

    failed = 0
    for target in channels:
        try:
            Notifier(allow=allow).deliver(message, target)
            typer.echo(f"{target}: delivered")
        except DeliveryError as err:
            failed += 1
            typer.echo(f"{target}: failed: {err}", err=True)
    if failed:
        raise typer.Exit(1)


@reports_app.command("list")
def reports_list(project: ProjectOpt = Path("."), fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """The project's scheduled reports: dashboard, schedule, where they go."""
    import polars as pl

    try:
        proj = _project(project)
    except RtaError as err:
        _fail(err)
    rows = [
        {
            "report": r.name,
            "dashboard": r.dashboard,
            "every": r.every,
            "at": r.at if r.every != "1h" else "",
            "tz": r.tz,
            "last": r.last or "",
            "pdf": r.pdf,
            "notify": ", ".join(str(c) for c in r.notify),
        }
        for r in proj.definitions.reports
    ]
    _print(pl.DataFrame(rows) if rows else pl.DataFrame({"report": []}), fmt)


@reports_app.command("send")
def reports_send(name: Annotated[str, typer.Argument(help="The report's name.")], project: ProjectOpt = Path(".")) -> None:
    """Render a scheduled report now and deliver it to each of its channels (one attempt each)."""
    from datetime import UTC, datetime

    from rta.alerts.engine import allow_list, check_channels
    from rta.dash.scheduled import render
    from rta.workspace import connect

    try:
        proj = _project(project)
        schedule = next((r for r in proj.definitions.reports if r.name == name), None)
        if schedule is None:
            known = ", ".join(r.name for r in proj.definitions.reports) or "none defined"
            raise RtaError(f"no scheduled report named {name!r}; the project has: {known}")
        allow = allow_list(proj.settings)
        check_channels([schedule], allow)
        notice = render(connect(project), schedule, _reports_folder(proj), datetime.now(UTC), test=True)
    except RtaError as err:
        _fail(err)
    for written in notice.files:
        typer.echo(str(written))
    _deliver_each(notice, schedule.notify, allow)


@alerts_app.command("history")
def alerts_history(
    project: ProjectOpt = Path("."),
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    notifications: Annotated[bool, typer.Option(help="Only notifications (not every evaluation).")] = False,
    limit: Annotated[int, typer.Option(help="Newest rows to show.")] = 50,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Evaluations and notifications, newest first (also while `rta run` owns the store)."""
    import polars as pl

    from rta.workspace import Workspace, connect

    try:
        ws = connect(project)
        kind = "notification" if notifications else None
        if isinstance(ws, Workspace):
            frame = ws.alerts.history(rule, kind=kind, limit=limit)
        else:  # through the running process's SQL console: filters apply here, never spliced into SQL
            frame = ws.sql("SELECT * FROM alert_history ORDER BY recorded DESC, at DESC LIMIT 100000")
            frame = frame.filter(*([pl.col("rule") == rule] if rule else []), *([pl.col("kind") == kind] if kind else [])).head(limit)
    except RtaError as err:
        _fail(err)
    _print(frame.select("at", "rule", "group", "kind", "status", "value", "channel", "detail"), fmt)


@alerts_app.command("silence")
def alerts_silence(
    name: Annotated[str, typer.Argument(help="The alert's name.")],
    for_: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")] = "1h",
    project: ProjectOpt = Path("."),
) -> None:
    """Hold a rule's notifications for a while (it is still evaluated and recorded)."""
    from rta.alerts.engine import silence
    from rta.dsl.durations import parse_duration

    try:
        proj = _project(project)
        proj.definitions.alert(name)
        until = silence(proj.root, name, parse_duration(for_, what="--for"))
    except RtaError as err:
        _fail(err)
    typer.echo(f"{name}: silenced until {until:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("backtest")
def alerts_backtest(
    name: Annotated[str, typer.Argument(help="The alert's name.")],
    project: ProjectOpt = Path("."),
    last: Annotated[str, typer.Option(help="How far back, e.g. 7d, 30d.")] = "7d",
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """When the rule would have fired over a past range (pending, keep-firing and cooldown included)."""
    try:
        ws = _local_workspace(project, "rta alerts backtest")
        result = ws.alerts.backtest(name, last=last)
    except RtaError as err:
        _fail(err)
    typer.echo(repr(result), err=True)
    _print(result.notifications, fmt)


def main() -> None:
    """Entry point of the `rta` script."""
    app()


if __name__ == "__main__":
    main()
