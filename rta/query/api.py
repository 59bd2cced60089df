"""The REST query API: metric queries, the SQL console, freshness; JSON or Arrow IPC.

A small raw ASGI app (the fastest option measured here: docs/architecture.md, "Raw ASGI on uvicorn") served by uvicorn.
Queries run on a thread pool; identical concurrent queries coalesce in the workspace cache
(single flight), so a burst of dashboards costs one ClickHouse query.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs

import polars as pl
import pyarrow as pa

from rta.contract.http import HttpError, KeyGate, error_body, read_body
from rta.contract.keys import KeyStore
from rta.errors import BackendError, RtaError
from rta.query.people_api import ADMITTED, PeopleApi
from rta.query.people_api import OPENAPI_PATHS as PEOPLE_PATHS
from rta.query.person_api import OPENAPI_PATHS as PERSON_PATHS
from rta.query.person_api import PersonApi
from rta.query.protocol import Answer, Workspace
from rta.query.request import FILTER_SCHEMA, QueryRequest, openapi_body, openapi_parameters, text

log = logging.getLogger("rta.api")
Header = tuple[bytes, bytes]
Reply = tuple[int, bytes, str, list[Header]]  # status, body, content type, more headers
ARROW = "application/vnd.apache.arrow.stream"
MAX_BODY = 1_000_000
Scope = dict[str, Any]
Handler = Callable[[dict[str, Any]], Any]


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class QueryApi:
    """ASGI app over a workspace; authenticates every data endpoint with a read key."""

    def __init__(self, workspace: Workspace, keys: KeyStore, *, threads: int = 16) -> None:
        self.ws = workspace
        self.gate = KeyGate(
            keys,
            ("read",),
            "API key",
            missing="missing API key: send Authorization: Bearer <read key> (create one with `rta keys create read`)",
            forbidden="a {kind} key cannot read; use a read key",
        )
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rta-api")
        self._encodings: OrderedDict[tuple[int, str], tuple[pl.DataFrame, bytes]] = OrderedDict()
        self._encoding_lock = threading.Lock()
        self.routes: dict[tuple[str, str], tuple[Handler, bool | KeyGate]] = {
            ("GET", "/v1/health"): (self._health, False),
            ("GET", "/openapi.json"): (lambda _: OPENAPI, False),
            ("GET", "/docs"): (lambda _: _docs_page(), False),
            ("GET", "/v1/definitions"): (self._definitions, True),
            ("GET", "/v1/freshness"): (self._freshness, True),
            ("GET", "/v1/query"): (self._query, True),
            ("POST", "/v1/query"): (self._query, True),
            ("POST", "/v1/sql"): (self._sql, True),
            ("GET", "/v1/explain"): (self._explain, True),
            ("POST", "/v1/explain"): (self._explain, True),
            **PeopleApi(workspace, keys).routes(),  # a person (read key), erasure (admin key)
            **PersonApi(workspace).routes(),  # funnels, retention, paths
        }

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":  # nothing to set up or tear down
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, body, content_type, extra = await self._handle(scope, headers, receive)
        except HttpError as err:
            extra = []
            status, body, content_type = err.status, error_body(err.reason), "application/json"
        except BackendError as err:  # the store failed, not the client: worth a retry
            log.warning("store error in %s %s: %s", scope["method"], scope["path"], err)
            status, body, content_type, extra = 503, error_body(str(err)), "application/json", []
        except RtaError as err:  # a client's mistake, refused where the request was checked
            status, body, content_type, extra = 400, error_body(str(err)), "application/json", []
        except Exception:  # a bug: the client hears nothing of it, the log everything
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            status, body, content_type, extra = 500, b'{"error": "internal error; see the server log"}', "application/json", []
        extra += [(b"www-authenticate", b'Bearer realm="rta"')] if status == 401 else []
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, headers: dict[str, str], receive: Callable[[], Awaitable[dict]]) -> Reply:
        method, path = scope["method"], scope["path"]
        route = self.routes.get((method, path))
        if route is None:
            if any(p == path for _, p in self.routes):
                raise HttpError(405, f"{method} is not allowed on {path}")
            raise HttpError(404, f"no endpoint {path}; see /openapi.json")
        handler, needs_key = route
        key = (needs_key if isinstance(needs_key, KeyGate) else self.gate).admit(headers) if needs_key else None
        params: dict[str, Any] = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if method == "POST":
            params |= await self._json_body(headers, receive)
        if isinstance(needs_key, KeyGate):  # the route's own gate: its handler learns who called (set last: no client can)
            params[ADMITTED] = key
        loop = asyncio.get_running_loop()
        if handler == self._query:  # parsed once; cache hits are answered on the event loop, with no thread hop
            request = QueryRequest.from_params(params)
            cached = self.ws.cached_answer(request)
            result = self._reply(cached) if cached is not None else await loop.run_in_executor(self.pool, self._answer, request)
        else:
            result = await loop.run_in_executor(self.pool, handler, params)
        if isinstance(result, _Html):
            return 200, result.encode(), "text/html; charset=utf-8", []
        if isinstance(result, pl.DataFrame | tuple):
            frame, meta = result if isinstance(result, tuple) else (result, {})
            described = json.dumps(meta, default=_json_default).encode()
            if ARROW in headers.get("accept", ""):  # the meta rides in a header: Arrow has no room for it per request
                return 200, self._encoded(frame, "arrow"), ARROW, [(b"x-rta-meta", described)]
            body = b'{"meta": ' + described + b', "data": ' + self._encoded(frame, "json") + b"}"
            return 200, body, "application/json", []
        return 200, json.dumps(result, default=_json_default).encode(), "application/json", []

    def _encoded(self, frame: pl.DataFrame, fmt: str) -> bytes:
        """A frame's bytes; a cached frame is the same object on every hit, so encode it once."""
        key = (id(frame), fmt)
        with self._encoding_lock:
            entry = self._encodings.get(key)
            if entry is not None and entry[0] is frame:  # the entry holds the frame: its id cannot be reused
                self._encodings.move_to_end(key)
                return entry[1]
        data = _arrow_bytes(frame) if fmt == "arrow" else json.dumps(frame.to_dicts(), default=_json_default).encode()
        with self._encoding_lock:
            self._encodings[key] = (frame, data)
            while len(self._encodings) > 256:
                self._encodings.popitem(last=False)
        return data

    async def _json_body(self, headers: dict[str, str], receive: Callable[[], Awaitable[dict]]) -> dict[str, Any]:
        if "json" not in headers.get("content-type", "application/json"):
            raise HttpError(415, f"send JSON (Content-Type: application/json), got {headers.get('content-type')!r}")
        raw = await read_body(headers, receive, MAX_BODY)
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise HttpError(400, f"malformed JSON: {err}") from None
        except RecursionError:
            raise HttpError(400, "malformed JSON: it nests deeper than the parser goes; send flat options") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the JSON body must be an object")
        return body

    def _health(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def _freshness(self, params: dict[str, Any]) -> dict[str, Any]:
        given = params.get("stream")
        given = given[-1] if isinstance(given, list) and given else given
        stream = None if given is None else text("stream", given, "stream=events")
        if stream is not None:
            self.ws.plan.definitions.stream(stream)  # an unknown name is a 400 that names the valid ones
        fresh = self.ws.freshness(stream=stream) if stream is not None else self.ws.freshness()
        return {
            "written_at": fresh.written_at,
            "newest_event": fresh.newest_event,
            "watermark": fresh.watermark,
            "newest_final_minute": fresh.newest_final_minute,
            "lag_seconds": fresh.lag_seconds,
        }

    def _definitions(self, _: dict[str, Any]) -> dict[str, Any]:
        defs = self.ws.project.definitions
        return {
            "streams": [{"name": s.name, "dimensions": list(s.dimensions), "measures": list(s.measure_names())} for s in defs.streams],
            "metrics": [{"name": m.name, "unit": m.unit, "derived": m.is_derived, "description": m.description} for m in defs.metrics],
            "rollups": [{"name": r.name, "by": list(r.by), "grains": list(r.grains)} for r in defs.rollups],
            # Per-person answers (/v1/funnel, /v1/retention, /v1/paths): what a client may ask for, with its default breakdown.
            "funnels": [
                {"name": f.name, "steps": list(f.names), "within": f.within, "order": f.order, "by": list(f.by)} for f in defs.funnels
            ],
            "retentions": [
                {"name": r.name, "every": r.every, "periods": r.periods, "cohort": r.cohort, "by": list(r.by)} for r in defs.retentions
            ],
            "paths": [{"name": p.name, "steps": p.steps, "label": p.label, "by": list(p.by)} for p in defs.paths],
        }

    def _query(self, params: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
        return self._answer(QueryRequest.from_params(params))

    def _answer(self, request: QueryRequest) -> tuple[pl.DataFrame, dict[str, Any]]:
        return self._reply(self.ws.answer(request))

    def _explain(self, params: dict[str, Any]) -> dict[str, Any]:
        explained = self.ws.explain(QueryRequest.from_params(params))
        q = explained.query
        return {
            "query": {"grain": q.grain, "start": q.start, "end": q.end, "total": q.total},
            "executed": [
                {
                    "table": e.table,
                    "sql": e.sql,
                    "rows_read": e.rows_read,
                    "bytes_read": e.bytes_read,
                    "seconds": e.seconds,
                    "raw_because": e.raw_because,
                }
                for e in explained.executed
            ],  # fmt: skip
            "seconds": explained.seconds,
            "cache": explained.cache,
        }

    @staticmethod
    def _reply(answer: Answer) -> tuple[pl.DataFrame, dict[str, Any]]:
        q = answer.query
        meta = {"grain": q.grain, "start": q.start, "end": q.end, "cache": "hit" if answer.cache_hit else "miss"}
        if answer.notice is not None:  # raw events answered: said in one line
            meta["notice"] = answer.notice
        return answer.frame, meta

    def _sql(self, params: dict[str, Any]) -> pl.DataFrame:
        statement = params.get("sql")
        if not isinstance(statement, str):
            raise HttpError(400, 'send {"sql": "SELECT ..."}')
        try:
            return self.ws.sql(text("sql", statement, '{"sql": "SELECT ..."}'))
        except RecursionError:  # sqlglot parses recursively, and check_sql lets this one through
            raise HttpError(400, "refused: the statement nests too deeply to parse; flatten it or split it in steps") from None


class _Html(str):
    """A page to send as HTML."""


def _docs_page() -> _Html:
    """The API reference as plain HTML from the OpenAPI document: readable offline, nothing fetched."""
    import html

    rows = []
    for path, methods in OPENAPI["paths"].items():
        for method, op in methods.items():
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code> {html.escape(p.get('description', ''))}</li>" for p in op.get("parameters", [])
            )
            rows.append(f"<h3><code>{method.upper()} {html.escape(path)}</code></h3><p>{html.escape(op['summary'])}</p><ul>{params}</ul>")
    auth = "<p>Send a read key: <code>Authorization: Bearer &lt;key&gt;</code> (<code>rta keys create read</code>).</p>"
    return _Html(f"<!doctype html><title>rta query API</title><h1>rta query API</h1>{auth}{''.join(rows)}")


def _arrow_bytes(frame: pl.DataFrame) -> bytes:
    table = frame.to_arrow()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def serve_in_thread(app: Callable[..., Awaitable[None]], host: str = "127.0.0.1", port: int = 8765) -> tuple[int, Callable[[], None]]:
    """Serve ``app`` on a thread (as `rta run` does beside the flow); returns the port it listens
    on (``port=0`` picks a free one) and a stopper."""
    import uvicorn

    # proxy_headers off: uvicorn would believe X-Forwarded-For from loopback; the collect API decides ([ingest] trust_forwarded_for).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            server.run()
        except (SystemExit, OSError):  # uvicorn exits when it cannot bind; reported to the caller below
            log.debug("query API server stopped", exc_info=True)

    thread = threading.Thread(target=run, name="rta-api-server", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    if not server.started:
        msg = f"the query API could not listen on {host}:{port} (is the port in use?); pass another --port, or --port 0 for none"
        raise BackendError(msg)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    bound = next((sock.getsockname()[1] for listening in server.servers for sock in listening.sockets), port)
    return bound, stop


_TABLE = {
    "200": {
        "description": "Rows as JSON records (with meta), or an Arrow IPC stream when Accept asks for it.",
        "content": {"application/json": {}, ARROW: {}},
    },
    "400": {"description": "Invalid query; the error says what and how to fix it."},
    "401": {"description": "Missing, unknown or revoked key."},
    "403": {"description": "A write key cannot read."},
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "rta query API", "version": "1"},
    "components": {
        "securitySchemes": {"readKey": {"type": "http", "scheme": "bearer"}, "adminKey": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Filter": FILTER_SCHEMA},
    },
    "security": [{"readKey": []}],
    "paths": {
        "/v1/query": {
            "get": {"summary": "Metrics by time bucket and dimensions", "parameters": openapi_parameters(), "responses": _TABLE},
            "post": {
                "summary": "The same, with a JSON body (where as a filter tree)",
                "requestBody": {"content": {"application/json": {"schema": openapi_body()}}},
                "responses": _TABLE,
            },
        },
        "/v1/sql": {
            "post": {
                "summary": "One read-only SELECT over the project's tables",
                "requestBody": {"content": {"application/json": {}}},
                "responses": _TABLE,
            }
        },
        "/v1/explain": {
            "get": {
                "summary": "Which tables answer a query and what they read",
                "parameters": openapi_parameters(),
                "responses": {"200": {"description": "Explanation"}, "400": _TABLE["400"]},
            },
            "post": {
                "summary": "The same, with a JSON body",
                "requestBody": {"content": {"application/json": {"schema": openapi_body()}}},
                "responses": {"200": {"description": "Explanation"}, "400": _TABLE["400"]},
            },
        },
        "/v1/freshness": {
            "get": {
                "summary": "The flow's watermark and lag (of one stream, or all)",
                "parameters": [{"name": "stream", "in": "query", "schema": {"type": "string"}, "description": "A stream's name."}],
                "responses": {"200": {"description": "Freshness"}},
            }
        },
        "/v1/definitions": {"get": {"summary": "Streams, metrics and rollups", "responses": {"200": {"description": "Definitions"}}}},
        "/v1/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "OK"}}}},
        **PEOPLE_PATHS,
        **PERSON_PATHS,
    },
}
