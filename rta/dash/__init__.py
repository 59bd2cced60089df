"""Dashboards: the Jupyter widget, static reports and shared pages, all drawn from DSL dashboards
through the query layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from rta.dash.data import BoardData, QuerySource, load_board
from rta.dash.export import ReportFiles, write_report

__all__ = ["BoardData", "QuerySource", "ReportFiles", "View", "load_board", "export_report", "make_view", "resolve", "write_report"]
from rta.dash.view import View
from rta.dsl.dashboard import Dashboard
from rta.errors import QueryError


def resolve(source: QuerySource, dashboard: str | Dashboard | None) -> Dashboard:
    """A dashboard by name (the only one when ``None``), or the given definition."""
    if isinstance(dashboard, Dashboard):
        return dashboard
    boards = source.plan.definitions.dashboards
    if dashboard is None:
        if len(boards) != 1:
            names = ", ".join(b.name for b in boards) or "none defined"
            msg = f"name the dashboard to show (the project has: {names}); declare one with dashboard('name', panels=[...])"
            raise QueryError(msg)
        return boards[0]
    return source.plan.definitions.dashboard(dashboard)


def make_view(
    board: Dashboard,
    *,
    last: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    grain: str | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
) -> View:
    """The dashboard's default view with the given range, grain and filters."""
    view = View.of(board)
    if start is not None:
        view = view.with_range(start=start, end=end)
    elif last is not None:
        view = view.with_range(last)
    if grain is not None:
        view = view.with_grain(grain)
    for dim, values in (where or {}).items():
        view = view.with_filter(dim, values)
    return view


def export_report(
    source: QuerySource,
    dashboard: str | Dashboard | None = None,
    *,
    out: str | Path = "report.html",
    pdf: str | Path | None = None,
    images: str | Path | None = None,
    image_format: str = "png",
    data: str | Path | None = None,
    data_format: str = "csv",
    **view: object,
) -> ReportFiles:
    """Export a dashboard view as a report: a self-contained HTML file, plus PDF, images and data if asked
    (``last=``, ``where=``... as in :func:`make_view`). The DSL's ``report(...)`` schedules this."""
    board = resolve(source, dashboard)
    loaded: BoardData = load_board(source, board, make_view(board, **view))  # type: ignore[arg-type]
    return write_report(
        loaded,
        Path(out),
        pdf=Path(pdf) if pdf else None,
        images=Path(images) if images else None,
        image_format=image_format,
        data_dir=Path(data) if data else None,
        data_format=data_format,
    )
