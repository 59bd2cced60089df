"""A dashboard's data as blocks: HTML for tiles and tables, Vega-Lite specs for charts.

The report, the shared page and the Jupyter widget all draw these same blocks, so a number
reads the same everywhere.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rta.dash.charts import (
    PALETTE,
    TimeTicks,
    breakdown_chart,
    breakdown_rows,
    metric_colors,
    series_chart,
    series_rows,
    spec,
    stacked,
    time_ticks,
)
from rta.dash.data import BoardData, PanelData
from rta.dash.formats import format_change, format_number
from rta.dash.funnel_blocks import funnel_rows, funnel_table, funnel_template, split_rows
from rta.dash.paths_blocks import paths_rows, paths_subtitle, paths_template
from rta.dash.retention_blocks import retention_rows, retention_template

CSS = """
:root { --ink:#202124; --muted:#5f6368; --line:#e3e6e8; --up:#188038; --down:#c5221f; --accent:#4c78a8; }
* { box-sizing: border-box; }
body { font: 14px Inter, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f8f9fa; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 13px; display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.badge { border-radius: 10px; padding: 1px 8px; background: #e6f4ea; color: var(--up); font-size: 12px; }
.badge.stale { background: #fce8e6; color: var(--down); }
.crumbs { margin: 10px 0 0; display: flex; gap: 6px; flex-wrap: wrap; }
.crumb { background: #e8f0fe; color: #174ea6; border-radius: 12px; padding: 2px 10px; font-size: 12px; }
.crumb a { color: inherit; text-decoration: none; margin-left: 4px; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; overflow-x: auto; }
.card.wide { grid-column: 1 / -1; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 16px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 170px; flex: 1; }
.tile .name { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { font-size: 26px; font-weight: 600; margin: 2px 0; font-variant-numeric: tabular-nums; }
.tile .change { font-size: 12px; color: var(--muted); }
.tile .change.up { color: var(--up); } .tile .change.down { color: var(--down); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; cursor: pointer; user-select: none; }
tr[data-value] { cursor: pointer; } tr[data-value]:hover td { background: #f1f3f4; }
tfoot td { font-weight: 600; border-top: 2px solid var(--line); }
h2 { font-size: 13px; margin: 0 0 8px; font-weight: 600; }
.error { color: var(--down); font-size: 13px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media print { body { background: #fff; } .card, .tile { break-inside: avoid; } }
"""


def scoped_css(scope: str = ".rta-widget") -> str:
    """The tile, badge and error rules under ``scope``: inside JupyterLab, page-wide rules would restyle the app.

    >>> scoped_css().splitlines()[1]
    '.rta-widget .badge { border-radius: 10px; padding: 1px 8px; background: #e6f4ea; color: var(--up); font-size: 12px; }'
    """
    lines = [line.replace(":root", scope) for line in CSS.splitlines() if line.startswith(":root")]
    for line in CSS.splitlines():
        if line.startswith((".badge", ".tile", ".error")):
            lines.append(re.sub(r"(^|\} )(?=\.)", lambda m: f"{m.group(1)}{scope} ", line))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Block:
    """One drawable piece: ``html`` (tiles, tables, errors) or an Altair ``chart``; ``drill`` names the dimension a click filters by."""

    key: str
    title: str
    html: str | None = None
    chart: Any = None  # an Altair chart reading the named datasets below
    drill: str | None = None
    wide: bool = False
    kpi: bool = False
    error: bool = False
    template: dict[str, Any] | None = None  # the chart's validated spec, without data
    datasets: dict[str, list[dict[str, Any]]] | None = None
    step: str | None = None  # funnels: the funnel whose step a click splits (the page and the widget set View.step)

    @property
    def spec(self) -> dict[str, Any] | None:
        """The chart's Vega-Lite spec in the rta theme, its data inline."""
        return None if self.template is None else {**self.template, "datasets": self.datasets or {}}


@functools.lru_cache(maxsize=256)
def _template(kind: str, key: str, metrics: tuple[str, ...], by: str | None, units: tuple[str | None, ...], colors: tuple[str, ...],
              compare: bool, title: str, select: str | None, bars: int,
              ticks: TimeTicks = "hours") -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """A panel's chart over named datasets, and its spec: built and validated once per shape, not per refresh
    (Altair's schema validation costs far more than the queries a cached dashboard needs)."""
    if kind == "breakdown":
        assert by is not None
        chart: Any = breakdown_chart(None, metrics[0], by, unit=units[0], color=colors[0], title=title, select=select, data=key, bars=bars)
    else:
        charts = [
            series_chart(None, m, unit=u, color=c, compare=compare, title=title if len(metrics) == 1 else m,
                         height=110 if len(metrics) > 1 else 180, data=f"{key}_{m}", ticks=ticks)
            for m, u, c in zip(metrics, units, colors, strict=True)
        ]  # fmt: skip
        chart = charts[0] if len(charts) == 1 else stacked(charts, title)
    return chart, spec(chart)


def _tiles(data: BoardData, item: PanelData) -> str:
    assert item.frame is not None
    row = item.frame.row(0, named=True) if item.frame.height else {}
    tiles = []
    for name in item.panel.metrics:
        unit = data.units.get(name)
        change, sign = format_change(row.get(name), row.get(f"{name}_previous"), unit) if item.panel.compare else ("", 0)
        css = "up" if sign > 0 else "down" if sign < 0 else ""
        note = f'<div class="change {css}">{html.escape(change)} vs previous period</div>' if item.panel.compare else ""
        tiles.append(
            f'<div class="tile" data-metric="{html.escape(name)}"><div class="name">{html.escape(name.replace("_", " "))}</div>'
            f'<div class="value">{html.escape(format_number(row.get(name), unit))}</div>{note}</div>'
        )
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def _table(data: BoardData, item: PanelData, drill: bool) -> str:
    assert item.frame is not None and item.panel.by is not None
    by, metrics = item.panel.by, item.panel.metrics
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in (by, *metrics))
    body = []
    for row in item.frame.iter_rows(named=True):
        value = "" if row[by] is None else str(row[by])
        attrs = f' data-dim="{html.escape(by)}" data-value="{html.escape(value)}"' if drill else ""
        cells = "".join(
            f'<td data-sort="{row[m] if row[m] is not None else ""}">{html.escape(format_number(row[m], data.units.get(m)))}</td>'
            for m in metrics
        )
        body.append(f"<tr{attrs}><td>{html.escape(value or '(empty)')}</td>{cells}</tr>")
    foot = ""
    if item.totals is not None and item.totals.height:
        totals = item.totals.row(0, named=True)
        foot = (
            "<tfoot><tr><td>Total</td>"
            + "".join(f"<td>{html.escape(format_number(totals.get(m), data.units.get(m)))}</td>" for m in metrics)
            + "</tr></tfoot>"
        )
    return f'<table class="rta-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>{foot}</table>'


def blocks(data: BoardData, *, drill: bool = True) -> list[Block]:
    """The dashboard's blocks in panel order; a multi-metric series becomes one chart per metric."""
    colors = metric_colors(data.board.metric_names())
    out: list[Block] = []
    for i, item in enumerate(data.panels):
        panel = item.panel
        key = f"p{i}"
        if item.error is not None or item.frame is None:
            out.append(Block(key, panel.title, html=f'<p class="error">{html.escape(item.error or "no data")}</p>', wide=True, error=True))
        elif panel.kind == "funnel":
            out += _funnel_blocks(data, item, key, PALETTE[0], drill)
        elif panel.kind == "retention":
            columns, cells = retention_rows(item.frame, item.every)
            chart, template = retention_template(key, panel.title, columns, item.frame["cohort"].n_unique())
            out.append(Block(key, panel.title, chart=chart, template=template, datasets={key: cells}))
        elif panel.kind == "paths":
            chart, template = paths_template(key, panel.title, paths_subtitle(item.frame), item.frame.height)
            out.append(Block(key, panel.title, chart=chart, template=template, datasets={key: paths_rows(item.frame)}))
        elif panel.kind == "kpi":
            out.append(Block(key, panel.title, html=_tiles(data, item), wide=True, kpi=True))
        elif panel.kind == "table":
            can_drill = drill and panel.by in data.board.dimensions()
            out.append(Block(key, panel.title, html=_table(data, item, can_drill), drill=panel.by if can_drill else None, wide=True))
        else:
            units = tuple(data.units.get(m) for m in panel.metrics)
            shades = tuple(colors[m] for m in panel.metrics)
            if panel.kind == "breakdown":
                assert panel.by is not None
                rows = {key: breakdown_rows(item.frame, panel.metrics[0], panel.by)}
                select = f"pick_{key}" if drill else None
                chart, template = _template(
                    "breakdown", key, panel.metrics, panel.by, units, shades, False, panel.title, select, len(rows[key])
                )
            else:
                rows = {f"{key}_{m}": series_rows(item.frame, m, panel.compare) for m in panel.metrics}
                chart, template = _template(
                    "series", key, panel.metrics, None, units, shades, panel.compare, panel.title, None, 0, _ticks(data, item)
                )
            drills = panel.by if panel.kind == "breakdown" and drill else None
            out.append(Block(key, panel.title, chart=chart, drill=drills, template=template, datasets=rows))
    return out


def _ticks(data: BoardData, item: PanelData) -> TimeTicks:
    """How the time axis of a series is labelled: by the span the panel answered (its own, when it kept one)."""
    options, moment = item.options or {}, data.moment
    start, end = options.get("start"), options.get("end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        start, end = (moment.start, moment.end) if moment is not None else (None, None)
    return time_ticks((end - start).total_seconds()) if start is not None and end is not None else "hours"


def _funnel_blocks(data: BoardData, item: PanelData, key: str, color: str, drill: bool) -> list[Block]:
    """The funnel's bars with its table under them, and, when one of its steps is clicked, that step's people by a dimension."""
    assert item.frame is not None and item.panel.funnel is not None
    panel, view = item.panel, data.view
    picked = view.step[1] if view.step is not None and view.step[0] == panel.funnel else None
    select = f"pick_{key}" if drill and panel.by is not None else None
    chart, template = funnel_template(key, panel.title, color, select, panel.by)
    rows = {key: funnel_rows(item.frame, picked)}
    shown = [Block(key, panel.title, html=funnel_table(item.frame), chart=chart, template=template, datasets=rows,
                   step=panel.funnel if select else None)]  # fmt: skip
    if picked is None or panel.by is None or item.split is None:
        return shown
    name = next((r["name"] for r in rows[key] if r["step"] == picked), None)
    split_key = f"{key}_step"
    title = f"{panel.funnel} step {picked}" + (f" ({name})" if name else "") + f": people by {panel.by}"
    if name is None:
        error = f"funnel {panel.funnel!r} has {item.frame.height} steps; there is no step {picked} to split"
        return [*shown, Block(split_key, title, html=f'<p class="error">{html.escape(error)}</p>', wide=True, error=True)]
    people = split_rows(item.split, panel.by, picked, panel.top)
    can_drill = drill and panel.by in data.board.dimensions()
    split_chart, split_template = _template(
        "breakdown",
        split_key,
        ("people",),
        panel.by,
        (None,),
        (color,),
        False,
        title,
        f"pick_{split_key}" if can_drill else None,
        len(people),
    )
    split = Block(split_key, title, chart=split_chart, drill=panel.by if can_drill else None, template=split_template,
                  datasets={split_key: people})  # fmt: skip
    return [*shown, split]


def header_html(data: BoardData, *, live: bool = False) -> str:
    """Title, range, grain, filters, freshness."""
    board, view = data.board, data.view
    lag = data.lag_seconds
    stale = lag is None or lag > max(120, 3 * board.refresh)
    crumbs = "".join(
        f'<span class="crumb" data-dim="{html.escape(dim)}">{html.escape(text)}'
        + (f'<a href="#" data-clear="{html.escape(dim)}" title="remove">×</a>' if live else "")
        + "</span>"
        for (dim, _), text in zip(view.filters, view.breadcrumb(), strict=True)
    )
    step = view.step_crumb()
    if step is not None:  # a clicked funnel step: its split shows until this is removed
        crumbs += (
            f'<span class="crumb" data-step="{html.escape(step)}">{html.escape(step)}'
            + ('<a href="#" data-clear="step" title="remove">×</a>' if live else "")
            + "</span>"
        )
    if crumbs and live:
        crumbs += '<span class="crumb"><a href="#" data-clear="*">clear all</a></span>'
    return (
        f"<header><h1>{html.escape(board.title)}</h1>"
        f'<div class="meta"><span>{html.escape(view.describe_range(data.generated_at))}</span><span>grain {html.escape(view.grain)}</span>'
        f'<span class="badge{" stale" if stale else ""}" id="rta-freshness">{html.escape(data.freshness_text())}</span>'
        f"<span>times in UTC</span></div>" + (f'<div class="crumbs">{crumbs}</div>' if crumbs else "") + "</header>"
    )
