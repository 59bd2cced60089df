"""A small Python client for the collect API (standard library only).

>>> client = Client("WRITE_KEY", "http://127.0.0.1:8765", start=False)
>>> client.track("user-1", "purchase", {"revenue": 12.5, "country": "FR"})
>>> client.queued
1

Events are batched (``batch_size`` events or ``flush_interval`` seconds), gzipped and sent by
a background thread. Network errors, 408, 429 and 5xx are retried with exponential backoff
and jitter (honouring ``Retry-After``), with the same ``messageId``\\s so nothing counts twice;
400, 401, 403 and 413 are not retried. The queue is bounded: when full, new events are
dropped and counted (``dropped``). ``flush()`` waits for the queue to drain; it also runs at
exit. With ``spill_dir``, events still unsent at exit (or after retries ran out) are written
there and sent by the next client that starts with the same folder.
"""

from __future__ import annotations

import atexit
import base64
import gzip
import json
import logging
import queue
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("rta.sdk")
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class Client:
    """Send events to an rta collect API (or anything speaking the Segment HTTP spec)."""

    def __init__(
        self,
        write_key: str,
        host: str = "http://127.0.0.1:8765",
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 100_000,
        gzip_body: bool = True,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        spill_dir: str | Path | None = None,
        start: bool = True,
    ) -> None:
        self.url = host.rstrip("/") + "/v1/batch"
        self._auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.gzip_body = gzip_body
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.spill_dir = Path(spill_dir) if spill_dir else None
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self.sent = 0
        self.dropped = 0  # refused by a full queue, or by the server (4xx)
        self.rejected: list[dict[str, Any]] = []  # the server's reasons, newest last (bounded)
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rta-sdk", daemon=True)
        if start:
            self._resend_spilled()
            self._thread.start()
            atexit.register(self.close)

    @property
    def queued(self) -> int:
        """Events waiting to be sent."""
        return self._queue.qsize()

    def track(self, user_id: str | None, event: str, properties: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record an action (``anonymous_id=`` instead of a user id, ``timestamp=``, ``message_id=``)."""
        self._enqueue({"type": "track", "event": event, "properties": dict(properties or {})}, user_id, fields)

    def page(self, user_id: str | None, name: str | None = None, properties: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record a page view."""
        self._enqueue({"type": "page", "name": name, "properties": dict(properties or {})}, user_id, fields)

    def screen(self, user_id: str | None, name: str | None = None, properties: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record a mobile screen view."""
        self._enqueue({"type": "screen", "name": name, "properties": dict(properties or {})}, user_id, fields)

    def identify(self, user_id: str, traits: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Tie traits to a user."""
        self._enqueue({"type": "identify", "traits": dict(traits or {})}, user_id, fields)

    def send(self, message: Mapping[str, Any]) -> None:
        """Queue a message already in Segment form (``type``, ``event``, ``userId``...); a ``messageId`` is added if missing."""
        self._put({"messageId": str(uuid.uuid4()), **message})

    def _put(self, message: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(message)
            self._idle.clear()
        except queue.Full:
            self.dropped += 1

    def _enqueue(self, message: dict[str, Any], user_id: str | None, fields: dict[str, Any]) -> None:
        anonymous_id = fields.pop("anonymous_id", None)
        if user_id is None and anonymous_id is None:
            msg = "give a user id or anonymous_id="
            raise ValueError(msg)
        stamp = fields.pop("timestamp", None) or datetime.now(UTC)
        message |= {
            "messageId": fields.pop("message_id", None) or str(uuid.uuid4()),
            "timestamp": stamp.isoformat() if isinstance(stamp, datetime) else str(stamp),
            "context": {"library": {"name": "rta.sdk", "version": "1"}, **fields.pop("context", {})},
        }
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        message |= fields
        self._put(message)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was sent (or given up); False on timeout."""
        if not self._thread.is_alive():
            self._send_all()
            return True
        return self._idle.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush, stop the thread; with ``spill_dir``, what could not be sent is kept on disk."""
        if self._thread.is_alive():
            self.flush(timeout)
            self._stop.set()
            self._thread.join(timeout)
        leftover = self._take(self._queue.qsize())
        if leftover:
            self._spill(leftover)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._send_all()
            self._stop.wait(self.flush_interval if self._queue.empty() else 0)

    def _take(self, n: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < n:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _send_all(self) -> None:
        while batch := self._take(self.batch_size):
            if not self._post(batch):
                self._spill(batch)
        if self._queue.empty():
            self._idle.set()

    def _post(self, batch: list[dict[str, Any]]) -> bool:
        """Send one batch, retrying what may succeed later; False if it could not be delivered."""
        body = json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}).encode()
        headers = {"Content-Type": "application/json", "Authorization": self._auth, "User-Agent": "rta-sdk/1"}
        if self.gzip_body:
            body, headers["Content-Encoding"] = gzip.compress(body, 5), "gzip"
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += len(batch)
                return True
            except urllib.error.HTTPError as err:
                detail = err.read()[:10_000]
                if err.code not in RETRY_STATUSES:
                    self._refused(err.code, detail, batch)
                    return True  # sent; the server kept what it could and said why
                retry_after = err.headers.get("Retry-After")
                wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
            except (urllib.error.URLError, OSError) as err:
                log.debug("rta.sdk: %s (attempt %s)", err, attempt + 1)
            if attempt < self.max_retries:
                delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
                if self._stop.wait(max(delay, wait or 0.0)) and self.spill_dir:
                    return False  # closing: keep the batch on disk rather than wait out the retries
        return False

    def _refused(self, status: int, detail: bytes, batch: list[dict[str, Any]]) -> None:
        try:
            answer = json.loads(detail)
        except ValueError:
            answer = {"error": detail.decode("utf-8", "replace")}
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        dropped = len(rejected) if status == 400 and isinstance(rejected, list) else len(batch)
        self.dropped += dropped
        self.sent += len(batch) - dropped
        self.rejected = (self.rejected + (rejected if isinstance(rejected, list) else [answer]))[-1000:]
        log.warning("rta.sdk: the server refused %s event(s) (HTTP %s): %s", dropped, status, str(answer)[:300])

    def _spill(self, batch: list[dict[str, Any]]) -> None:
        if not self.spill_dir:
            self.dropped += len(batch)
            log.warning("rta.sdk: %s event(s) could not be delivered and were dropped (no spill_dir)", len(batch))
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.jsonl"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(m) + "\n" for m in batch))
        tmp.replace(path)

    def _resend_spilled(self) -> None:
        if not self.spill_dir or not self.spill_dir.is_dir():
            return
        for path in sorted(self.spill_dir.glob("*.jsonl")):
            messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            for start in range(0, len(messages), self.batch_size):
                if not self._post(messages[start : start + self.batch_size]):
                    return  # still unreachable: keep the rest for next time
            path.unlink()
