"""Chart builders: plain functions from a query frame to an Altair chart, in the rta theme.

Each works on its own (``series_chart(ws.query("revenue", last="7d"), "revenue")``); the
dashboard widget, the report and the shared page combine them. Times are drawn in UTC and
say so; provisional (not yet final) buckets are dashed; numbers read 1.2M, $3.4K, 3.1%.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> hours = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(3)]
>>> frame = pl.DataFrame({"bucket": hours, "revenue": [1.0, 2.0, 3.0], "final": [True, True, False]})
>>> spec(series_chart(frame, "revenue", unit="USD"))["layer"][0]["mark"]["type"]
'line'
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import altair as alt
import polars as pl

from rta.dash.formats import vega_label

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac")
PREVIOUS = "#9aa0a6"
FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
WIDTH, HEIGHT = 500, 180


@alt.theme.register("rta", enable=False)
def rta_theme() -> alt.theme.ThemeConfig:
    """The rta look: quiet axes, left-aligned titles, one font (``alt.theme.enable("rta")``)."""
    axis: dict[str, Any] = {
        "labelColor": "#5f6368",
        "titleColor": "#5f6368",
        "labelFont": FONT,
        "titleFont": FONT,
        "gridColor": "#eceff1",
        "domainColor": "#cfd8dc",
    }
    return {  # type: ignore[return-value]
        "config": {
            "font": FONT,
            "view": {"stroke": None},
            "title": {"anchor": "start", "font": FONT, "fontSize": 13, "fontWeight": 600, "color": "#202124", "offset": 8},
            "axis": {**axis, "labelFontSize": 11, "titleFontSize": 11, "tickColor": "#cfd8dc"},  # type: ignore[typeddict-item]
            "axisY": {"labelPadding": 6},
            "legend": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 11, "orient": "top", "title": None, "labelColor": "#5f6368"},
            "range": {"category": list(PALETTE)},
            "line": {"strokeWidth": 2},
            "bar": {"cornerRadiusEnd": 2},
        }
    }


def spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec in the rta theme, data inline."""
    with alt.theme.enable("rta"):
        return chart.to_dict()  # type: ignore[no-any-return]


def stacked(charts: Sequence[Any], title: str | None = None) -> alt.VConcatChart:
    """Charts one above the other, each keeping its own colors and dashes."""
    with warnings.catch_warnings():
        # Identical hover selections merge into one: a shared crosshair across the charts, as intended.
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter", category=UserWarning)
        chart = alt.vconcat(*charts).resolve_scale(color="independent", strokeDash="independent")
    return chart.properties(title=title) if title else chart


def metric_colors(names: Sequence[str]) -> dict[str, str]:
    """One color per metric, the same in every panel of a dashboard."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


TimeTicks = Literal["hours", "day_hours", "days", "months"]
DAY = 86400
# Ticks at least this far apart (ms): 'days' and 'months' then fall on midnights and on the 1st, which the labels name.
TICK_STEPS: dict[str, int | None] = {"hours": None, "day_hours": 6 * 3600_000, "days": DAY * 1000, "months": 31 * DAY * 1000}
_DATE_OR_TIME = "utchours(datum.value) + utcminutes(datum.value) == 0 ? utcFormat(datum.value, '%b %-d') : utcFormat(datum.value, '%H:%M')"
TICK_LABELS = {
    "hours": _DATE_OR_TIME,  # times, and the date at midnight: a range crossing one says which day each side is
    "day_hours": _DATE_OR_TIME,
    "days": "utcFormat(datum.value, '%b %-d')",
    "months": "utcFormat(datum.value, '%b %Y')",
}


def time_ticks(span_seconds: float) -> TimeTicks:
    """How a time axis over ``span_seconds`` is labelled: times within a day, dates beyond (months past ~4 months).

    Vega's own labels mix "Thu 27" at midnight with "12 PM" at noon, and hiding overlapping labels
    (every other one) left only the "12 PM"s of a 7-day chart: no date at all.

    >>> time_ticks(3600), time_ticks(DAY), time_ticks(2 * DAY), time_ticks(7 * DAY), time_ticks(365 * DAY)
    ('hours', 'hours', 'day_hours', 'days', 'months')
    """
    if span_seconds <= DAY:
        return "hours"
    if span_seconds <= 3 * DAY:
        return "day_hours"
    return "days" if span_seconds <= 120 * DAY else "months"


def time_axis(ticks: TimeTicks) -> alt.Axis:
    """The x axis of a time chart labelled as :func:`time_ticks` says."""
    step = TICK_STEPS[ticks]
    extra: dict[str, Any] = {} if step is None else {"tickMinStep": step}
    return alt.Axis(labelExpr=TICK_LABELS[ticks], labelOverlap=True, grid=False, **extra)


def frame_ticks(frame: pl.DataFrame | None) -> TimeTicks:
    """The ticks for a frame's own span of buckets (a chart drawn outside a dashboard)."""
    if frame is None or frame.height < 2:
        return "hours"
    first, last = frame["bucket"].min(), frame["bucket"].max()
    return time_ticks((last - first).total_seconds()) if isinstance(first, datetime) and isinstance(last, datetime) else "hours"


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


