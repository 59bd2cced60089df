"""A small Python client for the collect API (standard library only).

>>> client = Client("WRITE_KEY", "http://127.0.0.1:8765", start=False)
>>> client.track("user-1", "purchase", {"revenue": 12.5, "country": "FR"})
>>> client.queued, client.pending
(1, 1)

Events are batched (``batch_size`` events or ``flush_interval`` seconds), gzipped and sent by
a background thread. Network errors, 408, 429 and 5xx are retried with exponential backoff
and jitter (honouring ``Retry-After``), with the same ``messageId``\\s so nothing counts twice;
400, 401, 403 and 413 are not retried. The queue is bounded: when full, new events are
dropped and counted (``dropped``), or with ``block=True`` wait for room. ``flush()`` waits for
the queue to drain; it also runs at exit.

With ``spill_dir``, a batch whose retries ran out is written there and the client is in an
outage (``outage_since``): what is queued goes to disk at once, so memory stays bounded and
nothing is dropped, and the oldest spilled batch is offered again with backoff until the
server takes it; then the rest follows. Events still unsent at exit stay there for the next
client that starts with the same folder. ``pending`` counts events taken and not yet
acknowledged or refused (queued, in flight or spilled).
"""

from __future__ import annotations

import atexit
import base64
import gzip
import hashlib
import http.client
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
        block: bool = False,
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
        self.block = block
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
        self.outage_since: float | None = None  # time.monotonic() of the first failed attempt since the server last answered
        self.last_error = ""  # why the last attempt failed
        self._lock = threading.Condition()  # guards the counts below and wakes flush()
        self._pending = 0  # taken and not yet acknowledged or refused
        self._spilled: dict[Path, int] = {}  # files this client resends, and their events
        self._asked_wait = 0.0  # the server's last Retry-After
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rta-sdk", daemon=True)
        if start:
            self._adopt_spilled()
            self._thread.start()
            atexit.register(self.close)

    @property
    def queued(self) -> int:
        """Events waiting in memory to be sent."""
        return self._queue.qsize()

    @property
    def pending(self) -> int:
        """Events taken and not yet acknowledged or refused: queued, in flight, or spilled to disk."""
        with self._lock:
            return self._pending

    @property
    def spilled(self) -> int:
        """Events on disk waiting to be sent again."""
        with self._lock:
            return sum(self._spilled.values())

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
        with self._lock:
            self._pending += 1
        while True:
            waiting = self.block and self._thread.is_alive()  # backpressure while the sender (or the spill) makes room
            try:
                self._queue.put(message, block=waiting, timeout=0.5 if waiting else None)
                return
            except queue.Full:
                if not waiting:
                    self._settle(dropped=1)
                    return

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
        """Wait until every queued event was sent, refused, or (in an outage) spilled; False on timeout."""
        if not self._thread.is_alive():
            self._send_all()
            return True
        with self._lock:
            return self._lock.wait_for(self._settled, timeout)

    def _settled(self) -> bool:
        """Nothing left to do now: all answered, or the server is away and the rest is on disk."""
        on_disk = sum(self._spilled.values())
        return self._pending == 0 or (self.outage_since is not None and self.spill_dir is not None and self._pending == on_disk)

    def close(self, timeout: float = 30.0) -> None:
        """Flush, stop the thread; with ``spill_dir``, what could not be sent is kept on disk."""
        if self._thread.is_alive():
            self.flush(timeout)
            self._stop.set()
            self._thread.join(timeout)
        leftover = self._take(self._queue.qsize())
        if leftover:
            self._spill(leftover)

    @property
    def running(self) -> bool:
        """Whether the sending thread runs (it stops at close, or on a bug, which it logs)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("rta.sdk: the sending thread failed; what it did not send is spilled (or dropped) at close")

    def _loop(self) -> None:
        misses = 0
        while not self._stop.is_set():
            if self.spill_dir is not None and self.outage_since is not None:
                self._spill(self._take(self._queue.qsize()))  # the server is away: keep the queue open
            if self._spilled and not self._resend_spilled():
                misses += 1
                self._stop.wait(max(self._delay(misses - 1), self._asked_wait))
                continue
            misses = 0
            self._send_all()
            self._stop.wait(self.flush_interval if self._queue.empty() else 0)

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

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
                if self.spill_dir is not None:
                    return  # the run loop spills the rest and offers the spill again with backoff
        with self._lock:
            self._lock.notify_all()

    def _settle(self, *, sent: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self.sent += sent
            self.dropped += dropped
            self._pending -= sent + dropped
            self._lock.notify_all()

    def _post(self, batch: list[dict[str, Any]], *, retries: int | None = None) -> bool:
        """Send one batch, retrying what may succeed later; False if it could not be delivered."""
        body = json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}).encode()
        headers = {"Content-Type": "application/json", "Authorization": self._auth, "User-Agent": "rta-sdk/1"}
        if self.gzip_body:
            body, headers["Content-Encoding"] = gzip.compress(body, 5), "gzip"
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            if self._attempt(body, headers, batch):
                return True
            if attempt < retries and self._stop.wait(max(self._delay(attempt), self._asked_wait)) and self.spill_dir:
                return False  # closing: keep the batch on disk rather than wait out the retries
        return False

    def _attempt(self, body: bytes, headers: dict[str, str], batch: list[dict[str, Any]]) -> bool:
        """One request; True when the server answered for the batch (took it, or refused it for good)."""
        self._asked_wait = 0.0
        try:
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            self.outage_since = None
            self._settle(sent=len(batch))
            return True
        except urllib.error.HTTPError as err:
            detail = err.read()[:10_000]
            if err.code not in RETRY_STATUSES:
                self.outage_since = None
                self._refused(err.code, detail, batch)
                return True  # sent; the server kept what it could and said why
            retry_after = err.headers.get("Retry-After")
            self._asked_wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else 0.0
            self._failed(f"HTTP {err.code}: {detail.decode('utf-8', 'replace')[:200]}")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:  # e.g. the server died mid-answer
            self._failed(str(getattr(err, "reason", err)) or type(err).__name__)
        return False

    def _failed(self, error: str) -> None:
        log.debug("rta.sdk: %s", error)
        self.last_error = error
        if self.outage_since is None:
            self.outage_since = time.monotonic()

    def _refused(self, status: int, detail: bytes, batch: list[dict[str, Any]]) -> None:
        try:
            answer = json.loads(detail)
        except ValueError:
            answer = {"error": detail.decode("utf-8", "replace")}
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        dropped = len(rejected) if status == 400 and isinstance(rejected, list) else len(batch)
        self.rejected = (self.rejected + (rejected if isinstance(rejected, list) else [answer]))[-1000:]
        self._settle(sent=len(batch) - dropped, dropped=dropped)
        log.warning("rta.sdk: the server refused %s event(s) (HTTP %s): %s", dropped, status, str(answer)[:300])

    def _spill(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        if not self.spill_dir:
            self._settle(dropped=len(batch))
            log.warning("rta.sdk: %s event(s) could not be delivered and were dropped (no spill_dir)", len(batch))
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.jsonl"
        _write_lines(path, batch)
        with self._lock:
            self._spilled[path] = len(batch)
            self._lock.notify_all()

    def _adopt_spilled(self) -> None:
        """Take over what earlier clients spilled into the folder: it is sent first."""
        if not self.spill_dir or not self.spill_dir.is_dir():
            return
        for path in sorted(self.spill_dir.glob("*.jsonl")):
            events = sum(1 for line in path.read_text().splitlines() if line.strip())
            with self._lock:
                self._spilled[path] = events
                self._pending += events

    def _resend_spilled(self) -> bool:
        """Offer spilled batches again, oldest first (one attempt each); False when the server still does not take them."""
        for path in sorted(self._spilled):
            try:
                messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            except FileNotFoundError:  # another client with the same folder sent it
                messages = []
            for start in range(0, len(messages), self.batch_size):
                if not self._post(messages[start : start + self.batch_size], retries=0):
                    if start:  # what was sent is not sent twice
                        _write_lines(path, messages[start:])
                    with self._lock:
                        self._spilled[path] = len(messages) - start
                    return False
            path.unlink(missing_ok=True)
            with self._lock:
                gone = self._spilled.pop(path) - len(messages)  # events another client took
                self._pending -= gone
                self._lock.notify_all()
        return True


def _write_lines(path: Path, messages: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(m) + "\n" for m in messages))
    tmp.replace(path)


ID_FIELDS = ("messageId", "insert_id", "message_id", "$insert_id")  # where a flat event may carry its id


def file_digest(path: Path) -> str:
    """A short SHA-256 of a file's content: the same events, from this file or a copy, get the same ids."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:24]


