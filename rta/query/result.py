"""Query results that show themselves: a table plus a sparkline per metric in Jupyter, a rich table in a terminal.

A plain Polars frame in every other respect (operations on it return ordinary frames). Its repr
is one line saying what the frame holds (metrics, split, buckets, groups, rows not yet final)
above Polars' own, which shows a few rows however long the frame. The sparklines are inline
SVG: no chart library, nothing fetched at view time.
"""

from __future__ import annotations

import html
import math
from typing import Any

import polars as pl

from rta.dsl.durations import GRAINS
from rta.dsl.shown import listed, span

_WIDTH, _HEIGHT = 220, 36
_GRAIN_NAMES = {seconds: name for name, seconds in GRAINS.items()}


def _format(value: float | None) -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if magnitude >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.3g}" if not float(value).is_integer() else f"{value:,.0f}"


def sparkline(values: list[float | None]) -> str:
    """An inline SVG line of ``values`` (missing and non-finite points are skipped).

    More points than the line is pixels wide are drawn as each pixel's lowest and highest value,
    so a long series stays small and its spikes show.
    """
    points = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = _WIDTH / (len(values) - 1)
    if len(points) > 2 * _WIDTH:
        bins: dict[int, list[tuple[int, float]]] = {}
        for i, v in points:
            bins.setdefault(int(i * step), []).append((i, v))
        points = [p for group in bins.values() for p in sorted({min(group, key=_value), max(group, key=_value)})]
    coords = " ".join(f"{i * step:.1f},{_HEIGHT - 2 - (v - low) / span * (_HEIGHT - 4):.1f}" for i, v in points)
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img">'
        f'<polyline fill="none" stroke="#4c78a8" stroke-width="1.5" points="{coords}"/></svg>'
    )


def _value(point: tuple[int, float]) -> float:
    return point[1]


class MetricFrame(pl.DataFrame):
    """A query result: ``bucket``, dimensions, metrics (and ``final``)."""

    #: Set on the frame a query returns when raw events answered it, and why (frames derived from it drop it).
    notice: str | None = None

    def metric_columns(self) -> list[str]:
        """The numeric columns, metrics first."""
        return [c for c, t in self.schema.items() if t.is_numeric()]

    def dimension_columns(self) -> list[str]:
        """The columns the result is split by (strings)."""
        return [c for c, t in self.schema.items() if c != "bucket" and (t == pl.String or isinstance(t, pl.Categorical | pl.Enum))]

    def summary(self) -> str:
        """What the frame holds, in one line: metrics, split, buckets, groups, rows not final.

        >>> from datetime import datetime, UTC
        >>> hours = [datetime(2026, 11, 28, h, tzinfo=UTC) for h in (10, 11, 12)]
        >>> MetricFrame({"bucket": hours, "revenue": [1.5, 2.0, 0.5], "final": [True, True, False]}).summary()
        'MetricFrame: revenue; 3 buckets of 1h, 2026-11-28 10:00 to 12:00 UTC; 3 rows (1 not final)'
        """
        split = f" by {listed(self.dimension_columns())}" if self.dimension_columns() else ""
        parts = [f"MetricFrame: {listed(self.metric_columns()) or 'no metrics'}{split}"]
        if self.height == 0:
            return parts[0] + "; no rows"
        if "bucket" in self.columns:
            buckets = self["bucket"].drop_nulls().unique().sort()
            if len(buckets):
                first, last = buckets[0], buckets[-1]
                steps = buckets.diff().drop_nulls()
                grain = f" of {_grain(steps.min())}" if len(steps) else ""  # type: ignore[arg-type]
                until = f"{last:%H:%M}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M}"
                parts.append(f"{len(buckets):,} bucket{'s' if len(buckets) != 1 else ''}{grain}, {first:%Y-%m-%d %H:%M} to {until} UTC")
        else:
            parts.append("totals over the range")
        if split and "bucket" in self.columns:  # a total has a row per group
            groups = self.select(self.dimension_columns()).unique().height
            parts.append(f"{groups:,} group{'s' if groups != 1 else ''}")
        rows = f"{self.height:,} row{'s' if self.height != 1 else ''}"
        if "final" in self.columns and self.schema["final"] == pl.Boolean:
            pending = self.height - int(self["final"].sum())
            rows += f" ({pending:,} not final)" if pending else " (all final)"
        return "; ".join([*parts, rows, *([self.notice] if self.notice else [])])

    def __repr__(self) -> str:
        return self.summary() + "\n" + super().__repr__()

    def _repr_html_(self, **kwargs: Any) -> str:
        """The summary, a sparkline per metric (when each bucket is one row) and Polars' table.

        A result split by dimensions gets no sparklines: adding its groups up would be wrong for
        distinct counts, averages and ratios, and a line per group does not fit a sparkline.
        """
        charts = []
        if "bucket" in self.columns and self.height > 1 and not self.dimension_columns():
            frame = pl.DataFrame(self).sort("bucket")
            final = frame["final"] if "final" in frame.columns and frame.schema["final"] == pl.Boolean else None
            for name in self.metric_columns():
                values = frame[name].to_list()
                label, shown = "newest final bucket", None
                if final is not None:
                    shown = next((v for v, f in zip(reversed(values), reversed(final.to_list()), strict=True) if f and v is not None), None)
                if shown is None:
                    label, shown = "last bucket", next((v for v in reversed(values) if v is not None), None)
                charts.append(
                    f'<div style="display:inline-block;margin:0 18px 6px 0"><div style="font:12px sans-serif;opacity:.75">'
                    f"{html.escape(name)} <b>{_format(shown)}</b> ({label})</div>{sparkline(values)}</div>"
                )
        head = f'<div style="font-size:12px;opacity:.75;margin:2px 0">{html.escape(self.summary())}</div>'
        return head + "<div>" + "".join(charts) + "</div>" + super()._repr_html_(**kwargs)

    def __rich__(self) -> Any:
        """A rich table of the first and last ten rows (all of them up to 20)."""
        from rich.table import Table

        table = Table(*self.columns, caption=f"{self.height:,} rows" if self.height > 20 else None)

        def add(frame: pl.DataFrame) -> None:
            for row in frame.iter_rows():
                table.add_row(*("" if v is None else _format(v) if isinstance(v, float) else str(v) for v in row))

        if self.height <= 20:
            add(self)
        else:
            add(self.head(10))
            table.add_row(*(["…"] * self.width))
            add(self.tail(10))
        return table


def _grain(step: Any) -> str:
    """A bucket length (a timedelta) as a grain name (1m, 1h, 1d) or a span."""
    seconds = step.total_seconds()
    return _GRAIN_NAMES.get(int(seconds), span(seconds))
