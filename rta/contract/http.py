"""The HTTP prelude the collect API, the query API and the dashboard pages share: one error, one body
reader, one authorization step.

Each app is a small raw ASGI callable (the fastest option measured, see ``rta/query/api.py``);
what they must agree on lives here, below all three.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rta.contract.keys import ApiKey, KeyStore, Kind, secret_from

DRAIN_BYTES = 64 * 1024 * 1024


class HttpError(Exception):
    """An HTTP error with a reason for the client (and, for 429/503, when to retry)."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def error_body(reason: str) -> bytes:
    """The JSON reply of a refused request: ``{"error": reason}``.

    >>> error_body("unknown or revoked API key")
    b'{"error": "unknown or revoked API key"}'
    """
    return json.dumps({"error": reason}).encode()


async def read_body(headers: dict[str, str], receive: Callable[[], Awaitable[dict]], limit: int) -> bytes:
    """A request's body, or 413 if it is over ``limit`` bytes.

    An oversized body is still read to its end (up to a bound) so the client hears the 413
    instead of a connection reset.
    """
    header = headers.get("content-length", "")
    declared = int(header) if header.isascii() and header.isdigit() else 0  # the server refused a malformed one already
    too_big = declared > limit
    chunks, size = [], 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":  # cut short: nothing of it may be kept (a retry resends it whole)
            raise HttpError(400, "the client went away before the whole body arrived; nothing was kept")
        chunk = message.get("body", b"")
        size += len(chunk)
        too_big = too_big or size > limit
        if not too_big:
            chunks.append(chunk)
        if not message.get("more_body") or size > DRAIN_BYTES:
            break
    if too_big:
        raise HttpError(413, f"the body is {max(size, declared):,} bytes, over the limit of {limit:,} bytes per request")
    return b"".join(chunks)


@dataclass
class KeyGate:
    """Who may call an app: the key in the Authorization header (a Bearer token or the Basic user
    name) or, where headers cannot be set (``sendBeacon``, a shared link), in the query string.

    ``noun`` names the key in refusals ("write key"); ``missing`` says how to send one; ``forbidden``
    is the 403 for a live key of another kind (``{kind}`` is filled in). ``cache_seconds`` keeps
    checked secrets that long (the collect API: a revoked key stops working within it); 0 checks
    the key file's record on every request.
    """

    keys: KeyStore
    kinds: tuple[Kind, ...]
    noun: str
    missing: str
    forbidden: str = "a {kind} key cannot do this"
    cache_seconds: float = 0.0
    _checked: dict[str, tuple[ApiKey | None, float]] = field(default_factory=dict, repr=False)

    def admit(self, headers: dict[str, str], given: str = "", *, missing: str = "") -> ApiKey:
        """The live key of an allowed kind, or the 401/403 that says what was wrong (``missing``
        replaces the gate's hint where the request says more, like the dashboard asked for)."""
        try:
            secret = secret_from(headers.get("authorization", "")) or given
        except ValueError as err:
            raise HttpError(401, str(err)) from None
        if not secret:
            raise HttpError(401, missing or self.missing)
        key = self._check(secret)
        if key is None:
            raise HttpError(401, f"unknown or revoked {self.noun}")
        if key.kind not in self.kinds:
            raise HttpError(403, self.forbidden.format(kind=key.kind))
        return key

    def _check(self, secret: str) -> ApiKey | None:
        if not self.cache_seconds:
            return self.keys.check(secret)
        now = time.monotonic()
        cached = self._checked.get(secret)
        if cached is None or now - cached[1] > self.cache_seconds:
            if len(self._checked) >= 10_000:  # bounded: a client cycling random secrets cannot grow it
                self._checked.clear()
            cached = self._checked[secret] = (self.keys.check(secret), now)
        return cached[0]
