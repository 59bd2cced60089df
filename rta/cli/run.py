"""`rta run` (flow, APIs, alerts and reports in one process), its cluster workers, and `rta serve ingest | query`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rta.cli.assemble import FlowInputs, Services, flow_sources, services
from rta.cli.common import ProjectOpt, open_project, stream_name
from rta.errors import RtaError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from rta.alerts.engine import AlertEngine
    from rta.dash.scheduled import ReportScheduler
    from rta.flows.demo import DemoSource
    from rta.flows.stats import FlowStats
    from rta.periodic import Periodic

serve_app = typer.Typer(help="Serve one face of rta on its own.", no_args_is_help=True)


def run(
    project: ProjectOpt = Path("."),
    demo: Annotated[bool, typer.Option(help="Also generate realistic shop traffic.")] = False,
    watch: Annotated[Path | None, typer.Option(help="Also ingest *.jsonl files as they land in this folder.")] = None,
    port: Annotated[int, typer.Option(help="Port of the collect and query APIs (0: none, and no collect API).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (with --history: of live traffic, after the backfill).")
    ] = None,
    rate: Annotated[
        int | None, typer.Option(help="Demo events per second (default: the history's own rate with --history, else 20,000).")
    ] = None,
    history: Annotated[str | None, typer.Option(help="Backfill demo history first, e.g. 7d.")] = None,
    history_events: Annotated[int, typer.Option(help="Events in the backfilled history.")] = 1_000_000,
    demo_for: Annotated[
        float | None, typer.Option(help="Stop the demo traffic after this many seconds (after the backfill); keep running.")
    ] = None,
    alerts: Annotated[bool, typer.Option(help="Evaluate the project's alert rules.")] = True,
    processes: Annotated[int, typer.Option(help="Run the flow as a Bytewax cluster of this many processes.")] = 1,
    collect: Annotated[bool, typer.Option(help="Serve the collect API (off when `rta serve ingest` receives events).")] = True,
) -> None:
    """Receive events (collect API -> durable log -> flow -> store), serve queries, evaluate alerts, until Ctrl-C."""
    import subprocess

    from rta.flows.demo import DemoSource
    from rta.flows.runner import run_flow, summary

    stop, paused = threading.Event(), threading.Event()
    if processes < 1:
        raise RtaError(f"--processes takes 1 or more, got {processes}")
    proj = open_project(project)
    inputs = FlowInputs(stop, paused, demo=demo, watch=watch, rate=rate, history=history, history_events=history_events)
    parts = services(proj, flow=inputs, query=True, alerts=alerts, reports=True, collect=bool(port and collect))
    engine, scheduler, receiver = parts.engine, parts.scheduler, parts.receiver
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    backfill = _Backfill(next((s for s in parts.sources if isinstance(s, DemoSource)), None), stop)
    if backfill.demo is not None and parts.writer is not None:
        backfill.warn_if_stored(parts.writer)
    backfill.then_start({stop: duration, paused: demo_for})
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
        alert_loop, report_loop = _loops(engine, scheduler, hold=(lambda: backfill.pending) if backfill.pending else None)
        with _serve(parts, host, port), _ticking(alert_loop), _ticking(report_loop, then=scheduler.close if scheduler else None):
            if workers:  # the cluster ends when every process's inputs end

                def stop_workers() -> None:
                    stop.wait()
                    for worker in workers:
                        worker.terminate()

                threading.Thread(target=stop_workers, daemon=True).start()
            stats = run_flow(
                proj.plan, parts.sources, parts.writer, stats=backfill.stats, report=backfill.reporter(), recovery=recovery, cluster=cluster
            )
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
        if receiver is not None:
            receiver[1].close()
    typer.echo("\n" + summary(stats) + backfill.summary(), err=True)


class _Backfill:
    """The demo's history as `rta run` shows it: its progress on the live line, a line once it is
    in the store, and the timers (``--duration``, ``--demo-for``) started only then, so they count
    live time and a slow machine still completes the backfill. Ctrl-C stops it (the summary says
    how far it got)."""

    def __init__(self, demo: DemoSource | None, stop: threading.Event) -> None:
        self.demo = demo if demo is not None and demo.history_events > 0 else None
        from rta.flows.stats import FlowStats

        self.stop = stop
        self.stats = FlowStats()  # the flow's: the backfill is done when its events are written
        self.started = time.monotonic()
        self.done_at: float | None = None
        self.stopped_at: float | None = None

    def warn_if_stored(self, client: Client) -> None:
        """Say so when the store already holds events: the backfill adds a history on top (demo runs are new traffic each time)."""
        from rta.compiler.ddl import STATS_TABLE

        assert self.demo is not None
        sql = (
            f"SELECT sum(events) FROM {STATS_TABLE} WHERE outcome = 'accepted' AND newest_event >= now64(3) - toIntervalSecond({{s:Int64}})"
        )
        try:
            held = int(client.query(sql, parameters={"s": self.demo.history_seconds}).result_rows[0][0] or 0)
        except Exception:  # no tally yet: nothing stored
            return
        if held:
            typer.echo(
                f"rta: the store already holds {held:,} events (an earlier run or load); the demo's history adds to them "
                "(start from an empty data folder for a clean demo)",
                err=True,
            )

    @property
    def pending(self) -> bool:
        return self.demo is not None and self.done_at is None

    def _written(self) -> bool:
        # The flow's worker polls its sources between batches, so the demo hands over the whole
        # history long before it is written; live time starts once the store has it all.
        assert self.demo is not None
        return self.demo.backfilled.is_set() and self.stats.events_written >= self.demo.history_events

    def then_start(self, timers: dict[threading.Event, float | None]) -> None:
        """Set each event after its seconds, counted from the end of the backfill (from now without one)."""

        def start() -> None:
            if self.demo is not None:
                while not self._written():
                    if self.stop.wait(0.1):
                        return
                self.done_at = time.monotonic()
                took = self.done_at - self.started
                lasting = f" for {timers[self.stop]:g} s" if timers.get(self.stop) is not None else ""
                typer.echo(f"{_line_break()}rta: demo history backfilled ({self.demo.history_events:,} events in {took:.1f} s); "
                           f"live traffic at {self.demo.rate:,} events/s{lasting}", err=True)  # fmt: skip
            for event, seconds in timers.items():
                if seconds is not None:
                    timer = threading.Timer(seconds, event.set)
                    timer.daemon = True  # a flow that ends first must not wait for it
                    timer.start()
            self.stop.wait()
            self.stopped_at = time.monotonic()

        threading.Thread(target=start, name="rta-backfill", daemon=True).start()

    def reporter(self) -> Callable[[FlowStats], None]:
        """The live line (as `rta load` shows it), led by the backfill's progress while it runs."""
        from rta.flows.runner import progress_line

        previous: dict[str, float] = {}
        tty = sys.stderr.isatty()

        def report(stats: FlowStats) -> None:
            line = progress_line(stats, previous)
            if self.pending and self.demo is not None:
                total = self.demo.history_events
                line = f"backfill {min(stats.events_written / total, 1):>4.0%} of {total:,} | {line}"
            sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
            sys.stderr.flush()

        return report

    def summary(self) -> str:
        if self.demo is None:
            return ""
        if self.pending:
            written = min(self.stats.events_written, self.demo.history_events)
            return f"\ndemo: stopped during the backfill, {written:,} of {self.demo.history_events:,} history events written"
        live = (self.stopped_at or time.monotonic()) - (self.done_at or self.started)
        since, until = self.demo.live_since or 0.0, self.demo.live_until or 0.0  # live events run on from where the history ends
        rate = self.demo.live_sent / max(until - since, 1e-9)
        return (
            f"\ndemo: {self.demo.history_events:,} history events, then {live:.1f} s live: {self.demo.live_sent:,} events "
            f"since the history's end, {rate:,.2f} events/s (asked {self.demo.rate:,})"
        )