SERIES_NAMES = {"current": "{m}", "provisional": "{m} (not final)", "previous": "previous period"}


def series_rows(frame: pl.DataFrame, metric: str, compare: bool = False) -> list[dict[str, Any]]:
    """Long rows for :func:`series_chart`: the final part, the provisional part (joined to the last
    final point) and the previous period, each labelled in ``series``."""
    names = {k: v.format(m=metric) for k, v in SERIES_NAMES.items()}
    data = frame if "final" in frame.columns else frame.with_columns(pl.lit(True).alias("final"))
    rows: list[dict[str, Any]] = []
    last_final: dict[str, Any] | None = None
    for row in data.sort("bucket").iter_rows(named=True):
        point = {"bucket": _iso(row["bucket"]), "value": plotted(row[metric])}
        if row["final"]:
            rows.append({**point, "series": names["current"]})
            last_final = point
        else:
            if last_final is not None:
                rows.append({**last_final, "series": names["provisional"]})
                last_final = None
            rows.append({**point, "series": names["provisional"]})
        if compare and f"{metric}_previous" in row:
            rows.append({"bucket": point["bucket"], "value": plotted(row[f"{metric}_previous"]), "series": names["previous"]})
    return rows


def breakdown_rows(frame: pl.DataFrame, metric: str, by: str) -> list[dict[str, Any]]:
    """Rows for :func:`breakdown_chart`: the dimension's value (empty for null) and ``value``."""
    return [{by: "" if r[by] is None else str(r[by]), "value": plotted(r[metric])} for r in frame.select(by, metric).iter_rows(named=True)]


DIGITS = 12  # significant digits of the floats charts and report data carry


def plotted(value: Any) -> Any:
    """A float to 12 significant digits: ClickHouse sums floats in whichever order its threads finish
    (244.12 once, 244.12000000000003 the next time), and a refresh must not redraw an unchanged chart.

    >>> plotted(244.12000000000003), plotted(7), plotted(None)
    (244.12, 7, None)
    """
    return float(f"{value:.{DIGITS}g}") if isinstance(value, float) else value


