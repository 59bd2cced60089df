"""Drawing a paths panel: the top paths as a bar list, each sequence of steps written over a bar of its people.

A Sankey of a few hundred people's paths is mostly thin ribbons; a ranked list reads at a glance
(Plausible's and PostHog's path lists do the same). Each row is the anchor and the steps after it
joined by arrows, ``end`` where the person did nothing more; its bar is its people, and its people
and share of everyone with an anchor are written on the right. Texts are formatted here and travel
in the rows; the chart's spec is built and validated once per number of rows.
"""

from __future__ import annotations

import functools
from typing import Any

import altair as alt
import polars as pl

from rta.dash.charts import FONT, WIDTH, spec
from rta.dash.formats import format_number

BAR = "#dbe6f3"  # light: the path is written over it
LABEL, MUTED = "#202124", "#5f6368"
NUMBERS = 96  # pixels on the right for "1.2K · 12.5%"
ROW = 26


def path_text(steps: list[str | None]) -> str:
    """A path's steps as one line: ``None`` ends it (the person did nothing more), ``''`` is a missing label.

    >>> path_text(["signup", "page_view", None, None]), path_text(["signup", ""])
    ('signup → page_view → end', 'signup → (none)')
    """
    shown = []
    for step in steps:
        if step is None:
            shown.append("end")
            break
        shown.append(step or "(none)")
    return " → ".join(shown)


def paths_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """One row per path of an unsplit paths frame (``ws.paths(..., by=())``), in its order (most people first)."""
    steps = [c for c in frame.columns if c == "start" or c.startswith("step_")]
    rows = []
    for rank, r in enumerate(frame.iter_rows(named=True)):
        rows.append(
            {
                "rank": rank,
                "path": path_text([r[c] for c in steps]),
                "people": r["people"],
                "numbers": f"{format_number(r['people'])} · {format_number(r['share'], '%')}",
            }
        )
    return rows


def anchored(frame: pl.DataFrame) -> int | None:
    """How many people have an anchor: each row's ``share`` is its people of them."""
    if not frame.height or not frame["share"][0]:
        return None
    return round(frame["people"][0] / frame["share"][0])


@functools.lru_cache(maxsize=64)
def paths_template(key: str, title: str, subtitle: str, paths: int) -> tuple[Any, dict[str, Any]]:
    """The bar list over the named dataset ``key`` and its spec."""
    base = alt.Chart(alt.NamedData(key))
    y = alt.Y("rank:O", axis=None, title=None)
    tooltip = [alt.Tooltip("path:N", title="path"), alt.Tooltip("numbers:N", title="people · share")]
    x = alt.X("people:Q", axis=None, title=None, scale=alt.Scale(range=[0, WIDTH - NUMBERS - 8]))
    bars = base.mark_bar(color=BAR, cornerRadiusEnd=3, height=ROW - 4).encode(x=x, y=y, tooltip=tooltip)
    text = base.mark_text(align="left", dx=6, fontSize=12, color=LABEL, font=FONT, limit=WIDTH - NUMBERS - 16)
    written = text.encode(x=alt.value(0), y=y, text="path:N", tooltip=tooltip)
    counts = base.mark_text(align="right", fontSize=11, color=MUTED, font=FONT).encode(x=alt.value(WIDTH), y=y, text="numbers:N")
    heading = alt.TitleParams(title, subtitle=subtitle, subtitleColor=MUTED, subtitleFontSize=11)
    # No paths, no bars: the extent of an empty scale makes Vega warn on every draw.
    layers = (bars, written, counts) if paths else (written, counts)
    chart = alt.layer(*layers).properties(title=heading, width=WIDTH, height=max(ROW, ROW * paths))
    return chart, spec(chart)


def paths_subtitle(frame: pl.DataFrame) -> str:
    """Who the list is of, for the chart's subtitle."""
    people = anchored(frame)
    if people is None:
        return "nobody did the first step in this range"
    starts = frame["start"].unique().to_list()
    since = f" from their first {starts[0] or '(none)'}" if len(starts) == 1 else ""
    who = f"{format_number(people)} {'person' if people == 1 else 'people'}"
    return f"the most common paths of {who}{since}, each with its people and share"
