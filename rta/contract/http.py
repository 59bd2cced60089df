"""The HTTP prelude the collect API, the query API and the dashboard pages share: one error, one body reader.

Each app is a small raw ASGI callable (the fastest option measured, see ``rta/query/api.py``);
what they must agree on lives here, below all three.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

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