def message_from(item: object, message_id: str) -> dict[str, Any]:
    """A JSON line as a Segment message: as it is when it has a ``type``, else a flat event
    (``event``, ``timestamp``, ``user_id``, ``insert_id``, fields) as a track call; ``message_id``
    when it carries no id of its own.

    >>> message_from({"event": "buy", "user_id": "u1", "revenue": 5}, "f00-1")
    {'type': 'track', 'event': 'buy', 'userId': 'u1', 'messageId': 'f00-1', 'properties': {'revenue': 5}}
    >>> message_from({"type": "page", "messageId": "m1"}, "f00-2")["messageId"]
    'm1'
    """
    if isinstance(item, dict) and "type" in item:
        return {"messageId": message_id, **item}
    if not isinstance(item, dict):  # refused by the server, with a reason
        return {"type": "track", "event": None, "messageId": message_id, "properties": {"value": item}}
    rest = dict(item)
    message: dict[str, Any] = {"type": "track", "event": rest.pop("event", None)}
    for target, names in {"userId": ("userId", "user_id"), "anonymousId": ("anonymousId", "anonymous_id"),
                          "messageId": ID_FIELDS, "timestamp": ("timestamp",)}.items():  # fmt: skip
        for name in names:
            if name in rest:
                message.setdefault(target, rest.pop(name))
    message.setdefault("messageId", message_id)
    message["properties"] = {**rest.pop("properties", {}), **rest}
    return message