def _line_break() -> str:
    """What ends the live line before a message: on a terminal it has no newline of its own."""
    return "\n" if sys.stderr.isatty() else ""


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
    proj = open_project(project)
    sources = flow_sources(proj, FlowInputs(stop, paused, demo=demo, watch=watch, rate=0, history=None, history_events=0))
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


@contextmanager
def _ticking(loop: Periodic | None, *, then: Callable[[], None] | None = None) -> Iterator[None]:
    """Run ``loop`` while the block runs; ``then`` after it stops (a scheduler delivers what is queued)."""
    if loop is None:
        yield
        return
    loop.start()
    try:
        yield
    finally:
        loop.stop()
        if then is not None:
            then()


def _loops(
    engine: AlertEngine | None, scheduler: ReportScheduler | None, hold: Callable[[], bool] | None = None
) -> tuple[Periodic | None, Periodic | None]:
    """The alert loop (its notifications echoed on this console; held while ``hold()``) and the report loop, for what runs."""
    alerts = reports = None
    if engine is not None:
        from rta.alerts.loop import AlertLoop

        alerts = AlertLoop(engine, announce=lambda line: typer.echo(f"rta: alert {line}", err=True), hold=hold)
    if scheduler is not None:
        from rta.dash.scheduled import ReportLoop

        reports = ReportLoop(scheduler)
    return alerts, reports


@contextmanager
def _serve(parts: Services, host: str, port: int) -> Iterator[None]:
    """Serve the collect and query APIs beside the flow and publish where, so other processes query through it."""
    if not port:
        yield
        return
    from rta.ingest.service import Router
    from rta.query.api import serve_in_thread
    from rta.workspace.owner import published

    proj, collect = parts.project, parts.receiver[0] if parts.receiver else None
    url = f"http://127.0.0.1:{port}"
    _, query_api = parts.query_api()
    # The key ends with the run; one a crashed run left (in run.json and its links) is revoked first.
    stops = []

    def listen(_: str) -> str:  # the API answers before the run file says where it is
        stops.append(serve_in_thread(Router(collect, query_api) if collect else query_api, host=host, port=port)[1])
        return url

    with published(proj.root, listen, collect=collect is not None) as secret:
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
            stops[0]()


@serve_app.command("ingest")
def serve_ingest(
    project: ProjectOpt = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8766,
    workers: Annotated[int, typer.Option(min=1, help="Processes serving the port, one per core to use; needs as many log partitions.")] = 1,
) -> None:
    """Serve only the collect API, writing the event log (or Kafka); `rta run --no-collect` flows it into the store."""
    import uvicorn

    from rta.ingest.service import IngestSettings

    proj = open_project(project)
    stream = stream_name(proj, None)
    IngestSettings.of(proj).for_workers(workers)
    where = f"http://{host}:{port}/v1/batch"
    if workers > 1:
        from rta.ingest.workers import serve

        typer.echo(f"rta: collect API on {where}, {workers} processes (no store: a running `rta run` flows the log)", err=True)
        raise typer.Exit(serve(proj.root, stream, host, port, workers))
    receiver = services(proj, collect=True).receiver
    assert receiver is not None  # collect=True builds it
    collect, events = receiver
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

    from rta.workspace import Workspace, connect

    ws = connect(project)
    if not isinstance(ws, Workspace):
        raise RtaError(f"the store is owned by the rta run serving {ws.url}; its query API is already up")
    typer.echo(f"rta: query API on http://{host}:{port} (OpenAPI at /openapi.json)", err=True)
    _, app = services(ws.project, ws=ws).query_api()
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", proxy_headers=False, access_log=False)
