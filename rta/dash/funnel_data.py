"""A funnel panel's data: the declared funnel under the dashboard's view, and the clicked step's people split by a dimension.

The funnel reads the rendering's one range (the metric panels' span, when there are any) and the
view's filters as ``where=``, so its first step's people are those the tiles count under the same
filters. Its bars ask for no breakdown (``by=()``); a clicked step (``View.step``) asks once more, by
the panel's split dimension: the view's breakdown control, else the panel's ``by=``, else the
funnel's own first ``by``. Both are ``ws.funnel`` answers, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import polars as pl

from rta.compiler.plan import Plan
from rta.dash.view import View
from rta.dsl.dashboard import Panel
from rta.errors import RtaError


@dataclass(frozen=True, slots=True)
class FunnelAnswer:
    """What a funnel panel shows: its steps, the clicked step's split (if any), or why it could not be answered."""

    panel: Panel  # ``by`` resolved to the dimension a step is split by (None: it cannot be split)
    frame: pl.DataFrame | None
    split: pl.DataFrame | None
    error: str | None
    options: dict[str, Any] | None


def split_dimension(plan: Plan, panel: Panel, view: View) -> str | None:
    """The dimension a step of ``panel`` is split by under ``view``."""
    if view.breakdown is not None:
        return view.breakdown
    if panel.by is not None:
        return panel.by
    try:
        own = plan.definitions.funnel(panel.funnel or "").by
    except RtaError:
        return None
    return own[0] if own else None


def funnel_options(view: View, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """The funnel's range and filters: the rendering's range when it has one, else the view's own."""
    span: dict[str, Any] = {"start": start, "end": end} if start is not None else dict(view.range_options())
    return {k: v for k, v in {**span, "where": view.where() or None}.items() if v is not None}


def load_funnel(source: Any, panel: Panel, view: View, start: datetime | None, end: datetime | None, now: datetime) -> FunnelAnswer:
    """Ask ``source.funnel`` for ``panel`` under ``view`` (and for the clicked step's split, when one of its steps is)."""
    assert panel.funnel is not None
    shown = replace(panel, by=split_dimension(source.plan, panel, view))
    options = funnel_options(view, start, end)
    try:
        frame = pl.DataFrame(source.funnel(panel.funnel, now=now, by=(), **options))
        split = None
        if view.step is not None and view.step[0] == panel.funnel and shown.by is not None:
            split = pl.DataFrame(source.funnel(panel.funnel, now=now, by=(shown.by,), **options))
    except RtaError as err:
        return FunnelAnswer(shown, None, None, str(err), options)
    return FunnelAnswer(shown, frame, split, None, {**options, "by": ()})
