"""A dashboard's data: the panels' queries through the query layer, run side by side, all of one moment.

Every panel of one rendering (a page, a report, a widget refresh) reads the same moment:

- **One range.** The clock is read once; each panel's query is checked at that instant, and all
  of them then ask for the one range that covers them, ``[start, end)`` on the boundaries of the
  coarsest grain among them (a day boundary is an hour's and a minute's too), each at its own
  grain. Before, each query read the clock itself and aligned the range to its own grain, so a
  tile over ``last 24h`` at the hour grain and a breakdown at the minute grain summed different
  spans. A panel the wider range cannot be answered for (7 days of minutes are kept, and the
  range starts on an hour) keeps its own span.
- **One set of totals.** The KPI tiles and the Total rows of tables are the totals of the view:
  one query answers all of them (the union of their metrics, compared with the previous period
  if a tile asks), so a tile and a Total row are the same number by construction. Measured
  before, on ``rta run`` with 4,000 events arriving over 8 s: a rendering showed purchases 250
  in the tile and 450 in the Total row; the two were separate queries answered at different
  moments (one of them from the query cache, filled earlier under the same store version).
- **One watermark.** Freshness is read once, first, and which buckets are final follows from it
  for every panel.
- **Fresh reads.** A rendering asks the store directly (``cache=False``): a cached answer is
  keyed by the store version as last seen, which may have been filled a write earlier than its
  neighbours. The shared page caches whole renderings per view and version instead.

What ClickHouse does not give is one snapshot across statements, and the flow writes each table
in its own insert: panels read from different tables (a breakdown from a rollup by country, the
totals from the overall one) can still differ by the events written while one rendering runs
(its queries take tens of milliseconds together).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import polars as pl

from rta.compiler.plan import Plan
from rta.compiler.sessions_ddl import SESSION_METRIC_UNITS
from rta.dash.funnel_data import load_funnel
from rta.dash.person_data import load_person
from rta.dash.view import View
from rta.dsl.dashboard import Dashboard, Panel
from rta.dsl.durations import GRAINS
from rta.errors import RtaError
from rta.query.metric_query import MetricQuery
from rta.query.protocol import SETTLE_SECONDS
from rta.query.request import QueryRequest
from rta.query.session_metrics import check_query


class Freshness(Protocol):
    @property
    def newest_event(self) -> datetime | None: ...

    @property
    def lag_seconds(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Moment:
    """What every panel of one rendering reads: the clock read once, the one range, the watermark."""

    now: datetime
    start: datetime | None  # None: no panel's query could be checked
    end: datetime | None
    watermark: datetime | None  # buckets ending at or before it are final


class QuerySource(Protocol):
    """What dashboards read through: a workspace (direct or over the REST API)."""

    @property
    def plan(self) -> Plan: ...

    def query(self, metrics: str | list[str], **options: Any) -> pl.DataFrame: ...

    def funnel(self, name: str, **options: Any) -> pl.DataFrame: ...

    def retention(self, name: str, **options: Any) -> pl.DataFrame: ...

    def paths(self, name: str, **options: Any) -> pl.DataFrame: ...

    def freshness(self) -> Freshness: ...


@dataclass(frozen=True, slots=True)
class PanelData:
    """A panel's frame, or why it could not be answered."""

    panel: Panel
    frame: pl.DataFrame | None
    totals: pl.DataFrame | None = None  # tables: the totals row
    error: str | None = None
    options: dict[str, Any] | None = None  # what the frame answered (query options), for checks and exports
    split: pl.DataFrame | None = None  # funnels: the clicked step's funnel split by the panel's ``by`` (every step, every group)
    every: str | None = None  # retention: the declared period ("1d"), which names the columns


@dataclass(frozen=True, slots=True)
class BoardData:
    """Everything needed to draw a dashboard once."""

    board: Dashboard
    view: View
    panels: tuple[PanelData, ...]
    units: dict[str, str | None]
    newest_event: datetime | None
    lag_seconds: float | None
    generated_at: datetime
    moment: Moment | None = None

    def freshness_text(self) -> str:
        """``data up to 14:02:10 UTC (3 s behind)`` or ``no data yet``."""
        if self.newest_event is None or self.lag_seconds is None:
            return "no data yet"
        lag = self.lag_seconds
        behind = f"{lag:.0f} s" if lag < 120 else f"{lag / 60:.0f} min" if lag < 7200 else f"{lag / 3600:.0f} h"
        return f"data up to {self.newest_event:%Y-%m-%d %H:%M:%S} UTC ({behind} behind)"


