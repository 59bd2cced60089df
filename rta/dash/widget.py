"""The dashboard in Jupyter: ipywidgets controls, KPI tiles, one offline Altair JupyterChart, tables.

State lives in an immutable :class:`View`; every control, click and breadcrumb button makes a
new view and redraws from the query layer. One JupyterChart holds every chart (each offline
chart carries ~0.9 MB of JavaScript); clicks arrive as its ``_vl_selections`` trait, which is
observed once (assigning ``.chart`` replaces ``.selections`` and every observer on them).

Widget messages can arrive on two threads at once: JupyterLab 4.6 with ipykernel 7 hands them to a
kernel subshell while the main thread may be handling another one. So a change of view is one
atomic step on ``view``, and one refresh runs at a time: a change that arrives while one runs
makes it load again, and data loaded for a view that is no longer wanted is never drawn.
Measured before (JupyterLab, 2 s between steps): range 7d at grain 1m, then grain auto, then
device=mobile overlapped; the slowest refresh, of a view nobody asked for (7d, 1m, mobile),
finished last and overwrote the screen, and the click on a bar was answered 30 s later.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import altair as alt
import ipywidgets as w

from rta.dash import make_view, resolve
from rta.dash.blocks import Block, blocks, scoped_css
from rta.dash.charts import stacked
from rta.dash.data import BoardData, QuerySource, load_board, top_values
from rta.dash.formats import format_number
from rta.dash.view import RANGE_PRESETS, View
from rta.dsl.dashboard import GRAIN_CHOICES, Dashboard
from rta.errors import RtaError

RANGE_LABELS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}


class DashboardWidget(w.VBox):  # type: ignore[misc]
    """A live dashboard over a query source. ``.view`` is what it shows; ``refresh()`` redraws;
    ``live(every)`` refreshes on the kernel's event loop."""

    def __init__(self, source: QuerySource, board: Dashboard, view: View) -> None:
        self.source, self.board, self.view = source, board, view
        self.data: BoardData | None = None
        self._shown: dict[str, Any] | None = None  # the chart templates and data on screen
        self._listed: tuple[Any, ...] | None = None  # what the breadcrumb and the tables under the chart show
        self._lock = threading.Lock()  # guards view, _drawing and _again
        self._drawing = False  # a refresh is running, on some thread
        self._again = False  # asked for while it ran: it loads again before it returns
        self._syncing_on: int | None = None  # the thread setting the controls to the view (their observers ignore it)
        self._task: asyncio.Task[None] | None = None
        self.on_refresh: list[Callable[[BoardData], None]] = []

        presets = [(RANGE_LABELS.get(p, f"Last {p}"), p) for p in dict.fromkeys([*RANGE_PRESETS, view.last or board.last])]
        self.range = w.Dropdown(
            options=[*presets, ("Custom…", "custom")], value=view.last if view.start is None else "custom", description="Range"
        )
        today = datetime.now(UTC).date()
        self.start = w.DatePicker(
            description="From", value=(view.start or datetime.now(UTC) - timedelta(days=7)).date(), layout=w.Layout(display="none")
        )
        self.end = w.DatePicker(description="To", value=(view.end.date() if view.end else today), layout=w.Layout(display="none"))
        self.grain = w.Dropdown(options=list(GRAIN_CHOICES), value=view.grain, description="Grain", layout=w.Layout(width="180px"))
        splits = [("as designed", ""), *((dim, dim) for dim in board.dimensions())]
        self.breakdown = w.Dropdown(
            options=splits, value=view.breakdown or "", description="Break down by", style={"description_width": "90px"}
        )
        self.filters = {
            dim: w.SelectMultiple(options=[], description=dim, rows=4, layout=w.Layout(width="230px"), style={"description_width": "70px"})
            for dim in board.filters
        }
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="100px"))
        self.live_toggle = w.ToggleButton(value=False, description="Live", icon="play", tooltip=f"refresh every {board.refresh} s")
        self.badge = w.HTML()
        self.crumbs = w.HBox()
        self.tiles = w.HTML()
        self.chart = alt.JupyterChart(alt.Chart(alt.Data(values=[])).mark_point(), embed_options={"actions": False})
        self.tables = w.VBox()
        self.errors = w.HTML()

        self.range.observe(self._on_range, names="value")
        self.start.observe(self._on_range, names="value")
        self.end.observe(self._on_range, names="value")
        self.grain.observe(self._on_grain, names="value")
        self.breakdown.observe(self._on_breakdown, names="value")
        for dim, control in self.filters.items():
            control.observe(lambda change, dim=dim: self._on_filter(dim, change["new"]), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.live_toggle.observe(self._on_live, names="value")
        self.chart.observe(self._on_selections, names="_vl_selections")  # a trait of the widget: never replaced
        self._picks: dict[str, Block] = {}

        title = w.HTML(f"<style>{scoped_css()}</style><h3 style='margin:0'>{html.escape(board.title)}</h3>")
        bar = w.HBox(
            [self.range, self.start, self.end, self.grain, self.breakdown, self.refresh_button, self.live_toggle],
            layout=w.Layout(flex_flow="row wrap"),
        )
        super().__init__(
            [
                title,
                bar,
                w.HBox(list(self.filters.values()), layout=w.Layout(flex_flow="row wrap")),
                w.HBox([self.badge, self.crumbs]),
                self.errors,
                self.tiles,
                self.chart,
                self.tables,
            ]
        )
        self.add_class("rta-widget")
        self.refresh()

    # --- state changes -------------------------------------------------------------------
    def set_view(self, view: View) -> None:
        """Show ``view`` (controls follow) and redraw."""
        self._change(lambda _: view)

    def drill(self, dim: str, value: str) -> None:
        """Narrow every panel to ``dim == value`` (what clicking a bar or a row does)."""
        self._change(lambda view: view.drill(dim, value))

    def split_step(self, funnel: str | None, step: int | None = None) -> None:
        """Split the people of ``funnel``'s ``step`` by its panel's dimension (what clicking a step does; None: stop)."""
        self._change(lambda view: view.with_step(funnel, step))

    def clear(self, dim: str | None = None) -> None:
        """Remove the filter on ``dim`` (all filters, and a split funnel step, when None)."""
        self._change(lambda view: view.without(dim) if dim is not None else view.without().with_step(None))

    def _change(self, step: Callable[[View], View]) -> None:
        """Apply ``step`` to the view as it is now (a change made on another thread meanwhile is kept), then redraw."""
        with self._lock:
            self.view = step(self.view)
        self.refresh()

    def _echo(self) -> bool:
        """Whether a control moved because this thread is setting the controls to the view."""
        return self._syncing_on == threading.get_ident()

    def _on_range(self, _: Any) -> None:
        if self._echo():
            return
        custom = self.range.value == "custom"
        for picker in (self.start, self.end):
            picker.layout.display = "" if custom else "none"
        try:
            if custom:
                if self.start.value is None or self.end.value is None:
                    return
                start = datetime.combine(self.start.value, time(), UTC)
                end = datetime.combine(self.end.value, time(), UTC) + timedelta(days=1)
                self._change(lambda view: view.with_range(start=start, end=end))
            else:
                last = self.range.value
                self._change(lambda view: view.with_range(last))
        except RtaError as err:
            self.errors.value = f'<p class="error">{html.escape(str(err))}</p>'

    def _on_grain(self, change: dict[str, Any]) -> None:
        if not self._echo():
            self._change(lambda view: view.with_grain(change["new"]))

    def _on_breakdown(self, change: dict[str, Any]) -> None:
        if not self._echo():
            self._change(lambda view: view.with_breakdown(change["new"]))

    def _on_filter(self, dim: str, values: tuple[str, ...]) -> None:
        if not self._echo():
            self._change(lambda view: view.with_filter(dim, list(values)))

    def _on_selections(self, change: dict[str, Any]) -> None:
        """A click on a bar: the chart's JavaScript sends every selection's state; drill into a newly picked point.

        The point names its dimension (``{"country": "DE"}``), so a message about the chart as it was
        before a redraw still drills by what was clicked."""
        old, new = change["old"] or {}, change["new"] or {}
        for name, block in list(self._picks.items()):
            point = _picked(new.get(name))
            if point is None or point == _picked(old.get(name)):
                continue
            if block.step is not None and isinstance(point.get("step"), int):  # a funnel's step: split its people
                self.split_step(block.step, point["step"])
                return
            for dim, value in point.items():
                if dim in self.board.dimensions() and value is not None:
                    self.drill(dim, str(value))
                    return

    # --- drawing -------------------------------------------------------------------------
    def refresh(self) -> BoardData | None:
        """Query every panel under the current view and redraw; returns what is drawn.

        Asked while a refresh runs (a click handled during a redraw, another thread), it returns
        at once and the running refresh loads again for the newest view before it returns."""
        with self._lock:
            if self._drawing:
                self._again = True
                return self.data
            self._drawing = True
        try:
            while True:
                with self._lock:
                    view, self._again = self.view, False
                data, choices = self._load(view)
                with self._lock:
                    wanted = not self._again and self.view == view
                if wanted:
                    self._apply(data, choices)  # a click seen while drawing asks again
                    with self._lock:
                        if not self._again and self.view == view:
                            self._drawing = False
                            return data
        except BaseException:
            with self._lock:
                self._drawing = False
            raise

    def _load(self, view: View) -> tuple[BoardData, dict[str, list[str]]]:
        return load_board(self.source, self.board, view), {dim: top_values(self.source, self.board, dim, view) for dim in self.filters}

    def _apply(self, data: BoardData, choices: dict[str, list[str]]) -> None:
        self.data = data
        self._syncing_on = threading.get_ident()
        try:
            self._sync_controls(data.view, choices)
        finally:
            self._syncing_on = None
        parts = blocks(data)
        self.badge.value = f'<span class="badge">{html.escape(data.freshness_text())}</span>'
        self.tiles.value = "".join(b.html or "" for b in parts if b.kpi)
        self.errors.value = "".join(f"<b>{html.escape(b.title)}</b>: {b.html}" for b in parts if b.error)
        self._draw_chart([b for b in parts if b.chart is not None])
        shown_tables = [item for item in data.panels if item.panel.kind == "table" and item.frame is not None]
        steps = [(b.title, b.html) for b in parts if b.chart is not None and b.html]  # a funnel's numbers, as in the report
        listed = (
            self.view.filters,
            self.view.step_crumb(),
            tuple((t.panel, t.frame.rows(), None if t.totals is None else t.totals.rows()) for t in shown_tables),  # type: ignore[union-attr]
            tuple(steps),
            tuple(sorted(data.units.items())),
        )
        if listed != self._listed:  # unchanged, they stay: widgets replaced on every live tick raced in the browser
            self._listed = listed
            self.crumbs.children = self._crumb_buttons()
            self.tables.children = [
                *(self._table(item) for item in shown_tables),
                *(w.HTML(f"<h4 style='margin:12px 0 4px'>{html.escape(title)}</h4>{body}") for title, body in steps),
            ]
        for listener in self.on_refresh:
            listener(data)

    def _draw_chart(self, charts: list[Block]) -> None:
        self._picks = {f"pick_{b.key}": b for b in charts if b.drill or b.step}
        shown = {"charts": [b.template for b in charts], "datasets": {k: v for b in charts for k, v in (b.datasets or {}).items()}}
        if shown == self._shown or not charts:
            return  # nothing changed: no redraw, no flicker, selections kept
        self._shown = shown
        # The charts read their rows by name; the rows go straight into the spec, in the same
        # message: validating them through Altair cost 6 of the 8.5 s a 7-day chart at grain 1m
        # (30K rows) took to draw, and the templates were validated once (blocks._template).
        with self.chart.hold_sync(), alt.theme.enable("rta"):
            self.chart.chart = stacked([b.chart for b in charts])
            self.chart.spec = {**self.chart.spec, "datasets": shown["datasets"]}

    def _sync_controls(self, view: View, choices: dict[str, list[str]]) -> None:
        self.range.value = "custom" if view.start is not None else view.last
        self.grain.value = view.grain
        self.breakdown.value = view.breakdown or ""
        chosen = dict(view.filters)
        for dim, control in self.filters.items():
            options = choices.get(dim, [])
            selected = list(chosen.get(dim, ()))
            control.options = list(dict.fromkeys([*selected, *options]))
            control.value = tuple(selected)

    def _crumb_buttons(self) -> tuple[w.Widget, ...]:
        buttons = []
        for (dim, _), text in zip(self.view.filters, self.view.breadcrumb(), strict=True):
            button = w.Button(description=f"{text} ×", tooltip=f"remove the {dim} filter", layout=w.Layout(width="auto"))
            button.on_click(lambda _, dim=dim: self.clear(dim))
            buttons.append(button)
        step = self.view.step_crumb()
        if step is not None:
            button = w.Button(description=f"{step} ×", tooltip="stop splitting the funnel step", layout=w.Layout(width="auto"))
            button.on_click(lambda _: self.split_step(None))
            buttons.append(button)
        if buttons:
            clear = w.Button(description="Clear all", button_style="warning", layout=w.Layout(width="auto"))
            clear.on_click(lambda _: self.clear())
            buttons.append(clear)
        return tuple(buttons)

    def _table(self, item: Any) -> w.Widget:
        """A table whose first column is buttons: clicking one drills into that value."""
        panel, frame, units = item.panel, item.frame, self.data.units if self.data else {}
        columns = [panel.by, *panel.metrics]
        cells: list[w.Widget] = [w.HTML(f"<b>{html.escape(c.replace('_', ' '))}</b>") for c in columns]
        drillable = panel.by in self.board.dimensions()
        for row in frame.iter_rows(named=True):
            value = "" if row[panel.by] is None else str(row[panel.by])
            if drillable:
                button = w.Button(description=value or "(empty)", tooltip=f"filter by {panel.by} = {value}", layout=w.Layout(width="auto"))
                button.on_click(lambda _, v=value: self.drill(panel.by, v))
                cells.append(button)
            else:
                cells.append(w.HTML(html.escape(value or "(empty)")))
            cells += [
                w.HTML(f"<div style='text-align:right'>{html.escape(format_number(row[m], units.get(m)))}</div>") for m in panel.metrics
            ]
        if item.totals is not None and item.totals.height:
            totals = item.totals.row(0, named=True)
            cells.append(w.HTML("<b>Total</b>"))
            cells += [
                w.HTML(f"<div style='text-align:right'><b>{html.escape(format_number(totals.get(m), units.get(m)))}</b></div>")
                for m in panel.metrics
            ]
        grid = w.GridBox(
            cells,
            layout=w.Layout(
                grid_template_columns=f"minmax(160px, auto) repeat({len(panel.metrics)}, minmax(90px, auto))", grid_gap="2px 12px"
            ),
        )
        return w.VBox([w.HTML(f"<h4 style='margin:12px 0 4px'>{html.escape(panel.title)}</h4>"), grid])

    # --- live ----------------------------------------------------------------------------
    def live(self, every: float | None = None) -> asyncio.Task[None] | None:
        """Refresh every ``every`` seconds (the dashboard's refresh by default) as a task on the
        running loop (the kernel's, in Jupyter); queries run in a thread so the kernel stays responsive."""
        self._period = every or self.board.refresh
        if self.live_toggle.value:
            self._start()
        else:
            self.live_toggle.value = True  # the toggle's observer starts the task
        return self._task

    def stop(self) -> None:
        """Stop live refreshing."""
        self.live_toggle.value = False

    def _on_live(self, change: dict[str, Any]) -> None:
        self._start() if change["new"] else self._cancel()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _start(self) -> None:
        self._cancel()
        period = getattr(self, "_period", None) or self.board.refresh
        loop = asyncio.get_event_loop()

        async def tick() -> None:
            while True:
                await asyncio.sleep(period)
                try:  # queries in a thread, so the kernel stays responsive; one refresh at a time, as for a click
                    await loop.run_in_executor(None, self.refresh)
                except RtaError as err:
                    self.errors.value = f'<p class="error">{html.escape(str(err))}</p>'

        self._task = loop.create_task(tick())


def _picked(selection: Any) -> dict[str, Any] | None:
    """The first point of a point selection's state as the chart's JavaScript sends it
    (``{"value": {"vlPoint": {"or": [{"country": "DE"}]}, ...}, "store": [...]}``), or None."""
    value = selection.get("value") if isinstance(selection, dict) else None
    points = value.get("vlPoint", {}).get("or", []) if isinstance(value, dict) else []
    return points[0] if points and isinstance(points[0], dict) else None


def dashboard_widget(source: QuerySource, name: str | Dashboard | None = None, **view: Any) -> DashboardWidget:
    """The widget for a DSL dashboard (by name, or the only one), opened at ``view`` (``last=``, ``where=``...)."""
    alt.JupyterChart.enable_offline()  # no CDN at view time (docs/architecture.md, "Offline charts")
    board = resolve(source, name)
    return DashboardWidget(source, board, make_view(board, **view))
