"""Query results that show themselves: a table plus a sparkline per metric in Jupyter, a rich table in a terminal.

A plain Polars frame in every other respect (operations on it return ordinary frames). The
sparklines are inline SVG: no chart library, nothing fetched at view time.
"""

from __future__ import annotations

import html
from typing import Any

import polars as pl

_WIDTH, _HEIGHT = 220, 36


def _format(value: float | None) -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if magnitude >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.3g}" if not float(value).is_integer() else f"{value:,.0f}"


def sparkline(values: list[float | None]) -> str:
    """An inline SVG line of ``values`` (missing points are skipped)."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = _WIDTH / (len(values) - 1)
    coords = " ".join(f"{i * step:.1f},{_HEIGHT - 2 - (v - low) / span * (_HEIGHT - 4):.1f}" for i, v in points)
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img">'
        f'<polyline fill="none" stroke="#4c78a8" stroke-width="1.5" points="{coords}"/></svg>'
    )


class MetricFrame(pl.DataFrame):
    """A query result: ``bucket``, dimensions, metrics (and ``final``)."""

    def metric_columns(self) -> list[str]:
        """The numeric columns, metrics first."""
        return [c for c, t in self.schema.items() if t.is_numeric()]

    def _repr_html_(self, **kwargs: Any) -> str:
        charts = []
        if "bucket" in self.columns and self.height > 1:
            totals = pl.DataFrame(self).group_by("bucket").agg(pl.col(self.metric_columns()).sum()).sort("bucket")
            for name in self.metric_columns():
                values = totals[name].to_list()
                last = next((v for v in reversed(values) if v is not None), None)
                charts.append(
                    f'<div style="display:inline-block;margin:0 18px 6px 0"><div style="font:12px sans-serif;color:#555">'
                    f"{html.escape(name)} <b>{_format(last)}</b> (last bucket)</div>{sparkline(values)}</div>"
                )
        return "<div>" + "".join(charts) + "</div>" + super()._repr_html_(**kwargs)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(*self.columns)
        for row in self.iter_rows():
            table.add_row(*("" if v is None else _format(v) if isinstance(v, float) else str(v) for v in row))
        return table
