"""A workspace whose store another process holds (``rta run``, or a notebook kernel): the same
methods and answers, through that process's query API on loopback.

Queries travel as :class:`~rta.query.request.QueryRequest` JSON; statements rta builds itself (the
ad-hoc builders, alert history, arrivals) travel with their values written in
(:func:`~rta.query.bound.bound_sql`) and are checked by the owner's SQL console like any other.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa

from rta.errors import BackendError, QueryError
from rta.project import Project
from rta.query.bound import bound_sql
from rta.query.funnel_answer import FunnelExplanation, make_funnel_query
from rta.query.metric_query import Executed, make_query
from rta.query.paths_answer import make_paths_query
from rta.query.person_answer import PersonExplanation
from rta.query.person_request import FunnelRequest, PathsRequest, PersonRequest, RetentionRequest
from rta.query.protocol import Answer, Explanation, Freshness
from rta.query.request import Asked, QueryRequest
from rta.query.retention_answer import make_retention_query
from rta.query.session_metrics import check_query
from rta.workspace.base import WorkspaceBase

ARROW = "application/vnd.apache.arrow.stream"
R = TypeVar("R", bound=PersonRequest)


@dataclass(repr=False, eq=False)
class RemoteWorkspace(WorkspaceBase):
    """Queries a project's store through the REST API of the process that holds it."""

    project: Project
    url: str
    key: str
    owner: str = ""  # who holds the store, for messages: "rta run (pid 4242) at http://..."

    # --- transport -----------------------------------------------------------------------------

    def _call(self, path: str, body: dict[str, Any] | None = None, *, accept: str = "application/json") -> tuple[bytes, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": accept},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read(), response.headers
        except urllib.error.HTTPError as err:
            try:
                reason = json.loads(err.read())["error"]
            except (ValueError, KeyError, TypeError):
                reason = f"HTTP {err.code}"
            raise (BackendError if err.code >= 500 else QueryError)(reason) from None
        except OSError as err:  # refused, reset, timed out
            reason = getattr(err, "reason", err)
            msg = f"cannot reach {self.owner or 'the process'} holding this project's store at {self.url}: {reason}; is it still running?"
            raise BackendError(msg) from None

    def _json(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return json.loads(self._call(path, body)[0])

    def _frame(self, path: str, body: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
        data, headers = self._call(path, body, accept=ARROW)
        frame = pl.from_arrow(pa.ipc.open_stream(io.BytesIO(data)).read_all())
        assert isinstance(frame, pl.DataFrame)
        return frame, json.loads(headers.get("x-rta-meta") or "{}")

    # --- primitives ----------------------------------------------------------------------------

    def _request(self, metrics: Asked, now: datetime | None, options: dict[str, object]) -> QueryRequest:
        request = metrics if isinstance(metrics, QueryRequest) else QueryRequest.of(metrics, **options)
        # The owner reads the range back from its own clock; a caller's `now` ends the range there.
        return request.but(end=now) if now is not None and request.end is None and request.start is None else request

    def answer(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Answer:
        """Same as :meth:`Workspace.answer`, answered by the process that holds the store."""
        request = self._request(metrics, now, options)
        # Refused here, before the trip, as the owner would (session metrics read the stream's visits).
        asked = check_query(self.plan, request, now=now)
        frame, meta = self._frame("/v1/query", request.to_json())
        q = replace(asked, grain=meta["grain"], start=datetime.fromisoformat(meta["start"]), end=datetime.fromisoformat(meta["end"]))
        return Answer(frame, q, meta.get("cache") == "hit", meta.get("notice"))

    def cached_answer(self, metrics: Asked, **options: object) -> Answer | None:
        """None: this process keeps no results of its own (the owner caches them)."""
        return None

    def explain(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Explanation:
        """Same as :meth:`Workspace.explain`: the owner runs the query and says what it read."""
        request = self._request(metrics, now, options)
        asked = make_query(self.plan, request, now=now)
        found = self._json("/v1/explain", request.to_json())
        meta = found["query"]
        q = replace(asked, grain=meta["grain"], start=datetime.fromisoformat(meta["start"]), end=datetime.fromisoformat(meta["end"]))
        executed = tuple(
            Executed(e["table"], e["sql"], e["rows_read"], e["bytes_read"], e["seconds"], e.get("raw_because")) for e in found["executed"]
        )
        return Explanation(q, executed, found["seconds"], found["cache"])

    def _asked(self, kind: type[R], name: str | R, now: datetime | None, options: dict[str, object]) -> R:
        request = self._person_request(kind, name, options)
        checks = {"funnel": make_funnel_query, "retention": make_retention_query, "paths": make_paths_query}
        checks[kind.kind](self.plan, request, now)  # type: ignore[operator]  # refused here, before the trip, as the owner would
        # The owner reads the range back from its own clock; a caller's `now` ends the range there.
        return request.but(end=now) if now is not None and request.end is None else request

    def _person_frame(self, request: PersonRequest) -> pl.DataFrame:
        return self._frame(f"/v1/{request.kind}", request.to_json())[0]

    def _person_explained(self, request: PersonRequest) -> PersonExplanation:
        return PersonExplanation.from_json(self._json(f"/v1/{request.kind}", request.but(explain=True).to_json()))

    def funnel(self, name: str | FunnelRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Same as :meth:`Workspace.funnel`, answered by the process that holds the store (``/v1/funnel``)."""
        return self._person_frame(self._asked(FunnelRequest, name, now, options))

    def explain_funnel(self, name: str | FunnelRequest, *, now: datetime | None = None, **options: object) -> FunnelExplanation:
        """Same as :meth:`Workspace.explain_funnel`: the owner runs it and says what it read."""
        return self._person_explained(self._asked(FunnelRequest, name, now, options))

    def retention(self, name: str | RetentionRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Same as :meth:`Workspace.retention`, answered by the process that holds the store (``/v1/retention``)."""
        return self._person_frame(self._asked(RetentionRequest, name, now, options))

    def explain_retention(self, name: str | RetentionRequest, *, now: datetime | None = None, **options: object) -> PersonExplanation:
        """Same as :meth:`Workspace.explain_retention`: the owner runs it and says what it read."""
        return self._person_explained(self._asked(RetentionRequest, name, now, options))

    def paths(self, name: str | PathsRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Same as :meth:`Workspace.paths`, answered by the process that holds the store (``/v1/paths``)."""
        return self._person_frame(self._asked(PathsRequest, name, now, options))

    def explain_paths(self, name: str | PathsRequest, *, now: datetime | None = None, **options: object) -> PersonExplanation:
        """Same as :meth:`Workspace.explain_paths`: the owner runs it and says what it read."""
        return self._person_explained(self._asked(PathsRequest, name, now, options))

    def sql(self, text: str) -> pl.DataFrame:
        """Same as :meth:`Workspace.sql`."""
        return self._frame("/v1/sql", {"sql": text})[0]

    def read(self, sql: str, params: Mapping[str, object]) -> pl.DataFrame:
        """Same as :meth:`Workspace.read`: the statement, values written in, through the owner's console."""
        return self.sql(bound_sql(sql, params))

    def freshness(self, now: datetime | None = None, *, stream: str | None = None) -> Freshness:
        """Same as :meth:`Workspace.freshness`, from the owner (the lag from this process's clock)."""
        query = f"?{urllib.parse.urlencode({'stream': stream})}" if stream else ""
        body = self._json("/v1/freshness" + query)

        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        newest = when(body["newest_event"])
        lag = None if newest is None else ((now or datetime.now(UTC)) - newest).total_seconds()
        return Freshness(when(body["written_at"]), newest, lag)

    def load(self, events: pl.DataFrame | str | Path | list[str | Path], *, stream: str | None = None) -> str:
        """Loading writes the store, which only its holder may: refused with where to load instead."""
        raise QueryError(self._writes_elsewhere("load events"))

    def load_demo(self, events: int = 100_000, *, days: int = 7, seed: int = 1, now: datetime | None = None) -> str:
        """Loading writes the store, which only its holder may: refused with where to load instead."""
        raise QueryError(self._writes_elsewhere("load the demo"))

    def _writes_elsewhere(self, what: str) -> str:
        return (
            f"cannot {what} here: {self.owner or 'another process'} holds this project's embedded store, and only it may "
            "write there; run it in that process (the notebook that opened the store, or `rta load` / `rta send FILE` "
            "while `rta run` runs), or close that process first"
        )

    def _where(self) -> str:
        return f"asked through {self.owner or self.url}"
