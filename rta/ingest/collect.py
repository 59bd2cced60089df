"""The collect API: the Segment HTTP tracking spec over raw ASGI, answering once events are durable.

``POST /v1/batch`` (also ``/v1/import``) takes ``{"batch": [...]}``, a JSON array or NDJSON,
optionally gzipped; ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/identify`` take one
message. A write key comes as the Basic user name (Segment SDKs) or a bearer token. Bad
events are rejected one by one (400 with ``rejected`` listing them; the others are kept);
repeated insert ids within the window are counted once; over the rate limit -> 429, log full
or disk short -> 503, both with ``Retry-After``. Never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import threading
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from rta.compiler.plan import StreamPlan
from rta.contract.http import HttpError, KeyGate, read_body
from rta.contract.keys import KeyStore
from rta.ingest.dedup import InFlight
from rta.ingest.fast_path import FastPath
from rta.ingest.kafka import KafkaLog
from rta.ingest.log import EventLog, LogFull
from rta.ingest.segment import Limits, Rejection, RequestError, validate

log = logging.getLogger("rta.ingest")
MAX_BODY_BYTES = 5 * 1024 * 1024
SINGLE = {f"/v1/{kind}": kind for kind in ("track", "page", "screen", "identify", "group", "alias")}
BATCH = {"/v1/batch", "/v1/import"}
KEY_CACHE_SECONDS = 5.0  # a revoked key stops working within this long
Scope = dict[str, Any]


@dataclass
class RateLimit:
    """A token bucket of events per key: ``rate`` per second, bursts up to ``burst``."""

    rate: float = 200_000.0
    burst: float = 400_000.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key id -> (tokens, when)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, events: int, now: float | None = None) -> float:
        """Take ``events`` tokens; returns 0 when allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < events:
                self._buckets[key] = (tokens, now)
                return max((events - tokens) / self.rate, 0.001)
            self._buckets[key] = (tokens - events, now)
            return 0.0


