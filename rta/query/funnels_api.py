"""The query API's funnel endpoint: ``GET|POST /v1/funnel`` (a read key), JSON or Arrow like ``/v1/query``.

``explain=true`` answers with what ran instead (its SQL, the rows it scans, the time), as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from rta.query.funnel_answer import answer_funnel, explain_funnel, make_funnel_query
from rta.query.funnel_request import FunnelRequest
from rta.query.protocol import Workspace

FUNNEL_PATH = "/v1/funnel"


class FunnelApi:
    """The funnel routes, mounted by :class:`rta.query.api.QueryApi`."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def routes(self) -> dict[tuple[str, str], tuple[Callable[[dict[str, Any]], Any], bool]]:
        """Route -> (handler, True: the API's read key)."""
        return {("GET", FUNNEL_PATH): (self.answer, True), ("POST", FUNNEL_PATH): (self.answer, True)}

    def answer(self, params: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]] | dict[str, object]:
        """The funnel's frame with its range in the meta; or, with ``explain``, what answering it ran."""
        request = FunnelRequest.from_params(params)
        if request.explain:
            return explain_funnel(self.ws.plan, self.ws.read, request).as_json()
        q = make_funnel_query(self.ws.plan, request)
        frame = answer_funnel(self.ws.plan, self.ws.read, request.but(start=q.start, end=q.end, last=None))
        return frame, {"funnel": q.funnel.name, "start": q.start, "end": q.end, "by": list(q.by)}


_OPTIONS = [
    ("funnel", "string", "The funnel's name (required)."),
    ("last", "string", "Range back from end (or now): 24h, 7d."),
    ("start", "string", "Range start (ISO 8601 with a zone)."),
    ("end", "string", "Range end, exclusive (default now)."),
    ("by", "string", "Breakdown: dimensions, prop.<key>, person.<trait>, comma-separated (default the funnel's; read at step 1)."),
    ("where", "string", "A filter of the events, as in /v1/query."),
    ("explain", "boolean", "Answer with the SQL that ran, the rows it scans and the time."),
]
OPENAPI_PATHS: dict[str, Any] = {
    FUNNEL_PATH: {
        "get": {
            "summary": "A declared funnel: people per step, conversion, drop-off, median and p90 time from the step before",
            "parameters": [
                {"name": n, "in": "query", "schema": {"type": t}, "description": d, **({"required": True} if n == "funnel" else {})}
                for n, t, d in _OPTIONS
            ],
            "responses": {
                "200": {"description": "One row per step and group, as JSON (with meta) or Arrow"},
                "400": {"description": "Invalid"},
            },
        },
        "post": {
            "summary": "The same, with a JSON body (where as a filter tree)",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["funnel"],
                            "properties": {n: {"type": t, "description": d} for n, t, d in _OPTIONS},
                        }
                    }
                }
            },
            "responses": {"200": {"description": "One row per step and group"}, "400": {"description": "Invalid"}},
        },
    }
}
