"""The query API's per-person endpoints: ``GET|POST /v1/funnel``, ``/v1/retention``, ``/v1/paths`` (a read key).

JSON or Arrow like ``/v1/query``; ``explain=true`` answers with what ran instead (its SQL, the
rows it scans, the time), as JSON. Bad input is a 400 with the reason (a ``QueryError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from rta.compiler.plan import Plan
from rta.query.funnel_answer import answer_funnel, explain_funnel, make_funnel_query
from rta.query.paths_answer import answer_paths, explain_paths, make_paths_query
from rta.query.person_answer import PersonExplanation, Reader
from rta.query.person_request import FunnelRequest, PathsRequest, PersonRequest, RetentionRequest
from rta.query.protocol import Workspace
from rta.query.retention_answer import answer_retention, explain_retention, make_retention_query

Answerer = Callable[[Plan, Reader, Any, datetime | None], pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Kind:
    """One per-person endpoint: its request, how it is checked, answered and explained, and what its OpenAPI entry says."""

    request: type[PersonRequest]
    check: Callable[[Plan, Any, datetime | None], Any]  # a checked query with start, end and by
    answer: Answerer
    explain: Callable[[Plan, Reader, Any, datetime | None], PersonExplanation]
    summary: str
    rows: str
    by: str  # where the breakdown is read

    @property
    def path(self) -> str:
        return f"/v1/{self.request.kind}"


KINDS = (
    Kind(FunnelRequest, make_funnel_query, answer_funnel, explain_funnel,
         "A declared funnel: people per step, conversion, drop-off, median and p90 time from the step before",
         "One row per step and group", "read at step 1"),
    Kind(RetentionRequest, make_retention_query, answer_retention, explain_retention,
         "A declared retention matrix: per cohort, its size and the people back in each period, and the share",
         "One row per cohort, period and group", "read at the first start event of the cohort's period"),
    Kind(PathsRequest, make_paths_query, answer_paths, explain_paths,
         "Declared paths: the most common sequences of events after the anchor, people and share",
         "One row per path and group, most people first", "read at the anchor event"),
)  # fmt: skip


class PersonApi:
    """The per-person routes, mounted by :class:`rta.query.api.QueryApi`."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def routes(self) -> dict[tuple[str, str], tuple[Callable[[dict[str, Any]], Any], bool]]:
        """Route -> (handler, True: the API's read key)."""
        out: dict[tuple[str, str], tuple[Callable[[dict[str, Any]], Any], bool]] = {}
        for kind in KINDS:
            handler = self._handler(kind)
            out[("GET", kind.path)] = (handler, True)
            out[("POST", kind.path)] = (handler, True)
        return out

    def _handler(self, kind: Kind) -> Callable[[dict[str, Any]], Any]:
        def answer(params: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]] | dict[str, object]:
            """The frame with its range in the meta; or, with ``explain``, what answering it ran."""
            request = kind.request.from_params(params)
            if request.explain:
                return kind.explain(self.ws.plan, self.ws.read, request, None).as_json()
            q = kind.check(self.ws.plan, request, None)
            frame = kind.answer(self.ws.plan, self.ws.read, request.but(start=q.start, end=q.end, last=None), None)
            return frame, {request.kind: request.name, "start": q.start, "end": q.end, "by": list(q.by)}

        return answer


def _options(kind: Kind) -> list[tuple[str, str, str]]:
    name = kind.request.kind
    described = {
        name: ("string", f"The {name}'s name (required)."),
        "last": ("string", f"Range back from end (or now): 24h, 7d (default {kind.request.default_last})."),
        "start": ("string", "Range start (ISO 8601 with a zone)."),
        "end": ("string", "Range end, exclusive (default now)."),
        "by": ("string", f"Breakdown: dimensions, prop.<key>, person.<trait>, comma-separated (default the definition's; {kind.by})."),
        "where": ("string", "A filter of the events, as in /v1/query."),
        "top": ("integer", "How many paths per group (default 20)."),
        "every": ("string", "One funnel per window, windows ending this far apart (15m, 1d): window_start and window_end columns."),
        "window": ("string", "With every=: each window's length (default every)."),
        "explain": ("boolean", "Answer with the SQL that ran, the rows it scans and the time."),
    }
    return [(option, *described[option]) for option in kind.request.options()]


def _openapi(kind: Kind) -> dict[str, Any]:
    options, name = _options(kind), kind.request.kind
    return {
        "get": {
            "summary": kind.summary,
            "parameters": [
                {"name": n, "in": "query", "schema": {"type": t}, "description": d, **({"required": True} if n == name else {})}
                for n, t, d in options
            ],
            "responses": {"200": {"description": f"{kind.rows}, as JSON (with meta) or Arrow"}, "400": {"description": "Invalid"}},
        },
        "post": {
            "summary": "The same, with a JSON body (where as a filter tree)",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": [name],
                            "properties": {n: {"type": t, "description": d} for n, t, d in options},
                        }
                    }
                }
            },
            "responses": {"200": {"description": kind.rows}, "400": {"description": "Invalid"}},
        },
    }


OPENAPI_PATHS: dict[str, Any] = {kind.path: _openapi(kind) for kind in KINDS}