def panel_options(panel: Panel, view: View) -> dict[str, Any]:
    """The query options that answer ``panel`` under ``view``."""
    options: dict[str, Any] = {**view.range_options(), "where": view.where() or None}
    if panel.kind == "kpi":
        options |= {"total": True, "compare": "previous_period" if panel.compare else None}
    elif panel.kind == "series":
        options |= {"grain": view.grain, "compare": "previous_period" if panel.compare else None}
    else:  # breakdown, table
        options |= {"total": True, "by": panel.by, "top": panel.top}
    return {k: v for k, v in options.items() if v is not None}


def effective_panel(panel: Panel, view: View) -> Panel:
    """The panel as the view shows it: breakdowns split by the view's breakdown dimension, if it has one."""
    if panel.kind != "breakdown" or view.breakdown is None or view.breakdown == panel.by:
        return panel
    return replace(panel, by=view.breakdown, title=f"{panel.metrics[0]} by {view.breakdown}")


PERSON_KINDS = ("funnel", "retention", "paths")  # answered per person from raw events, each on its own
Ask = tuple[tuple[str, ...], str]  # metrics and options (as JSON: a key): one query of a rendering


def _ask(metrics: tuple[str, ...], options: dict[str, Any]) -> Ask:
    return metrics, json.dumps(options, sort_keys=True, default=str)


def _options(ask: Ask) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(ask[1])
    for name in ("start", "end"):
        if isinstance(options.get(name), str):
            options[name] = datetime.fromisoformat(options[name])
    return options


def _totals_ask(panels: list[Panel], view: View) -> Ask | None:
    """The view's totals, which the KPI tiles and the tables' Total rows all show: one query for all of them."""
    showing = [p for p in panels if p.kind in ("kpi", "table")]
    if not showing:
        return None
    metrics = tuple(dict.fromkeys(m for p in showing for m in p.metrics))
    compare = "previous_period" if any(p.kind == "kpi" and p.compare for p in showing) else None
    options = {**view.range_options(), "where": view.where() or None, "total": True, "compare": compare}
    return _ask(metrics, {k: v for k, v in options.items() if v is not None})


def _own_totals(panel: Panel, view: View) -> Ask:
    """A table's Total row on its own (when the shared totals cannot be asked)."""
    return _ask(panel.metrics, {**view.range_options(), "total": True, **({"where": view.where()} if view.where() else {})})


def _checked(plan: Plan, ask: Ask, now: datetime) -> MetricQuery | str:
    try:
        return check_query(plan, QueryRequest.of(list(ask[0]), **_options(ask)), now=now)  # the project's metrics or visits'
    except RtaError as err:
        return str(err)


def _pinned(ask: Ask, q: MetricQuery, start: datetime, end: datetime) -> dict[str, Any]:
    """The ask over the rendering's range at the grain it was checked at: the same span for every panel."""
    options = {k: v for k, v in _options(ask).items() if k not in ("last", "start", "end", "grain")}
    return {**options, "start": start, "end": end, "grain": q.grain}


def _final(frame: pl.DataFrame, q: MetricQuery, end: datetime, watermark: datetime | None) -> pl.DataFrame:
    """Which buckets are final, from the rendering's one watermark (as the workspace tells it)."""
    if watermark is None:
        flag = pl.lit(False)
    elif q.total or "bucket" not in frame.columns:
        flag = pl.lit(end <= watermark)
    else:
        flag = pl.col("bucket") <= watermark - timedelta(seconds=GRAINS[q.grain])
    return frame.with_columns(flag.alias("final"))


