"""Drawing a funnel panel: bars of people per step (PostHog's left-to-right funnel), its table, a clicked step's split.

Each step is a solid bar of the people who reached it over a light one of the people who entered
(step 1), so the drop-off is the light part; above the bar its people and conversion from step 1,
under it (in the axis label) the drop-off from the step before and the conversion from it. The
numbers are formatted here, as the tiles' are, and travel in the rows: the chart's spec is built
and validated once per shape (as ``blocks._template`` does for the other charts).
"""

from __future__ import annotations

import functools
import html
from typing import Any, Literal

import altair as alt
import polars as pl

from rta.dash.charts import FONT, WIDTH, spec
from rta.dash.formats import format_number, vega_label

BACKGROUND = "#e8eaed"  # the people who entered: what is left of it above a bar is the drop-off
LABEL = "#3c4043"
DROP = "#c5221f"


def _percent(value: float | None) -> str:
    return format_number(value, "%")


def duration(seconds: float | None) -> str:
    """A time to convert as people read it.

    >>> duration(42.0), duration(750.0), duration(5400.0), duration(None)
    ('42 s', '12.5 min', '1.5 h', '–')
    """
    if seconds is None or seconds != seconds:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
    return f"{seconds / 3600:.1f}".rstrip("0").rstrip(".") + " h"


def funnel_rows(frame: pl.DataFrame, picked: int | None = None) -> list[dict[str, Any]]:
    """One row per step of an unsplit funnel frame (``ws.funnel(..., by=())``), its labels formatted."""
    rows = []
    first = frame["people"][0] if frame.height else 0
    for r in frame.sort("step").iter_rows(named=True):
        later = r["step"] > 1
        dropped = (
            f"−{format_number(r['drop_off'])} ({_percent(1 - r['step_conversion'])}) dropped"
            if later and r["step_conversion"] is not None
            else ""
        )
        kept = f"{_percent(r['step_conversion'])} of previous" if later else "entered"
        rows.append(
            {
                "step": r["step"],
                "name": r["name"],
                "axis": f"{r['step']}. {r['name']}|{kept}" + (f"|{dropped}" if dropped else ""),
                "people": r["people"],
                "first": first,
                "label": f"{format_number(r['people'])} · {_percent(r['conversion'])}",
                "of_previous": _percent(r["step_conversion"]),
                "drop_off": format_number(r["drop_off"]) if later else "–",
                "median": duration(r["median_seconds"]),
                "shade": 1.0 if picked is None or picked == r["step"] else 0.45,
            }
        )
    return rows


@functools.lru_cache(maxsize=64)
def funnel_template(key: str, title: str, color: str, select: str | None, split_by: str | None) -> tuple[Any, dict[str, Any]]:
    """The funnel chart over the named dataset ``key`` and its spec; ``select`` names a click selection on ``step``."""
    base = alt.Chart(alt.NamedData(key))
    # Several lines per axis label (Vega draws an array as lines): the step, then its conversion and drop-off.
    x = alt.X(
        "axis:N",
        sort=alt.EncodingSortField("step", op="min", order="ascending"),
        title=None,
        axis=alt.Axis(labelExpr="split(datum.label, '|')", labelAngle=0, labelLimit=220, labelPadding=8, ticks=False, labelColor=LABEL),
    )
    y = alt.Y("people:Q", title=None, axis=alt.Axis(labelExpr=vega_label(None), tickCount=4))
    tooltip = [
        alt.Tooltip("name:N", title="step"),
        alt.Tooltip("people:Q", title="people", format=","),
        alt.Tooltip("label:N", title="people · of step 1"),
        alt.Tooltip("of_previous:N", title="of previous step"),
        alt.Tooltip("drop_off:N", title="dropped off"),
        alt.Tooltip("median:N", title="median time from previous"),
    ]
    cursor: Literal["pointer", "default"] = "pointer" if select else "default"
    entered = base.mark_bar(color=BACKGROUND, cursor=cursor).encode(x=x, y=alt.Y("first:Q"), tooltip=tooltip)
    reached = base.mark_bar(color=color, cursor=cursor).encode(x=x, y=y, opacity=alt.Opacity("shade:Q", scale=None), tooltip=tooltip)
    if select:
        reached = reached.add_params(alt.selection_point(name=select, fields=["step"], on="click", toggle=False))
    labels = base.mark_text(baseline="bottom", dy=-4, fontSize=12, fontWeight=600, color=LABEL, font=FONT).encode(x=x, y=y, text="label:N")
    subtitle = f"click a step to split its people by {split_by}" if select and split_by else None
    heading = alt.TitleParams(title, subtitle=subtitle, subtitleColor="#5f6368", subtitleFontSize=11) if subtitle else title
    chart = alt.layer(entered, reached, labels).properties(title=heading, width=WIDTH, height=200)
    return chart, spec(chart)


def split_rows(split: pl.DataFrame, by: str, step: int, top: int) -> list[dict[str, Any]]:
    """The people who reached ``step``, per value of ``by`` (largest first, ``top`` of them), as breakdown rows."""
    rows = split.filter((pl.col("step") == step) & (pl.col("people") > 0)).sort("people", descending=True).head(top)
    return [{by: "" if r[by] is None else str(r[by]), "value": r["people"]} for r in rows.iter_rows(named=True)]


def funnel_table(frame: pl.DataFrame) -> str:
    """The steps as a table (the report's static view of the numbers, and the page's)."""
    head = "".join(f"<th>{h}</th>" for h in ("step", "people", "of step 1", "of previous", "dropped off", "median time", "p90 time"))
    body = []
    for r in frame.sort("step").iter_rows(named=True):
        later = r["step"] > 1
        cells = [
            format_number(r["people"]),
            _percent(r["conversion"]),
            _percent(r["step_conversion"]) if later else "–",
            format_number(r["drop_off"]) if later else "–",
            duration(r["median_seconds"]),
            duration(r["p90_seconds"]),
        ]
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        body.append(f'<tr data-step="{r["step"]}"><td>{r["step"]}. {html.escape(str(r["name"]))}</td>{tds}</tr>')
    return f'<table class="rta-funnel"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
