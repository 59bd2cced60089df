"""Put the collect API together for a project: its log, its insert-id memory, its limits."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from rta.compiler.plan import StreamPlan
from rta.contract.keys import KeyStore
from rta.contract.log_format import read_frames, segments
from rta.errors import ConfigError
from rta.ingest.collect import CollectApi, RateLimit
from rta.ingest.dedup import InsertIdFilter, SharedTables
from rta.ingest.kafka import KafkaLog, recent_messages, topic_for
from rta.ingest.log import EventLog
from rta.ingest.segment import Limits
from rta.project import Project

LOG_DIR = Path(".rta") / "log"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """``[ingest]`` of rta.toml."""

    partitions: int = 1
    dedup_window_seconds: int = 3600
    max_age_hours: float = 72.0
    max_ahead_hours: float = 1.0
    rate_per_key: float = 200_000.0
    log_max_gb: float = 20.0
    retention_hours: float = 24.0
    kafka: str = ""  # bootstrap servers: Kafka mode (RTA_KAFKA_BOOTSTRAP overrides)
    trust_forwarded_for: bool = False  # behind a proxy: the client address is X-Forwarded-For's first entry

    @classmethod
    def of(cls, project: Project) -> IngestSettings:
        """Read and check the section."""
        section = project.settings.get("ingest", {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            msg = f"rta.toml [ingest]: unknown setting {unknown[0]!r}; valid settings are: {', '.join(sorted(known))}"
            raise ConfigError(msg)
        values = cls(**{**section, "kafka": os.environ.get("RTA_KAFKA_BOOTSTRAP") or section.get("kafka", "")})
        if values.partitions < 1:
            msg = f"rta.toml [ingest] partitions must be at least 1, got {values.partitions}"
            raise ConfigError(msg)
        return values

    def for_workers(self, workers: int) -> IngestSettings:
        """These settings, checked for ``workers`` collect API processes."""
        if self.partitions < workers:
            msg = (f"{workers} collect API processes need at least {workers} log partitions, one each to append to; "
                   f"set [ingest] partitions = {workers} (or more) in rta.toml")  # fmt: skip
            raise ConfigError(msg)
        return self


def log_folder(project: Project, stream: str) -> Path:
    """Where a stream's log lives."""
    return project.root / LOG_DIR / stream


def remember_recent(folder: Path, stream: StreamPlan, ids: InsertIdFilter) -> int:
    """Reload insert ids that arrived within the dedup window, so a restart still drops repeats."""
    if stream.insert_id is None:
        return 0
    since = time.time() - ids.window
    arrivals: dict[int, list[str]] = {}
    for part in sorted(folder.glob("p*")):
        recent = [base for base, path in segments(part) if path.stat().st_mtime >= since]
        offset = recent[0] if recent else None
        while offset is not None:
            frames = read_frames(part, offset)
            for frame in frames:
                if frame.intact and frame.payload and frame.arrival >= since:
                    arrivals.setdefault(frame.arrival // 60, []).extend(_insert_ids(frame.payload, stream.insert_id))
            offset = frames[-1].next_offset if frames else None
    ids.remember(arrivals)
    return sum(len(v) for v in arrivals.values())


def remember_recent_kafka(bootstrap: str, topic: str, partitions: int, stream: StreamPlan, ids: InsertIdFilter) -> int:
    """Like :func:`remember_recent`, from the messages produced to the topic within the window."""
    if stream.insert_id is None:
        return 0
    arrivals: dict[int, list[str]] = {}
    for produced, payload in recent_messages(bootstrap, topic, partitions, time.time() - ids.window):
        arrivals.setdefault(int(produced) // 60, []).extend(_insert_ids(payload, stream.insert_id))
    ids.remember(arrivals)
    return sum(len(v) for v in arrivals.values())


def _insert_ids(payload: bytes, column: str) -> list[str]:
    """Insert ids of a frame's lines (the API's ``_id``; ``messageId`` in logs of earlier versions).

    A line that cannot be read is skipped here: the flow quarantines it when it reads the frame,
    and nothing in the log may stop the service from starting.
    """
    names = list(dict.fromkeys(("_id", "messageId", column)))
    try:
        found = pl.read_ndjson(io.BytesIO(payload), schema=dict.fromkeys(names, pl.String()))
        return found.select(pl.coalesce(names)).to_series().drop_nulls().to_list()
    except pl.exceptions.PolarsError:
        pass
    ids = []
    for line in payload.splitlines():
        try:
            message = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue
        if isinstance(message, dict):
            found_id = next((message[n] for n in names if isinstance(message.get(n), str)), None)
            if found_id is not None:
                ids.append(found_id)
    return ids


def collect_app(
    project: Project, stream: str, *, worker: tuple[int, int] = (0, 1), shared: Path | None = None
) -> tuple[CollectApi, EventLog | KafkaLog]:
    """The collect API for ``stream`` and the log it writes (close it when done).

    ``worker`` (k, n): process k of n serving the same port (see :mod:`rta.ingest.workers`). It
    writes partitions p with p % n == k, and gets 1/n of the log's room and of each key's rate;
    ``shared`` is the folder of the insert-id memory the n processes share.
    """
    index, workers = worker
    settings = IngestSettings.of(project).for_workers(workers)
    owned = [p for p in range(settings.partitions) if p % workers == index]
    plan = project.plan.stream(stream)
    tables = SharedTables(shared) if shared is not None else None
    ids = InsertIdFilter(settings.dedup_window_seconds, tables=tables)
    events: EventLog | KafkaLog
    with tables.starting() if tables is not None else nullcontext(True) as rebuild:
        if settings.kafka:
            events = KafkaLog(settings.kafka, topic_for(stream), settings.partitions, owned=owned, dedup=ids)
            if rebuild:
                remember_recent_kafka(settings.kafka, topic_for(stream), settings.partitions, plan, ids)
        else:
            folder = log_folder(project, stream)
            room = int(settings.log_max_gb * 1024**3 * len(owned) / settings.partitions)
            events = EventLog(folder, settings.partitions, owned=owned, max_bytes=room, dedup=ids)
            if rebuild:
                remember_recent(folder, plan, ids)
    limits = Limits(timedelta(hours=settings.max_age_hours), timedelta(hours=settings.max_ahead_hours))
    rate = RateLimit(settings.rate_per_key / workers, settings.rate_per_key * 2 / workers)
    api = CollectApi(plan, events, KeyStore(project.root), limits=limits, rate=rate, trust_forwarded_for=settings.trust_forwarded_for)
    return api, events


class Router:
    """One port: collect endpoints to the collect API, everything else to the query API."""

    def __init__(self, collect: CollectApi, other: Callable[..., Awaitable[None]]) -> None:
        self.collect = collect
        self.other = other

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] == "http" and self.collect.handles(scope["method"], scope["path"]):
            await self.collect(scope, receive, send)
        else:
            await self.other(scope, receive, send)