def load_board(source: QuerySource, board: Dashboard, view: View, *, workers: int = 4, now: datetime | None = None) -> BoardData:
    """Query every panel of ``board`` under ``view``, all of one moment (see the module's doc); a
    panel that cannot be answered carries its error."""
    now = now or datetime.now(UTC)
    fresh = source.freshness()  # first: what is final follows from it, and what is read after is at least as new
    newest = fresh.newest_event
    watermark = None if newest is None else newest - timedelta(seconds=SETTLE_SECONDS)
    panels = [effective_panel(p, view) for p in board.panels]
    plan = source.plan
    shared = _totals_ask(panels, view)
    if shared is not None and not isinstance(_checked(plan, shared, now), MetricQuery):
        shared = None  # one panel's metric cannot be totalled under this view: each panel asks on its own and says why
    uses: list[dict[str, Ask]] = []  # per panel: its frame's ask and, for tables, its totals' ask
    for panel in panels:
        if panel.kind in PERSON_KINDS:
            uses.append({})  # not a metric query: asked on its own below
        elif panel.kind == "kpi":
            uses.append({"frame": shared or _ask(panel.metrics, panel_options(panel, view))})
        elif panel.kind == "table":
            uses.append({"frame": _ask(panel.metrics, panel_options(panel, view)), "totals": shared or _own_totals(panel, view)})
        else:
            uses.append({"frame": _ask(panel.metrics, panel_options(panel, view))})
    asks = list(dict.fromkeys(a for use in uses for a in use.values()))
    checked = {a: _checked(plan, a, now) for a in asks}
    queries = [q for q in checked.values() if isinstance(q, MetricQuery)]
    start = min((q.start for q in queries), default=None)
    end = max((q.end for q in queries), default=None)

    def run(ask: Ask) -> tuple[pl.DataFrame | None, str | None, dict[str, Any] | None]:
        q = checked[ask]
        if not isinstance(q, MetricQuery) or start is None or end is None:
            return None, str(q), None
        options = _pinned(ask, q, start, end)
        try:
            frame = pl.DataFrame(source.query(list(ask[0]), cache=False, **options))
        except RtaError as err:
            if (q.start, q.end) == (start, end):
                return None, str(err), options
            # The wider range can reach past what a grain keeps (7 days of minutes, and the range
            # starts on an hour): this panel then shows its own span, as it did on its own.
            options = {**options, "start": q.start, "end": q.end}
            try:
                frame = pl.DataFrame(source.query(list(ask[0]), cache=False, **options))
            except RtaError:
                return None, str(err), options
        return _final(frame, q, options["end"], watermark), None, options

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rta-dash") as pool:
        funnels = {i: pool.submit(load_funnel, source, p, view, start, end, now) for i, p in enumerate(panels) if p.kind == "funnel"}
        people = {
            i: pool.submit(load_person, source, p, view, start, end, now) for i, p in enumerate(panels) if p.kind in ("retention", "paths")
        }
        answers = dict(zip(asks, pool.map(run, asks), strict=True))
    loaded = []
    for i, (panel, use) in enumerate(zip(panels, uses, strict=True)):
        if i in funnels:
            f = funnels[i].result()
            loaded.append(PanelData(f.panel, f.frame, error=f.error, options=f.options, split=f.split))
            continue
        if i in people:
            a = people[i].result()
            loaded.append(PanelData(panel, a.frame, error=a.error, options=a.options, every=a.every))
            continue
        frame, error, options = answers[use["frame"]]
        totals, totals_error = (answers[use["totals"]][:2]) if "totals" in use else (None, None)
        if error is not None or totals_error is not None:
            loaded.append(PanelData(panel, None, error=error or totals_error))
            continue
        assert frame is not None
        if panel.kind == "kpi":  # its columns of the shared totals
            previous = [f"{m}_previous" for m in panel.metrics if panel.compare and f"{m}_previous" in frame.columns]
            frame = frame.select(*panel.metrics, *previous, "final")
        if totals is not None:
            totals = totals.select(*panel.metrics)
        loaded.append(PanelData(panel, frame, totals, options=options))
    own = {m.name: m.unit for m in plan.definitions.metrics}  # a project's metric wins over a session metric of the same name
    units = {name: own[name] if name in own else SESSION_METRIC_UNITS.get(name) for name in board.metric_names()}
    moment = Moment(now, start, end, watermark)
    return BoardData(board, view, tuple(loaded), units, newest, fresh.lag_seconds, now, moment)


def top_values(source: QuerySource, board: Dashboard, dim: str, view: View, limit: int = 20) -> list[str]:
    """The most common values of ``dim`` under the other filters (choices for a filter control)."""
    ranked = next((m for p in board.panels if p.by == dim for m in p.metrics), next(iter(board.metric_names()), None))
    if ranked is None:  # only per-person panels: no metric to rank the values by
        return []
    others = view.without(dim)
    try:
        frame = source.query(
            [ranked], **{**others.range_options(), "total": True, "by": dim, "top": limit, "where": others.where() or None}
        )
    except RtaError:
        return []
    return [str(v) for v in frame[dim].to_list() if v is not None]
