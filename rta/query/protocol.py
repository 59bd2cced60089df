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

from rta.dsl.shown import ITEMS, Html, block, card, code, html_table, listed, span

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

    def _rows(self) -> list[tuple[str, object]]:
        final = self.newest_final_minute
        return [
            ("newest event", f"{self.newest_event:%Y-%m-%d %H:%M:%S} UTC" if self.newest_event is not None else None),
            ("behind now", span(self.lag_seconds) if self.lag_seconds is not None else None),
            ("last write", f"{self.written_at:%Y-%m-%d %H:%M:%S} UTC" if self.written_at is not None else None),
            ("final through", f"the minute {final:%Y-%m-%d %H:%M} UTC" if final is not None else None),
        ]

    def __repr__(self) -> str:
        """``Freshness: events up to … UTC (7s behind now)``, then when the flow last wrote and which minutes are final."""
        if self.newest_event is None or self.written_at is None:
            return "Freshness: no data written yet"
        lag = f" ({span(self.lag_seconds)} behind now)" if self.lag_seconds is not None else ""
        final = self.newest_final_minute
        settled = f"; final through the minute {final:%Y-%m-%d %H:%M}" if final is not None else ""
        header = f"Freshness: events up to {self.newest_event:%Y-%m-%d %H:%M:%S} UTC{lag}"
        return block(header, [f"last write {self.written_at:%Y-%m-%d %H:%M:%S} UTC{settled}"])

    def _repr_html_(self) -> str:
        if self.newest_event is None or self.written_at is None:
            return card("Freshness", "no data written yet")
        return card("Freshness", f"events up to {self.newest_event:%Y-%m-%d %H:%M:%S} UTC", self._rows())


@dataclass(frozen=True, slots=True)
class Explanation:
    """What answering a query took: tables, rows and bytes read, time, cache."""

    query: MetricQuery
    executed: tuple[Executed, ...]
    seconds: float
    cache: str  # "hit" | "miss"

    def __str__(self) -> str:
        lines = [f"grain {self.query.grain}, {self.query.start:%Y-%m-%d %H:%M} to {self.query.end:%Y-%m-%d %H:%M} UTC, cache {self.cache}"]
        lines += [f"  {_read(e)}" for e in self.executed]
        lines.append(f"total {self.seconds * 1000:.1f} ms")
        return "\n".join(lines)

    def _asked(self, values: int) -> list[tuple[str, str | None]]:
        q = self.query
        return [
            ("by", ", ".join(q.by) or None),
            ("where", q.where.code(values) if q.where is not None else None),
            ("top", f"{q.top:,}" + (f" by {q.order_by}" if q.order_by else "") if q.top is not None else None),
            ("compare", f"with {q.compare}" if q.compare else None),
        ]

    def __repr__(self) -> str:
        """The query and its time, what else it asked (filter, top, comparison), then each SELECT: its table and what it read."""
        q = self.query
        split = f" by {listed(q.by)}" if q.by else ""
        shape = "total" if q.total else f"grain {q.grain}"
        header = (
            f"Explanation: {listed(q.metrics)}{split}, {shape}, {q.start:%Y-%m-%d %H:%M} to {q.end:%Y-%m-%d %H:%M} UTC: "
            f"{self.seconds * 1000:.1f} ms, cache {self.cache}"
        )
        asked = "; ".join(f"{key} {value}" for key, value in self._asked(ITEMS) if value and key != "by")
        reads = [_read(e) for e in self.executed]
        return block(header, [*([asked] if asked else []), *(reads or ["no SELECT ran (the cache answered)"])])

    def _repr_html_(self) -> str:
        q = self.query
        rows: list[tuple[str, object]] = [
            ("range", f"{q.start:%Y-%m-%d %H:%M} to {q.end:%Y-%m-%d %H:%M} UTC, " + ("total" if q.total else f"grain {q.grain}")),
            *((key, code(value) if key == "where" and value else value) for key, value in self._asked(20)),
            ("took", f"{self.seconds * 1000:.1f} ms, cache {self.cache}"),
        ]
        reads = html_table(
            ["table", "rows read", "bytes read", "ms", "SQL"],
            [
                (f"raw events {e.table}: {e.raw_because}" if e.raw_because else e.table, f"{e.rows_read:,}",
                 f"{e.bytes_read:,}" if e.bytes_read else "", f"{e.seconds * 1000:.1f}",
                 Html(f"<details><summary>SQL</summary>{code(e.sql, 2000)}</details>"))
                for e in self.executed
            ],
        )  # fmt: skip
        return card("Explanation", listed(q.metrics, 20), rows, extra=[reads] if self.executed else ())


def _read(e: Executed) -> str:
    """One SELECT: its table and what it read; raw events say so, and why no rollup answered."""
    size = f", {e.bytes_read:,} bytes" if e.bytes_read else ""  # the embedded engine counts no bytes scanned
    if e.raw_because:
        return f"raw events {e.table}: {e.rows_read:,} rows scanned{size} in {e.seconds * 1000:.1f} ms ({e.raw_because})"
    return f"{e.table}: {e.rows_read:,} rows{size} read in {e.seconds * 1000:.1f} ms"


@dataclass(frozen=True, slots=True)
class Answer:
    """A query's frame, the checked query, whether the cache answered it, and a notice (raw events answered, and why)."""

    frame: pl.DataFrame
    query: MetricQuery
    cache_hit: bool
    notice: str | None = None


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

    def funnel(self, name: str, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """A declared funnel's steps: people entering, conversion, drop-off and time to convert."""
        ...

    def retention(self, name: str, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """A declared retention matrix, long: per cohort and period, the cohort's size, the people back and the share."""
        ...

    def paths(self, name: str, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Declared paths: the most common sequences after the anchor event, people and share."""
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
