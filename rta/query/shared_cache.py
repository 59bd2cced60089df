"""Results shared across API replicas through Redis (``RTA_REDIS_URL``), as Arrow IPC with a TTL."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import polars as pl

from rta.errors import BackendError


class RedisResults:
    """A results store in Redis; keys are scoped by the plan, so projects and versions never collide."""

    def __init__(self, url: str, scope: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = f"rta:{scope}:"
        self.url = url
        try:
            self._redis.ping()
        except Exception as err:
            msg = f"cannot reach Redis at {url!r} (RTA_REDIS_URL): {err}; start it or unset RTA_REDIS_URL to cache in-process only"
            raise BackendError(msg) from None

    def _key(self, query: Any) -> str:
        return self._prefix + hashlib.sha256(repr(query).encode()).hexdigest()

    def get(self, query: Any) -> pl.DataFrame | None:
        """The shared result of ``query``, if another replica (or this one) stored it."""
        data = self._redis.get(self._key(query))
        return None if data is None else pl.read_ipc_stream(io.BytesIO(data))  # type: ignore[arg-type]

    def set(self, query: Any, frame: pl.DataFrame, ttl: float) -> None:
        """Store ``frame`` for ``ttl`` seconds."""
        sink = io.BytesIO()
        frame.write_ipc_stream(sink)
        self._redis.set(self._key(query), sink.getvalue(), px=max(int(ttl * 1000), 1))