def series_chart(
    frame: pl.DataFrame | None,
    metric: str,
    *,
    unit: str | None = None,
    color: str = PALETTE[0],
    compare: bool = False,
    title: str | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    data: str | None = None,
    ticks: TimeTicks | None = None,
) -> alt.LayerChart:
    """A line of ``metric`` over ``bucket`` (a frame without dimensions); dashed where buckets are not final yet,
    grey dashed for the previous period (``compare=True``, column ``<metric>_previous``).

    With ``data="name"`` the chart reads the named dataset ``name`` (rows from :func:`series_rows`)
    instead of embedding the frame: one validated spec serves every refresh. ``ticks`` labels the
    time axis (:func:`time_ticks` of the range shown; by default of the frame's buckets)."""
    names = {k: v.format(m=metric) for k, v in SERIES_NAMES.items()}
    domain = [names["current"], names["provisional"], *([names["previous"]] if compare else [])]
    source = alt.NamedData(data) if data else alt.Data(values=series_rows(frame, metric, compare) if frame is not None else [])
    base = alt.Chart(source).transform_calculate(label=vega_label(unit, "datum.value"))
    x = alt.X("bucket:T", scale=alt.Scale(type="utc"), title="time (UTC)", axis=time_axis(ticks or frame_ticks(frame)))
    y = alt.Y("value:Q", title=None, axis=alt.Axis(labelExpr=vega_label(unit), tickCount=4))
    # Vega-Lite merges every legend of the series field (the color of both layers, the dashes)
    # into one, which shows colored dashes; all of them say the same, since one saying
    # legend=None made it warn on every draw ('Conflicting legend property "disable"').
    legend = alt.Legend(symbolType="stroke")
    series = alt.Color("series:N", scale=alt.Scale(domain=domain, range=[color, color, PREVIOUS]), legend=legend)
    line = base.mark_line(interpolate="monotone").encode(
        x=x,
        y=y,
        color=series,
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=domain, range=[[1, 0], [5, 4], [2, 3]]), legend=legend),
    )
    hover = alt.selection_point(fields=["bucket"], nearest=True, on="pointerover", clear="pointerout", empty=False)
    points = (
        base.mark_point(filled=True, size=40)
        .encode(
            x=x,
            y=y,
            color=series,
            opacity=alt.when(hover).then(alt.value(1)).otherwise(alt.value(0)),
            tooltip=[
                alt.Tooltip("bucket:T", title="time (UTC)", format="%Y-%m-%d %H:%M", formatType="utc"),
                alt.Tooltip("series:N", title="series"),
                alt.Tooltip("label:N", title=metric),
            ],
        )
        .add_params(hover)
    )
    return alt.layer(line, points).properties(title=title or metric, width=width, height=height)  # type: ignore[return-value]


def breakdown_chart(
    frame: pl.DataFrame | None,
    metric: str,
    by: str,
    *,
    unit: str | None = None,
    color: str = PALETTE[0],
    title: str | None = None,
    select: str | None = None,
    width: int = WIDTH - 70,  # room for the value labels
    data: str | None = None,
    bars: int | None = None,
) -> alt.LayerChart:
    """Horizontal bars of ``metric`` per value of ``by``, largest first, values labelled; ``select``
    names a click selection on ``by`` (drill-down). ``data="name"`` reads a named dataset (rows from
    :func:`breakdown_rows`; ``bars`` sets the height) instead of embedding the frame."""
    rows = breakdown_rows(frame, metric, by) if frame is not None and not data else []
    source = alt.NamedData(data) if data else alt.Data(values=rows)
    base = alt.Chart(source).transform_calculate(label=vega_label(unit, "datum.value"))
    # Largest first, sorted by a field both layers name the same way: sort="-x" compiled to two
    # different sorts of one unioned domain, and Vega-Lite warned on every draw.
    largest = alt.EncodingSortField("value", op="max", order="descending")
    y = alt.Y(f"{by}:N", sort=largest, title=None, axis=alt.Axis(labelLimit=160))
    x = alt.X("value:Q", title=None, axis=alt.Axis(labelExpr=vega_label(unit), tickCount=4, grid=True))
    marks = base.mark_bar(color=color, cursor="pointer" if select else "default").encode(
        y=y, x=x, tooltip=[alt.Tooltip(f"{by}:N"), alt.Tooltip("label:N", title=metric)]
    )
    if select:
        pick = alt.selection_point(name=select, fields=[by], on="click", toggle=False)
        marks = marks.encode(opacity=alt.when(pick).then(alt.value(1.0)).otherwise(alt.value(0.55))).add_params(pick)
    labels = base.mark_text(align="left", dx=4, fontSize=11, color="#5f6368").encode(y=y, x=x, text="label:N")
    height = max(60, 22 * (bars if bars is not None else len(rows)))
    return alt.layer(marks, labels).properties(title=title or f"{metric} by {by}", width=width, height=height)  # type: ignore[return-value]
