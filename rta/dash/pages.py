"""Shared live dashboards: every DSL dashboard as a web page at ``/d/NAME`` for people who never open Jupyter.

The page is HTML plus Vega and a small script, all served by rta (no CDN). It fetches
``/d/NAME/data`` (the same blocks as the report) every few seconds and redraws only what
changed. A read key or a share token (``rta share NAME``, revocable) opens it; filters live
in the URL. Rendered blocks are cached per view and store version, so a thousand viewers of
one view cost one set of queries per write.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import html
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

from rta.contract.http import HttpError, KeyGate, error_body
from rta.contract.keys import KeyStore
from rta.dash.blocks import CSS, blocks, header_html
from rta.dash.data import load_board, top_values
from rta.dash.export import vega_bundle
from rta.dash.view import RANGE_PRESETS, View
from rta.dsl.dashboard import GRAIN_CHOICES, Dashboard
from rta.errors import RtaError
from rta.query.cache import QueryCache
from rta.query.protocol import Workspace

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
log = logging.getLogger("rta.pages")
SHARE_PREFIX = "dashboard:"
STALE_SECONDS = 30.0  # how old a rendering may be served while the next one is made
CONTROLS_CSS = ".controls{margin:10px 0 0;display:flex;flex-wrap:wrap;gap:10px;color:var(--muted);font-size:13px}"


def share_name(dashboard: str) -> str:
    """The key name a share token for ``dashboard`` carries."""
    return SHARE_PREFIX + dashboard


@functools.cache
def _static(name: str) -> tuple[bytes, bytes]:
    """A static file and its gzip, built once."""
    body = vega_bundle().encode() if name == "vega.js" else resources.files("rta.dash").joinpath("static", name).read_bytes()
    return body, gzip.compress(body, 6)


def page_html(board: Dashboard) -> str:
    """The page shell; its script fills it from ``/d/NAME/data``."""
    ranges = (
        "".join(f'<option value="{r}">last {r}</option>' for r in dict.fromkeys([*RANGE_PRESETS, board.last]))
        + '<option value="custom" disabled>custom</option>'
    )
    grains = "".join(f'<option value="{g}">{g}</option>' for g in GRAIN_CHOICES)
    splits = '<option value="">as designed</option>' + "".join(
        f'<option value="{html.escape(d)}">{html.escape(d)}</option>' for d in board.dimensions()
    )
    # One picker per filter: each pick adds a value (several values of a dimension: any of them).
    pickers = "".join(
        f'<label>{html.escape(d)} <select class="rta-filter" data-dim="{html.escape(d)}"><option value="">add…</option></select></label>'
        for d in board.filters
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(board.title)} · rta</title><link rel="icon" href="data:,"><style>{CSS}{CONTROLS_CSS}</style></head>'
        f'<body><main id="rta" data-name="{html.escape(board.name)}" data-refresh="{board.refresh}">'
        '<div id="rta-header"></div>'
        f'<div class="controls"><label>range <select id="rta-range">{ranges}</select></label>'
        f'<label>grain <select id="rta-grain">{grains}</select></label><label>break down by <select id="rta-by">{splits}</select></label>'
        f'{pickers}<span id="rta-error" class="error"></span></div>'
        '<div id="rta-tiles"></div><div class="grid" id="rta-grid"></div>'
        f"<footer>rta · refreshes every {board.refresh} s · click a bar or a row to filter</footer></main>"
        '<script src="/static/vega.js"></script><script src="/static/dash.js"></script></body></html>'
    )


class DashboardPages:
    """ASGI app serving ``/d/NAME``, ``/d/NAME/data`` and ``/static/*``; everything else goes to ``fallback``."""

    def __init__(self, workspace: Workspace, keys: KeyStore, fallback: App, *, threads: int = 8) -> None:
        self.ws = workspace
        self.gate = KeyGate(keys, ("read", "share"), "token", missing="send a share token or a read key")
        self.fallback = fallback
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rta-pages")
        self.rendered: QueryCache[bytes] = QueryCache(max_entries=256)  # single flight per view and store version
        self.latest: OrderedDict[tuple[str, View], tuple[object, float, bytes]] = OrderedDict()  # (version, rendered at, body)
        self._refreshing: set[tuple[str, View]] = set()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith("/d/") or path.startswith("/static/")):
            await self.fallback(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, body, extra = await self._handle(scope["method"], path, scope.get("query_string", b"").decode("latin-1"), headers)
        except HttpError as err:
            status = err.status
            if path.count("/") == 2 and "text/html" in headers.get("accept", ""):  # a person opening /d/NAME
                body, extra = _refusal_page(err).encode(), [(b"content-type", b"text/html; charset=utf-8")]
            else:
                body, extra = error_body(err.reason), [(b"content-type", b"application/json")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*extra, (b"cache-control", b"no-store")] if status != 200 or not path.startswith("/static/") else extra,
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, method: str, path: str, query: str, headers: dict[str, str]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if method != "GET":
            raise HttpError(405, f"{method} is not allowed on {path}")
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in ("vega.js", "dash.js"):
                raise HttpError(404, f"no static file {name!r}")
            body, packed = _static(name)
            zipped = "gzip" in headers.get("accept-encoding", "")
            extra = [(b"content-type", b"text/javascript; charset=utf-8"), (b"cache-control", b"public, max-age=3600")]
            return 200, packed if zipped else body, [*extra, *([(b"content-encoding", b"gzip")] if zipped else [])]
        name, _, rest = path.removeprefix("/d/").partition("/")
        params = parse_qs(query, keep_blank_values=True)  # `?country=` is a parameter too, not nothing
        missing = f"this dashboard needs a share token or a read key: open /d/{name}?token=... (create one with `rta share {name}`)"
        key = self.gate.admit(headers, (params.get("token") or params.get("key") or [""])[-1], missing=missing)
        try:
            board = self.ws.plan.definitions.dashboard(name)
        except RtaError as err:  # only read keys learn the other dashboards' names
            raise HttpError(404, str(err) if key.kind == "read" else f"no dashboard named {name!r}") from None
        if not (key.kind == "read" or (key.kind == "share" and key.name == share_name(board.name))):
            raise HttpError(403, f"this {key.kind} key does not open dashboard {board.name!r}; use its share token or a read key")
        if rest not in ("", "data"):
            raise HttpError(404, f"no page {path}; dashboards are at /d/NAME")
        try:  # the page checks its URL too: a person opening a misspelt link learns why, not a blank page
            view = View.from_params(board, {k: v for k, v in params.items() if k not in ("token", "key")})
        except RtaError as err:
            raise HttpError(400, str(err)) from None
        if rest == "":
            return 200, page_html(board).encode(), [(b"content-type", b"text/html; charset=utf-8")]
        return 200, await self._body(board, view), [(b"content-type", b"application/json")]

    async def _body(self, board: Dashboard, view: View) -> bytes:
        """The view's rendered blocks. After a write, viewers get the previous rendering while one
        thread renders the new one (waiting only if it is older than ``STALE_SECONDS`` and nothing is
        rendering it): under steady ingest each view is rendered back to back, however many watch it."""
        key, version = (board.name, view), self.ws.data_version()
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self.latest.get(key)
            if entry is not None:
                self.latest.move_to_end(key)
                if entry[0] == version:
                    return entry[2]
                busy = key in self._refreshing
                if not busy:
                    self._refreshing.add(key)
                    loop.run_in_executor(self.pool, self._refresh, key, board, view, version)
                if busy or time.monotonic() - entry[1] < STALE_SECONDS:
                    return entry[2]
        render = functools.partial(self._render, board, view)
        body, _ = await loop.run_in_executor(self.pool, self.rendered.get_or_compute, (key, version), 60.0, render)
        self._store(key, version, body)
        return body

    def _refresh(self, key: tuple[str, View], board: Dashboard, view: View, version: object) -> None:
        try:
            self._store(key, version, self.rendered.get_or_compute((key, version), 60.0, lambda: self._render(board, view))[0])
        except Exception:  # the next request renders it in the foreground and reports the error
            log.exception("rendering dashboard %r failed", board.name)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: tuple[str, View], version: object, body: bytes) -> None:
        with self._lock:
            self.latest[key] = (version, time.monotonic(), body)
            self.latest.move_to_end(key)
            while len(self.latest) > 256:
                self.latest.popitem(last=False)

    def _render(self, board: Dashboard, view: View) -> bytes:
        data = load_board(self.ws, board, view)
        parts = [
            {"key": b.key, "title": b.title, "html": b.html, "spec": b.spec, "drill": b.drill, "wide": b.wide, "kpi": b.kpi}
            for b in blocks(data)
        ]
        # "query" is the view's URL in its one spelling (f.country=DE for country=DE): the page puts it in the address bar.
        view_params = {
            "last": view.last,
            "grain": view.grain,
            "by": view.breakdown or "",
            "filters": dict(view.filters),
            "query": urlencode(view.to_params(), doseq=True),
        }
        choices = {dim: top_values(self.ws, board, dim, view) for dim in board.filters}  # what each picker offers
        payload = {
            "header": header_html(data, live=True),
            "blocks": parts,
            "view": view_params,
            "choices": choices,
            "freshness": data.freshness_text(),
        }
        return json.dumps(payload, default=str, separators=(",", ":")).encode()


def _refusal_page(err: HttpError) -> str:
    """What a browser shows instead of a dashboard it may not open (or whose link asks for something it cannot show)."""
    hint = (
        "<p>Fix the link, or open the dashboard without it and pick the range and filters on the page.</p>"
        if err.status == 400
        else "<p>Ask whoever shared it for a link with a token, or run <code>rta share NAME</code> in the project.</p>"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rta: {err.status}</title><style>{CSS}</style></head>'
        f'<body><main><header><h1>This dashboard cannot be shown</h1></header><p class="error">{html.escape(err.reason)}</p>'
        f"{hint}</main></body></html>"
    )


__all__ = ["DashboardPages", "page_html", "share_name"]
