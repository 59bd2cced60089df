"""The workspace as the layers above queries see it: what they call on one, and what it answers with.

The workspace itself (:class:`rta.workspace.Workspace`, made by ``rta.connect``) sits above the
dashboards and alerts it offers from a notebook; those layers, and the query API, are written
against :class:`Workspace` here, which it satisfies, so no import points up
(``docs/architecture.md``, "Layers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import polars as pl

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from rta.compiler.plan import Plan
    from rta.project import Project
    from rta.query.metric_query import Executed, MetricQuery
    from rta.query.request import Asked

# The watermark trails the newest accepted event by this much: events that arrive a little
# out of order still land before their bucket is called final. Later ones still count in
# their own bucket, but charts and alerts have treated its value as settled.
SETTLE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current the store is.

    ``written_at`` is when the flow last wrote; ``newest_event`` the newest event it accepted
    (never ahead of that write); ``watermark`` = ``newest_event`` minus the settle time:
    every bucket ending at or before it is final. ``lag_seconds`` is how far the newest
    event trails now.
    """

    written_at: datetime | None
    newest_event: datetime | None
    lag_seconds: float | None

    @property
    def watermark(self) -> datetime | None:
        """Buckets ending at or before this are final."""
        return None if self.newest_event is None else self.newest_event - timedelta(seconds=SETTLE_SECONDS)

    @property
    def newest_final_minute(self) -> datetime | None:
        """The start of the newest minute that is final."""
        mark = self.watermark
        return None if mark is None else datetime.fromtimestamp(int(mark.timestamp()) // 60 * 60 - 60, UTC)

    def __str__(self) -> str:
        if self.newest_event is None or self.written_at is None:
            return "no data written yet"
        return f"events up to {self.newest_event:%Y-%m-%d %H:%M:%S} UTC ({self.lag_seconds:.0f}s behind now)"


@dataclass(frozen=True, slots=True)
class Explanation:
    """What answering a query took: tables, rows and bytes read, time, cache."""

    query: MetricQuery
    executed: tuple[Executed, ...]
    seconds: float
    cache: str  # "hit" | "miss"

    def __str__(self) -> str:
        lines = [f"grain {self.query.grain}, {self.query.start:%Y-%m-%d %H:%M} to {self.query.end:%Y-%m-%d %H:%M} UTC, cache {self.cache}"]
        lines += [f"  {e.table}: {e.rows_read:,} rows, {e.bytes_read:,} bytes read in {e.seconds * 1000:.1f} ms" for e in self.executed]
        lines.append(f"total {self.seconds * 1000:.1f} ms")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Answer:
    """A query's frame, the checked query, and whether the cache answered it."""

    frame: pl.DataFrame
    query: MetricQuery
    cache_hit: bool


class Workspace(Protocol):
    """A project's definitions and store, queried: what alerts, dashboard pages and the query API call."""

    @property
    def project(self) -> Project: ...

    @property
    def plan(self) -> Plan: ...

    def query(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Metrics by bucket (and dimensions), with a ``final`` column."""
        ...

    def answer(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Answer:
        """Like :meth:`query`, with the checked query and whether the cache answered."""
        ...

    def cached_answer(self, metrics: Asked, **options: object) -> Answer | None:
        """The answer if it is cached, without touching the store."""
        ...

    def explain(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Explanation:
        """Answer the query and tell which tables served it, what they read, how long it took."""
        ...

    def sql(self, text: str) -> pl.DataFrame:
        """One read-only SELECT over the project's tables."""
        ...

    def read(self, sql: str, params: Mapping[str, object]) -> pl.DataFrame:
        """A read-only statement rta built itself (values bound as parameters), with the console's limits."""
        ...

    def freshness(self, now: datetime | None = None, *, stream: str | None = None) -> Freshness:
        """When the flow last wrote and how far its watermark has come."""
        ...

    def arrivals(self, stream: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Events ``stream`` accepted per minute of arrival in ``[start, end)``."""
        ...

    def data_version(self) -> object:
        """When the flow last wrote, and its tally (changes with every write)."""
        ...


class OwningWorkspace(Workspace, Protocol):
    """A workspace in the process that holds the store: what the live alert engine writes through."""

    @property
    def client(self) -> Client: ...
