"""Dashboards as code: panels of metrics, the filters viewers get, the default range.

A dashboard declares what to show; the ``dash`` layer queries and draws it (Jupyter widget,
static report, shared web page), all from the same definition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from rta.dsl.context import register
from rta.dsl.durations import GRAINS, parse_duration
from rta.dsl.funnel import Funnel
from rta.dsl.metric import Metric
from rta.dsl.names import check_name
from rta.dsl.paths import Paths
from rta.dsl.retention import Retention
from rta.dsl.shown import LINE, ROWS, card, cut, html_table, listed, span
from rta.errors import DefinitionError

PanelKind = Literal["kpi", "series", "breakdown", "table", "funnel", "retention", "paths"]
GRAIN_CHOICES = ("auto", *GRAINS)


@dataclass(frozen=True, slots=True)
class Panel:
    """One tile, chart or table of a dashboard. Build it with :func:`kpi`, :func:`timeseries`, :func:`breakdown`,
    :func:`table`, :func:`funnel_bars`, :func:`retention_heatmap` or :func:`paths_flow`."""

    kind: PanelKind
    metrics: tuple[str, ...]
    title: str
    by: str | None = None
    top: int = 10
    compare: bool = False
    funnel: str | None = None  # funnel panels: the declared funnel they draw (``by`` splits a clicked step)
    retention: str | None = None  # retention panels: the declared retention matrix they draw
    paths: str | None = None  # paths panels: the declared paths they list (``top`` of them)

    def titled(self, title: str) -> Panel:
        """A copy with another title."""
        return replace(self, title=title)

    def summary(self) -> str:
        """What the panel shows, for example ``revenue by country top 10``."""
        if self.funnel is not None:
            return f"funnel {self.funnel}" + (f", a step's people by {self.by} top {self.top}" if self.by else "")
        if self.retention is not None:
            return f"retention {self.retention}"
        if self.paths is not None:
            return f"paths {self.paths} top {self.top}"
        split = f" by {self.by} top {self.top}" if self.by else ""
        return f"{listed(self.metrics)}{split}{' vs previous period' if self.compare else ''}"

    def __repr__(self) -> str:
        """For example ``Panel(breakdown 'revenue by country': revenue by country top 10)``."""
        return f"Panel({cut(f'{self.kind} {self.title!r}: {self.summary()}', LINE - 7)})"


def _names(metrics: tuple[Metric | str, ...], what: str) -> tuple[str, ...]:
    if not metrics:
        msg = f"{what}: give at least one metric, e.g. {what}(revenue)"
        raise DefinitionError(msg)
    names = []
    for m in metrics:
        if isinstance(m, Metric):
            names.append(m.name)
        elif isinstance(m, str) and m:
            names.append(m)
        else:
            msg = f"{what}: expected a metric or a metric name, got {m!r}"
            raise DefinitionError(msg)
    return tuple(names)


def _top(top: int, what: str) -> int:
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000:
        msg = f"{what}: top= takes a number of rows from 1 to 1000, got {top!r}"
        raise DefinitionError(msg)
    return top


def kpi(*metrics: Metric | str, title: str | None = None, compare: bool = True) -> Panel:
    """Tiles with each metric's value over the range and its change against the previous period.

    >>> kpi("revenue", "visitors").metrics
    ('revenue', 'visitors')
    """
    names = _names(metrics, "kpi")
    return Panel("kpi", names, title or ", ".join(names), compare=bool(compare))


def timeseries(*metrics: Metric | str, title: str | None = None, compare: bool = False) -> Panel:
    """A line chart of metrics over time; ``compare=True`` overlays the previous period.

    >>> timeseries("page_views", compare=True).compare
    True
    """
    names = _names(metrics, "timeseries")
    return Panel("series", names, title or " and ".join(names), compare=bool(compare))


def breakdown(metric: Metric | str, by: str, *, top: int = 10, title: str | None = None) -> Panel:
    """Bars of the top ``top`` values of dimension ``by`` ranked by ``metric``; clicking one filters the dashboard.

    >>> breakdown("revenue", by="country", top=5).by
    'country'
    """
    (name,) = _names((metric,), "breakdown")
    if not isinstance(by, str) or not by:
        msg = f"breakdown({name!r}): by= takes a dimension name such as 'country', got {by!r}"
        raise DefinitionError(msg)
    return Panel("breakdown", (name,), title or f"{name} by {by}", by=by, top=_top(top, "breakdown"))


def table(*metrics: Metric | str, by: str, top: int = 20, title: str | None = None) -> Panel:
    """A table of metrics per value of ``by`` (ranked by the first metric) with a totals row.

    >>> table("page_views", "purchases", by="campaign").kind
    'table'
    """
    names = _names(metrics, "table")
    if not isinstance(by, str) or not by:
        msg = f"table({', '.join(names)}): by= takes a dimension name such as 'campaign', got {by!r}"
        raise DefinitionError(msg)
    return Panel("table", names, title or f"{', '.join(names)} by {by}", by=by, top=_top(top, "table"))


def funnel_bars(funnel: Funnel | str, *, by: str | None = None, top: int = 10, title: str | None = None) -> Panel:
    """Bars of the people reaching each step of a declared funnel, with conversion and drop-off labelled;
    clicking a step splits its people by ``by`` (the top ``top`` values; the dashboard's breakdown control
    overrides it). Named for what it draws: ``funnel(...)`` declares the funnel itself.

    >>> funnel_bars("checkout", by="device").summary()
    "funnel checkout, a step's people by device top 10"
    """
    name = funnel.name if isinstance(funnel, Funnel) else funnel
    if not isinstance(name, str) or not name:
        msg = f"funnel_bars: expected a funnel or a funnel's name such as 'checkout', got {funnel!r}"
        raise DefinitionError(msg)
    if by is not None and (not isinstance(by, str) or not by):
        msg = f"funnel_bars({name!r}): by= takes a dimension name such as 'device', got {by!r}"
        raise DefinitionError(msg)
    return Panel("funnel", (), title or f"{name} funnel", by=by, top=_top(top, "funnel_bars"), funnel=name)


def _declared(value: object, kind: type[Retention | Paths], what: str, example: str) -> str:
    """The name of a declared definition of ``kind`` given as itself or by name."""
    name = value.name if isinstance(value, (Retention, Paths)) and isinstance(value, kind) else value
    if not isinstance(name, str) or not name:
        msg = f"{what}: expected a {kind.__name__.lower()} or its name such as {example!r}, got {value!r}"
        raise DefinitionError(msg)
    return name


def retention_heatmap(retention: Retention | str, *, title: str | None = None) -> Panel:
    """A declared retention matrix as PostHog's retention table: a row per cohort (its start and size), a column
    per period, each cell shaded by the share of the cohort back then and saying it (its people in the tooltip).

    >>> retention_heatmap("signup_return").summary()
    'retention signup_return'
    """
    name = _declared(retention, Retention, "retention_heatmap", "signup_return")
    return Panel("retention", (), title or f"{name} retention", retention=name)


def paths_flow(paths: Paths | str, *, top: int = 10, title: str | None = None) -> Panel:
    """The ``top`` most common paths of a declared paths definition: bars of the people who took each sequence of steps.

    >>> paths_flow("after_signup", top=5).summary()
    'paths after_signup top 5'
    """
    name = _declared(paths, Paths, "paths_flow", "after_signup")
    return Panel("paths", (), title or f"{name} paths", top=_top(top, "paths_flow"), paths=name)


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A named set of panels with viewer filters and a default range. Build it with :func:`dashboard`."""

    name: str
    panels: tuple[Panel, ...]
    filters: tuple[str, ...] = ()
    last: str = "7d"
    grain: str = "auto"
    refresh: int = 60  # seconds between live refreshes
    title: str = ""
    description: str | None = None

    def metric_names(self) -> tuple[str, ...]:
        """Every metric a panel shows, once, in panel order."""
        return tuple(dict.fromkeys(m for p in self.panels for m in p.metrics))

    def funnel_names(self) -> tuple[str, ...]:
        """Every funnel a panel draws, once, in panel order."""
        return tuple(dict.fromkeys(p.funnel for p in self.panels if p.funnel is not None))

    def retention_names(self) -> tuple[str, ...]:
        """Every retention matrix a panel draws, once, in panel order."""
        return tuple(dict.fromkeys(p.retention for p in self.panels if p.retention is not None))

    def paths_names(self) -> tuple[str, ...]:
        """Every paths definition a panel lists, once, in panel order."""
        return tuple(dict.fromkeys(p.paths for p in self.panels if p.paths is not None))

    def dimensions(self) -> tuple[str, ...]:
        """Dimensions the dashboard filters or splits by."""
        return tuple(dict.fromkeys([*self.filters, *(p.by for p in self.panels if p.by)]))

    def with_panel(self, panel: Panel) -> Dashboard:
        """A copy with ``panel`` appended."""
        return replace(self, panels=(*self.panels, panel))

    def __repr__(self) -> str:
        """For example ``Dashboard('shop': 2 panels, last 7d, grain auto, refresh 1m; filters device)``."""
        filters = f"; filters {listed(self.filters)}" if self.filters else ""
        panels = f"{len(self.panels)} panel{'s' if len(self.panels) != 1 else ''}"
        start = f"Dashboard({self.name!r}: "
        body = f"{panels}, last {self.last}, grain {self.grain}, refresh {span(self.refresh)}{filters}"
        return start + cut(body, LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        panels = html_table(["panel", "title", "shows"], [(p.kind, p.title, p.summary()) for p in self.panels], limit=ROWS)
        rows = [
            ("range", f"last {self.last}, grain {self.grain}, refresh every {span(self.refresh)}"),
            ("filters", listed(self.filters, 20) or None),
            ("description", self.description),
            ("panels", panels),
        ]
        return card("Dashboard", self.name, rows, subtitle=self.title if self.title != self.name else None)


def dashboard(
    name: str,
    panels: list[Panel] | tuple[Panel, ...],
    *,
    filters: list[str] | tuple[str, ...] = (),
    last: str = "7d",
    grain: str = "auto",
    refresh: str = "1m",
    title: str | None = None,
    description: str | None = None,
) -> Dashboard:
    """Declare a dashboard: in Jupyter ``ws.dashboard(name)``, offline ``rta report name``, shared at ``/d/name``.

    >>> d = dashboard("shop", [kpi("revenue"), breakdown("revenue", by="country")], filters=["device"], last="24h")
    >>> d.dimensions(), d.refresh
    (('device', 'country'), 60)
    """
    check_name(name, what="dashboard")
    owner = f"dashboard {name!r}"
    if not panels:
        msg = f"{owner}: give at least one panel, e.g. panels=[kpi(revenue), timeseries(page_views)]"
        raise DefinitionError(msg)
    for p in panels:
        if not isinstance(p, Panel):
            kinds = "kpi(...), timeseries(...), breakdown(...), table(...), retention_heatmap(...), paths_flow(...) or funnel_bars(...)"
            msg = f"{owner}: panels= takes {kinds}, got {p!r}"
            raise DefinitionError(msg)
    for f in filters:
        if not isinstance(f, str) or not f:
            msg = f"{owner}: filters= takes dimension names such as 'country', got {f!r}"
            raise DefinitionError(msg)
    if grain not in GRAIN_CHOICES:
        msg = f"{owner}: unknown grain={grain!r}; valid grains are: {', '.join(GRAIN_CHOICES)}"
        raise DefinitionError(msg)
    parse_duration(last, what=f"{owner} last=")
    every = parse_duration(refresh, what=f"{owner} refresh=")
    if every < 5:
        msg = f"{owner}: refresh={refresh!r} is too often; refresh at most every 5s"
        raise DefinitionError(msg)
    board = Dashboard(name, tuple(panels), tuple(filters), last, grain, every, title or name.replace("_", " ").title(), description)
    register(board)
    return board
