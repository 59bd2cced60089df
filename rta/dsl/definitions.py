"""A project's definitions: streams, metrics and rollups, checked together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rta.dsl.alert import Alert
from rta.dsl.dashboard import Dashboard
from rta.dsl.funnel import Funnel
from rta.dsl.metric import Metric
from rta.dsl.paths import Paths
from rta.dsl.retention import Retention
from rta.dsl.rollup import Rollup
from rta.dsl.schedule import ReportSchedule
from rta.dsl.shown import card, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean


@dataclass(frozen=True, slots=True)
class Definitions:
    """Everything a project declares, with unique names per kind."""

    streams: tuple[Stream, ...]
    metrics: tuple[Metric, ...]
    rollups: tuple[Rollup, ...]
    alerts: tuple[Alert, ...] = ()
    dashboards: tuple[Dashboard, ...] = ()
    reports: tuple[ReportSchedule, ...] = ()
    funnels: tuple[Funnel, ...] = ()
    retentions: tuple[Retention, ...] = ()
    paths: tuple[Paths, ...] = ()

    def metric(self, name: str) -> Metric:
        """The metric called ``name``; the error lists the valid names."""
        return _named(self.metrics, name, "metric")

    def alert(self, name: str) -> Alert:
        """The alert rule called ``name``."""
        return _named(self.alerts, name, "alert")

    def dashboard(self, name: str) -> Dashboard:
        """The dashboard called ``name``."""
        return _named(self.dashboards, name, "dashboard")

    def stream(self, name: str) -> Stream:
        """The stream called ``name``."""
        return _named(self.streams, name, "stream")

    def funnel(self, name: str) -> Funnel:
        """The funnel called ``name``."""
        return _named(self.funnels, name, "funnel")

    def retention(self, name: str) -> Retention:
        """The retention matrix called ``name``."""
        return _named(self.retentions, name, "retention")

    def path(self, name: str) -> Paths:
        """The paths called ``name``."""
        return _named(self.paths, name, "paths")

    def _kinds(self) -> list[tuple[str, tuple[_Named, ...]]]:
        return [
            ("stream", self.streams), ("metric", self.metrics), ("rollup", self.rollups),
            ("alert", self.alerts), ("dashboard", self.dashboards), ("report", self.reports),
            ("funnel", self.funnels), ("retention", self.retentions), ("paths", self.paths),
        ]  # fmt: skip

    def __repr__(self) -> str:
        """For example ``Definitions(1 stream, 12 metrics, 5 rollups, 3 alerts, 1 dashboard, 1 report)``."""
        counts = [f"{len(items)} {_plural(kind, len(items))}" for kind, items in self._kinds() if items]
        return f"Definitions({', '.join(counts) or 'nothing'})"

    def _repr_html_(self) -> str:
        rows = [(_plural(kind, 2), listed((i.name for i in items), 30)) for kind, items in self._kinds()]
        return card("Definitions", repr(self).removeprefix("Definitions(").removesuffix(")"), rows)


def _plural(kind: str, n: int) -> str:
    return kind if n == 1 or kind.endswith("s") else f"{kind}s"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def _named(items: tuple[_N, ...], name: str, kind: str) -> _N:
    """The item of ``items`` called ``name``; the error names the ``kind`` and the valid names."""
    for item in items:
        if item.name == name:
            return item
    msg = f"no {kind} named {name!r}; {did_you_mean(name, [i.name for i in items])}"
    raise DefinitionError(msg)


def definitions(items: Iterable[object]) -> Definitions:
    """Gather definitions (and what rollups and formulas refer to) into one checked value.

    >>> from rta import stream, metric, rollup, count
    >>> events = stream("events", dimensions={"country": str})
    >>> views = metric("views", count(), stream=events)
    >>> defs = definitions([events, views, rollup("traffic", [views], by=["country"])])
    >>> [m.name for m in defs.metrics]
    ['views']
    """
    streams: dict[str, Stream] = {}
    metrics: dict[str, Metric] = {}
    rollups: dict[str, Rollup] = {}
    alerts: dict[str, Alert] = {}
    dashboards: dict[str, Dashboard] = {}
    reports: dict[str, ReportSchedule] = {}
    funnels: dict[str, Funnel] = {}
    retentions: dict[str, Retention] = {}
    paths: dict[str, Paths] = {}

    def add(table: dict, item: _Named, kind: str) -> None:  # type: ignore[type-arg]
        known = table.get(item.name)
        if known is not None and known != item:
            msg = f"two different {kind}s are named {item.name!r}; {kind} names must be unique in a project"
            raise DefinitionError(msg)
        table[item.name] = item

    def add_metric(item: Metric) -> None:
        for base in item.base_metrics():
            if base is not item:
                add_metric(base)
        if item.stream is not None:
            add(streams, item.stream, "stream")
        add(metrics, item, "metric")

    for item in items:
        if isinstance(item, Stream):
            add(streams, item, "stream")
        elif isinstance(item, Metric):
            add_metric(item)
        elif isinstance(item, Rollup):
            add(streams, item.stream, "stream")
            for stored in item.metrics:
                add_metric(stored)
            add(rollups, item, "rollup")
        elif isinstance(item, Alert):
            add(streams, item.window.stream, "stream")
            if item.window.metric is not None:
                add_metric(item.window.metric)
            if item.window.funnel is not None:
                add(funnels, item.window.funnel.funnel, "funnel")
            add(alerts, item, "alert")
        elif isinstance(item, Dashboard):
            add(dashboards, item, "dashboard")
        elif isinstance(item, ReportSchedule):
            add(reports, item, "report")
        elif isinstance(item, Funnel):
            add(streams, item.stream, "stream")
            add(funnels, item, "funnel")
        elif isinstance(item, Retention):
            add(streams, item.stream, "stream")
            add(retentions, item, "retention")
        elif isinstance(item, Paths):
            add(streams, item.stream, "stream")
            add(paths, item, "paths")
    return Definitions(
        tuple(streams.values()),
        tuple(metrics.values()),
        tuple(rollups.values()),
        tuple(alerts.values()),
        tuple(dashboards.values()),
        tuple(reports.values()),
        tuple(funnels.values()),
        tuple(retentions.values()),
        tuple(paths.values()),
    )
