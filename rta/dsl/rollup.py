"""Rollups: which metrics are pre-aggregated by which dimensions, at which grains, for how long."""

from __future__ import annotations

from dataclasses import dataclass

from rta.dsl.context import register
from rta.dsl.durations import GRAINS, check_grain, parse_duration
from rta.dsl.metric import Metric
from rta.dsl.names import check_name
from rta.dsl.shown import LINE, ROWS, card, code, cut, html_table, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

DEFAULT_KEEP: dict[str, str] = {"1m": "7d", "1h": "90d", "1d": "5y"}


@dataclass(frozen=True, slots=True)
class Rollup:
    """Pre-aggregated metrics of one stream. Build it with :func:`rollup`."""

    name: str
    stream: Stream
    metrics: tuple[Metric, ...]
    by: tuple[str, ...]
    keep: tuple[tuple[str, str], ...]  # (grain, retention), finest grain first

    @property
    def grains(self) -> tuple[str, ...]:
        """Grains this rollup is kept at, finest first."""
        return tuple(g for g, _ in self.keep)

    def retention(self, grain: str) -> str:
        """How long buckets of ``grain`` are kept."""
        return dict(self.keep)[grain]

    def __repr__(self) -> str:
        """For example ``Rollup('traffic': views, visitors by country; keep 1m 7d, 1h 90d)``."""
        split = f"; by {listed(self.by)}" if self.by else ""
        keep = ", ".join(f"{g} {k}" for g, k in self.keep)
        start = f"Rollup({self.name!r}: "
        return start + cut(f"{listed(m.name for m in self.metrics)}{split}; keep {keep}", LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        metrics = html_table(["metric", "definition"], [(m.name, code(m.definition(values=8))) for m in self.metrics], limit=ROWS)
        rows = [
            ("stream", self.stream.name),
            ("by", listed(self.by, 30) or "nothing (one series)"),
            ("keep", ", ".join(f"{g} for {k}" for g, k in self.keep)),
            ("metrics", metrics),
        ]
        return card("Rollup", self.name, rows)


def rollup(
    name: str,
    metrics: list[Metric] | tuple[Metric, ...],
    *,
    by: list[str] | tuple[str, ...] = (),
    keep: dict[str, str] | None = None,
) -> Rollup:
    """Pre-aggregate ``metrics`` by the dimensions ``by`` at each grain of ``keep``.

    ``keep`` maps grains (1m, 1h, 1d) to retention; formulas are expanded to the metrics
    they read. Narrow rollups (few dimensions) make distinct counts fast.

    >>> from rta import stream, metric, count
    >>> events = stream("events", dimensions={"country": str})
    >>> views = metric("views", count(), stream=events)
    >>> rollup("traffic", [views], by=["country"], keep={"1h": "90d"}).keep
    (('1h', '90d'),)
    """
    check_name(name, what="rollup")
    owner = f"rollup {name!r}"
    if not metrics:
        msg = f"{owner}: needs at least one metric"
        raise DefinitionError(msg)
    stored: list[Metric] = []
    for item in metrics:
        if not isinstance(item, Metric):
            msg = f"{owner}: expected metrics, got {item!r}; pass the values returned by metric(...)"
            raise DefinitionError(msg)
        stored.extend(item.base_metrics())
    stored = list(dict.fromkeys(stored))
    streams = {m.stream.name for m in stored if m.stream is not None}
    if len(streams) != 1:
        msg = f"{owner}: all metrics must read one stream, got metrics from {sorted(streams)}; declare one rollup per stream"
        raise DefinitionError(msg)
    source = stored[0].stream
    assert source is not None  # stored metrics always have a stream
    names = [m.name for m in stored]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        msg = f"{owner}: two different metrics are named {dup!r}; metric names must be unique"
        raise DefinitionError(msg)
    dims = tuple(by)
    for dim in dims:
        if source.fields.get(dim) != "dimension":
            valid = [d for d, k in source.fields.items() if k == "dimension"]
            msg = f"{owner}: by= names {dim!r}, which is not a dimension of stream {source.name!r}; {did_you_mean(dim, valid)}"
            raise DefinitionError(msg)
    if len(set(dims)) != len(dims):
        msg = f"{owner}: by= repeats a dimension: {list(dims)!r}"
        raise DefinitionError(msg)
    retention = DEFAULT_KEEP if keep is None else keep
    if not retention:
        msg = f"{owner}: keep= is empty; give at least one grain, e.g. keep={{'1h': '90d'}}"
        raise DefinitionError(msg)
    for grain, period in retention.items():
        check_grain(grain, owner=owner)
        parse_duration(period, what=f"retention of grain {grain!r} in {owner}")
    ordered = tuple((g, retention[g]) for g in GRAINS if g in retention)
    result = Rollup(name, source, tuple(stored), dims, ordered)
    register(result)
    return result
