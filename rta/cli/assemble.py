"""What `rta run`, `rta serve ingest` and `rta serve query` run, built in one place: `services(project, ...)`."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from rta.cli.common import open_store, reports_folder, stream_name

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from bytewax.inputs import Source
    from clickhouse_connect.driver.client import Client

    from rta.alerts.engine import AlertEngine
    from rta.contract.keys import KeyStore
    from rta.dash.pages import DashboardPages
    from rta.dash.scheduled import ReportScheduler
    from rta.flows.sources import SourceBatch
    from rta.ingest.collect import CollectApi
    from rta.ingest.kafka import KafkaLog
    from rta.ingest.log import EventLog
    from rta.project import Project
    from rta.workspace import Workspace


@dataclass(frozen=True)
class FlowInputs:
    """What the flow reads besides the events received (`--demo`, `--watch`), and the events that stop it and pause the demo."""

    stop: threading.Event
    paused: threading.Event
    demo: bool = False
    watch: Path | None = None
    rate: int | None = None
    history: str | None = None
    history_events: int = 0


@dataclass
class Services:
    """A serving process's parts, one store client per role: the flow's writer, the APIs', the alert engine's, the reports'."""

    project: Project
    writer: Client | None = None
    ws: Workspace | None = None
    engine: AlertEngine | None = None
    scheduler: ReportScheduler | None = None
    sources: list[Source[SourceBatch]] = field(default_factory=list)
    receiver: tuple[CollectApi, EventLog | KafkaLog] | None = None

    def query_api(self) -> tuple[KeyStore, DashboardPages]:
        """The project's keys and the query API with the dashboard pages in front, over ``ws``."""
        from rta.contract.keys import KeyStore
        from rta.dash.pages import DashboardPages
        from rta.query.api import QueryApi

        if self.ws is None:
            msg = "no workspace to serve queries from; build the services with query=True or ws="
            raise ValueError(msg)
        keys = KeyStore(self.project.root)
        return keys, DashboardPages(self.ws, keys, QueryApi(self.ws, keys))


def services(
    proj: Project,
    *,
    flow: FlowInputs | None = None,
    ws: Workspace | None = None,
    query: bool = False,
    alerts: bool = False,
    reports: bool = False,
    collect: bool = False,
) -> Services:
    """Build what is asked: the flow's writer and inputs, a workspace for the APIs (``ws`` if given), the alert
    engine and report scheduler when the project defines any, and the collect API with its log."""
    writer = open_store(proj) if flow is not None else None
    if ws is None and query:
        ws = _workspace(proj)
    engine = alert_engine(_workspace(proj)) if alerts and proj.definitions.alerts else None
    scheduler = report_scheduler(proj, _workspace(proj)) if reports and proj.definitions.reports else None
    sources = flow_sources(proj, flow) if flow is not None else []
    receiver = None
    if collect:
        from rta.ingest.service import collect_app

        receiver = collect_app(proj, stream_name(proj, None))
    return Services(proj, writer, ws, engine, scheduler, sources, receiver)


def _workspace(proj: Project) -> Workspace:
    """A workspace over a store client of its own (no shared result cache: `rta.connect` adds that)."""
    from rta.workspace import Workspace

    return Workspace(proj, open_store(proj), proj.dsn)


def flow_sources(proj: Project, inputs: FlowInputs) -> list[Source[SourceBatch]]:
    """The flow's inputs: the events received (local log or Kafka), then the demo and a watched folder if asked.

    Every process of a cluster builds the same list (the same dataflow); the demo and the
    folder then only produce on the first worker.
    """
    from rta.dsl.durations import parse_duration
    from rta.flows.demo import DemoSource, live_rate
    from rta.flows.inbox import InboxSource
    from rta.flows.log_source import LogSource
    from rta.ingest.service import IngestSettings, log_folder

    stop, history, history_events = inputs.stop, inputs.history, inputs.history_events
    stream = stream_name(proj, None)
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
    if inputs.watch is not None:
        sources.append(InboxSource(inputs.watch, proj.plan.stream(stream), stop=stop))
    if inputs.demo:
        seconds = parse_duration(history, what="--history") if history else 0
        live = live_rate(inputs.rate, seconds, history_events)
        if seconds:
            typer.echo(f"rta: demo backfills {history_events:,} events over {history}, then streams {live:,} events/s", err=True)
        sources.append(
            DemoSource(
                stream,
                dims=proj.plan.stream(stream).dims,
                rate=live,
                history_seconds=seconds,
                history_events=history_events,
                stop=stop,
                paused=inputs.paused,
            )  # fmt: skip
        )
    return sources


def alert_engine(ws: Workspace) -> AlertEngine:
    import logging

    from rta.alerts.engine import AlertEngine

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("\nrta alerts: %(message)s"))
    logger = logging.getLogger("rta.alerts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return AlertEngine(ws)


def report_scheduler(proj: Project, ws: Workspace) -> ReportScheduler:
    from rta.alerts.engine import allow_list, check_channels
    from rta.alerts.notify import Notifier
    from rta.dash.scheduled import ReportScheduler

    allow = allow_list(proj.settings)
    check_channels(proj.definitions.reports, allow)
    notifier = Notifier(allow=allow)
    return ReportScheduler(ws, proj.definitions.reports, proj.root, reports_folder(proj), notifier.send, close=notifier.close)
