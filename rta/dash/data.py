"""A dashboard's data: one query per panel through the query layer, run side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from rta.compiler.plan import Plan
from rta.dash.view import View
from rta.dsl.dashboard import Dashboard, Panel
from rta.errors import RtaError


class Freshness(Protocol):
    @property
    def newest_event(self) -> datetime | None: ...

    @property
    def lag_seconds(self) -> float | None: ...


class QuerySource(Protocol):
    """What dashboards read through: a workspace (direct or over the REST API)."""

    @property
    def plan(self) -> Plan: ...

    def query(self, metrics: str | list[str], **options: Any) -> pl.DataFrame: ...

    def freshness(self) -> Freshness: ...


@dataclass(frozen=True, slots=True)
class PanelData:
    """A panel's frame, or why it could not be answered."""

    panel: Panel
    frame: pl.DataFrame | None
    totals: pl.DataFrame | None = None  # tables: the totals row
    error: str | None = None


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


def _load(source: QuerySource, panel: Panel, view: View) -> PanelData:
    panel = effective_panel(panel, view)
    try:
        frame = source.query(list(panel.metrics), **panel_options(panel, view))
        totals = None
        if panel.kind == "table":
            totals = source.query(list(panel.metrics), **{**view.range_options(), "total": True, "where": view.where() or None})
        return PanelData(panel, pl.DataFrame(frame), None if totals is None else pl.DataFrame(totals))
    except RtaError as err:
        return PanelData(panel, None, error=str(err))


def load_board(source: QuerySource, board: Dashboard, view: View, *, workers: int = 4) -> BoardData:
    """Query every panel of ``board`` under ``view``; a panel that cannot be answered carries its error."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rta-dash") as pool:
        panels = tuple(pool.map(lambda p: _load(source, p, view), board.panels))
    fresh = source.freshness()
    units = {name: source.plan.definitions.metric(name).unit for name in board.metric_names()}
    return BoardData(board, view, panels, units, fresh.newest_event, fresh.lag_seconds, datetime.now(UTC))


def top_values(source: QuerySource, board: Dashboard, dim: str, view: View, limit: int = 20) -> list[str]:
    """The most common values of ``dim`` under the other filters (choices for a filter control)."""
    ranked = next((m for p in board.panels if p.by == dim for m in p.metrics), board.metric_names()[0])
    others = view.without(dim)
    try:
        frame = source.query(
            [ranked], **{**others.range_options(), "total": True, "by": dim, "top": limit, "where": others.where() or None}
        )
    except RtaError:
        return []
    return [str(v) for v in frame[dim].to_list() if v is not None]
