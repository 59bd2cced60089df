"""Retention and paths panels' data: the declared definition asked under the dashboard's view, answered by the query layer.

As a funnel panel does (``rta/dash/funnel_data.py``), each reads the rendering's one range (the
metric panels' span, when there are any) and the view's filters as ``where=``, and asks for no
breakdown (``by=()``): one matrix, one list of paths for the view. What a cohort, a period or a
path is belongs to ``ws.retention`` and ``ws.paths``; the frames are drawn as they answer.
Retention widens the range back to the start of its first period (``make_retention_query``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from rta.dash.funnel_data import funnel_options
from rta.dash.view import View
from rta.dsl.dashboard import Panel
from rta.errors import RtaError


def person_options(panel: Panel, view: View, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """What a retention or paths panel asks: the rendering's range and the view's filters, no breakdown (and ``top`` paths)."""
    options = {**funnel_options(view, start, end), "by": ()}
    return {**options, "top": panel.top} if panel.kind == "paths" else options


@dataclass(frozen=True, slots=True)
class PersonAnswer:
    """What a retention or paths panel shows, or why it could not be answered."""

    frame: pl.DataFrame | None
    error: str | None
    options: dict[str, Any]
    every: str | None = None  # retention: the declared period ("1d"), which names the columns (Day 0, Day 1...)


def load_person(source: Any, panel: Panel, view: View, start: datetime | None, end: datetime | None, now: datetime) -> PersonAnswer:
    """Ask ``source.retention`` or ``source.paths`` for ``panel`` under ``view``."""
    options = person_options(panel, view, start, end)
    try:
        if panel.retention is not None:
            every = source.plan.definitions.retention(panel.retention).every
            return PersonAnswer(pl.DataFrame(source.retention(panel.retention, now=now, **options)), None, options, every)
        assert panel.paths is not None
        return PersonAnswer(pl.DataFrame(source.paths(panel.paths, now=now, **options)), None, options)
    except RtaError as err:
        return PersonAnswer(None, str(err), options)
