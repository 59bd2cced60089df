"""Drawing a retention panel: PostHog's retention table as a heatmap, a row per cohort and a column per period.

Each row starts with its cohort (the start of its period, UTC) and size; each cell is shaded by the
share of the cohort back in that period and says it (the people are in its tooltip). Periods that
have not begun are absent (``ws.retention`` leaves them out), so the table is a triangle. The texts
are formatted here and travel in the rows; the chart's spec is built and validated once per shape.
"""

from __future__ import annotations

import functools
from typing import Any

import altair as alt
import polars as pl

from rta.dash.charts import FONT, PALETTE, WIDTH, spec
from rta.dash.formats import format_number
from rta.dsl.durations import parse_duration

SIZE = "Size"
LIGHT, INK = "#f1f5fb", "#202124"
PERIOD_NAMES = {3600: "Hour", 86400: "Day", 7 * 86400: "Week"}


def period_columns(every: str | None, periods: int) -> tuple[str, ...]:
    """The table's columns: the cohort's size, then one per period named by the declared period.

    >>> period_columns("1d", 3), period_columns("2d", 2)
    (('Size', 'Day 0', 'Day 1', 'Day 2'), ('Size', 'Period 0', 'Period 1'))
    """
    name = PERIOD_NAMES.get(parse_duration(every), "Period") if every else "Period"
    return (SIZE, *(f"{name} {k}" for k in range(periods)))


def retention_rows(frame: pl.DataFrame, every: str | None) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The columns, and one row per cell of an unsplit retention frame (``ws.retention(..., by=())``): sizes, then shares."""
    periods = int(frame["period"].max()) + 1 if frame.height else 1  # type: ignore[arg-type]
    columns = period_columns(every, periods)
    hourly = every is not None and parse_duration(every) < 86400
    rows: list[dict[str, Any]] = []
    for order, ((cohort,), cells) in enumerate(frame.sort("cohort", "period").group_by("cohort", maintain_order=True)):
        label = cohort.strftime("%b %-d %H:%M" if hourly else "%b %-d")
        size = int(cells["cohort_size"][0])
        rows.append({"cohort": label, "order": order, "column": SIZE, "text": format_number(size), "size": size, "ink": INK})
        for r in cells.iter_rows(named=True):
            share = r["retention"]
            rows.append(
                {
                    "cohort": label,
                    "order": order,
                    "column": columns[r["period"] + 1],
                    "share": share,
                    "text": format_number(share, "%"),
                    "people": r["people"],
                    "size": size,
                    "ink": "#ffffff" if share > 0.55 else INK,  # dark cells take white text
                }
            )
    return columns, rows


@functools.lru_cache(maxsize=64)
def retention_template(key: str, title: str, columns: tuple[str, ...], cohorts: int) -> tuple[Any, dict[str, Any]]:
    """The heatmap over the named dataset ``key`` and its spec (one per title, columns and number of cohorts)."""
    base = alt.Chart(alt.NamedData(key))
    x = alt.X("column:N", sort=list(columns), title=None, axis=alt.Axis(orient="top", labelAngle=0, ticks=False, domain=False))
    y = alt.Y("cohort:N", sort=alt.EncodingSortField("order", op="min", order="ascending"), title=None,
              axis=alt.Axis(ticks=False, domain=False, labelPadding=8))  # fmt: skip
    tooltip = [
        alt.Tooltip("cohort:N", title="cohort"),
        alt.Tooltip("size:Q", title="cohort size", format=","),
        alt.Tooltip("column:N", title="period"),
        alt.Tooltip("people:Q", title="people back", format=","),
        alt.Tooltip("text:N", title="of the cohort"),
    ]
    shade = alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], range=[LIGHT, PALETTE[0]]), legend=None)
    cells = base.transform_filter("datum.share != null").mark_rect(stroke="#ffffff", strokeWidth=2, cornerRadius=3)
    cells = cells.encode(x=x, y=y, color=shade, tooltip=tooltip)
    numbers = base.mark_text(fontSize=11, font=FONT).encode(x=x, y=y, text="text:N", color=alt.Color("ink:N", scale=None), tooltip=tooltip)
    unit = columns[1].rsplit(" ", 1)[0].lower() if len(columns) > 1 else "period"
    subtitle = f"of each {unit}'s cohort, the share back in each {unit} after" if cohorts else "nobody started a cohort in this range"
    heading = alt.TitleParams(title, subtitle=subtitle, subtitleColor="#5f6368", subtitleFontSize=11)
    width = max(WIDTH, 56 * len(columns))
    chart = alt.layer(cells, numbers).resolve_scale(color="independent")  # the shades, and the texts' own colors
    chart = chart.properties(title=heading, width=width, height=max(26, 26 * cohorts))
    return chart, spec(chart)
