"""A workspace whose store is owned by a running `rta run`: the same queries, over its REST API."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from rta.compiler.plan import Plan
from rta.errors import BackendError, QueryError
from rta.project import Project
from rta.query.protocol import Freshness
from rta.query.request import Asked, QueryRequest

ARROW = "application/vnd.apache.arrow.stream"
RUN_FILE = Path(".rta") / "run.json"


def read_run_file(root: Path) -> dict[str, Any] | None:
    """What a running `rta run` published about itself (URL and a read key), if anything."""
    path = root / RUN_FILE
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class RemoteWorkspace:
    """Queries a project's store through the REST API of the process that owns it."""

    project: Project
    url: str
    key: str

    @property
    def plan(self) -> Plan:
        """The compiled plan."""
        return self.project.plan

    def freshness(self) -> Freshness:
        """Same as :meth:`Workspace.freshness`, from the running API."""
        request = urllib.request.Request(self.url + "/v1/freshness", headers={"Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
        except urllib.error.URLError as err:
            msg = f"cannot reach the rta run serving this project at {self.url}: {err}; is it still running?"
            raise BackendError(msg) from None

        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return Freshness(when(body["written_at"]), when(body["newest_event"]), body["lag_seconds"])

    def dashboard(self, name: str | None = None, **view: Any) -> Any:
        """Same as :meth:`Workspace.dashboard`, through the running API."""
        from rta.dash.widget import dashboard_widget

        return dashboard_widget(self, name, **view)

    def report(self, name: str | None = None, **options: Any) -> Any:
        """Same as :meth:`Workspace.report`, through the running API."""
        from rta.dash import export_report

        return export_report(self, name, **options)

    def _post(self, path: str, body: dict[str, Any]) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": ARROW},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()  # type: ignore[no-any-return]
        except urllib.error.HTTPError as err:
            try:
                reason = json.loads(err.read())["error"]
            except (ValueError, KeyError):
                reason = f"HTTP {err.code}"
            raise QueryError(reason) from None
        except urllib.error.URLError as err:
            msg = f"cannot reach the rta run serving this project at {self.url}: {err.reason}; is it still running?"
            raise BackendError(msg) from None

    @staticmethod
    def _frame(data: bytes) -> pl.DataFrame:
        frame = pl.from_arrow(pa.ipc.open_stream(io.BytesIO(data)).read_all())
        assert isinstance(frame, pl.DataFrame)
        return frame

    def query(self, metrics: Asked, **options: Any) -> pl.DataFrame:
        """Same as :meth:`Workspace.query`: the request travels whole, filters included."""
        options.pop("cache", None)
        request = metrics if isinstance(metrics, QueryRequest) else QueryRequest.of(metrics, **options)
        return self._frame(self._post("/v1/query", request.to_json()))

    def explain(self, metrics: Asked, **options: Any) -> str:
        """Explanations read the store's own counters: only the owning process can give them."""
        msg = f"explain needs direct store access, and the store is owned by the rta run at {self.url}; run the query there"
        raise QueryError(msg)

    def sql(self, text: str) -> pl.DataFrame:
        """Same as :meth:`Workspace.sql`."""
        return self._frame(self._post("/v1/sql", {"sql": text}))