class CollectApi:
    """ASGI app: receives events for one stream into its durable log."""

    def __init__(
        self,
        stream: StreamPlan,
        events: EventLog | KafkaLog,
        keys: KeyStore,
        *,
        limits: Limits = Limits(),  # noqa: B008 (frozen)
        rate: RateLimit | None = None,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.stream = stream
        self.fast = FastPath(stream)
        self.log = events
        self.limits = limits.within(stream)  # nothing acknowledged may be judged too late or too early by the flow
        self.rate = rate or RateLimit()
        self.trust_forwarded_for = trust_forwarded_for  # else anyone could pick the country their events count in
        self.gate = KeyGate(
            keys,
            ("write",),
            "write key",
            missing="missing write key: send it as the Basic user name or a Bearer token (`rta keys create write`)",
            forbidden="a {kind} key cannot ingest; use a write key (`rta keys create write`)",
            cache_seconds=KEY_CACHE_SECONDS,
        )
        self._partitions = itertools.cycle(list(events.partitions))

    def handles(self, method: str, path: str) -> bool:
        """Whether a request is for this app (the rest goes to the query API)."""
        return path in SINGLE or path in BATCH or (method == "GET" and path == "/rta.js")

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        extra: list[tuple[bytes, bytes]] = [(b"access-control-allow-origin", b"*")]
        try:
            status, body, content_type = await self._handle(scope, headers, receive)
        except HttpError as err:
            status, body, content_type = err.status, json.dumps({"success": False, "error": err.reason}).encode(), "application/json"
            if status == 204:  # a CORS preflight
                body = b""
                extra += [
                    (b"access-control-allow-methods", b"POST, OPTIONS"),
                    (b"access-control-allow-headers", b"authorization, content-type"),
                ]
            if err.retry_after is not None:
                extra.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            status, body, content_type = 500, b'{"success": false, "error": "internal error; see the server log"}', "application/json"
        start = {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode()), *extra]}
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, headers: dict[str, str], receive: Callable[[], Awaitable[dict]]) -> tuple[int, bytes, str]:
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":  # browsers ask before a cross-origin POST with JSON
            raise HttpError(204, "")
        if path == "/rta.js":
            from rta.ingest.tracker import tracker_js

            return 200, tracker_js(), "application/javascript; charset=utf-8"
        if method != "POST":
            raise HttpError(405, f"{method} is not allowed on {path}; POST events")
        # sendBeacon cannot set headers: the browser tracker sends ?writeKey=
        key = self.gate.admit(headers, parse_qs(scope.get("query_string", b"").decode("latin-1")).get("writeKey", [""])[-1])
        raw = await read_body(headers, receive, MAX_BODY_BYTES)
        content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in {"application/json", "text/plain", "application/x-ndjson", "application/ndjson"}:
            raise HttpError(415, f"send JSON (application/json) or NDJSON (application/x-ndjson), got {content_type!r}")
        body = _decompress(raw, headers.get("content-encoding", "identity").strip().lower())
        forwarded = headers.get("x-forwarded-for", "").split(",")[0].strip() if self.trust_forwarded_for else ""
        client_ip = (forwarded or (scope.get("client") or ("",))[0]) or None
        ndjson = content_type.endswith("ndjson")
        given = headers.get("idempotency-key")

        def seed() -> str:  # ids for messages without one: stable across retries of the same request
            return given or hashlib.blake2b(body, digest_size=12).hexdigest()

        rejected: list[Rejection] = []
        try:
            fast = None if ndjson or path in SINGLE else self.fast.lines(body, datetime.now(UTC), self.limits, client_ip, seed)
            if fast is not None:
                lines, insert_ids = fast
            else:
                checked = validate(body, self.stream, ndjson=ndjson, single_type=SINGLE.get(path), client_ip=client_ip,
                                   limits=self.limits, request_id=given)  # fmt: skip
                lines, insert_ids, rejected = checked.lines, checked.insert_ids, checked.rejected
        except RequestError as err:
            raise HttpError(err.status, err.reason) from None
        wait = self.rate.take(key.id, len(lines))
        if wait:
            raise HttpError(429, f"over the rate limit of {self.rate.rate:,.0f} events/s for this key; retry later", wait)
        accepted = 0
        if lines:
            try:
                fresh = await asyncio.wrap_future(self.log.submit_events(next(self._partitions), lines, insert_ids))
            except LogFull as err:
                raise HttpError(503, f"{err}; retry later", 5.0) from None
            except InFlight as err:
                raise HttpError(503, f"{err}; retry", 1.0) from None
            except OSError as err:  # the disk filled (or failed) between the room check and the write: nothing was acknowledged
                log.warning("the event log could not be written: %s", err)
                reason = f"the event log could not be written ({err.strerror or err}); nothing was kept, retry later"
                raise HttpError(503, reason, 5.0) from None
            accepted = sum(fresh)
        result: dict[str, Any] = {"success": not rejected, "accepted": accepted, "duplicates": len(lines) - accepted}
        if rejected:
            result["rejected"] = [r.as_dict() for r in rejected]
            return 400, json.dumps(result).encode(), "application/json"
        return 200, json.dumps(result).encode(), "application/json"


def _decompress(raw: bytes, encoding: str) -> bytes:
    """The body, inflated: every member of a gzip stream (several may be concatenated), within the size limit."""
    if encoding in {"identity", ""}:
        return raw
    if encoding not in {"gzip", "deflate"}:
        raise HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    out = bytearray()
    rest = raw
    while True:
        inflater = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)  # 47: gzip or zlib header
        try:
            out += inflater.decompress(rest, MAX_BODY_BYTES + 1 - len(out))
        except zlib.error as err:
            if out:
                reason = f"the body has {len(rest):,} bytes after the end of its gzip data that are not a gzip member"
                raise HttpError(400, reason) from None
            raise HttpError(400, f"the body is not valid {encoding}: {err}") from None
        if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise HttpError(413, f"the body inflates past the limit of {MAX_BODY_BYTES:,} bytes per request")
        if not inflater.eof:
            raise HttpError(400, f"the body is not valid {encoding}: the compressed data ends before its end marker")
        rest = inflater.unused_data
        if not rest.strip(b"\x00"):  # the end (some writers pad with zeros)
            break
        if encoding != "gzip":
            raise HttpError(400, f"the body has {len(rest):,} bytes after the end of its {encoding} data")
    return bytes(out)
