"""A folder the flow watches: JSON-lines files dropped in it are ingested as they appear.

Write a file under another name and rename it to ``*.jsonl`` / ``*.ndjson`` when complete
(renames are atomic, partial writes are never read). Each file is one batch keyed by its
content, so a file read again after a restart adds nothing (docs/architecture.md, "Idempotent writes").
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

from bytewax.inputs import DynamicSource, StatelessSourcePartition
from typing_extensions import override

from rta.compiler.plan import StreamPlan
from rta.errors import ConfigError
from rta.flows.events import read_json_lines
from rta.flows.sources import SourceBatch, awake_at, content_key

PATTERNS = ("*.jsonl", "*.ndjson")
POLL_SECONDS = 0.2


class _InboxPartition(StatelessSourcePartition[SourceBatch]):
    def __init__(self, source: InboxSource, *, active: bool = True) -> None:
        self._src = source
        self._active = active  # in a cluster only the first worker reads the folder
        self._seen: set[str] = set()
        self._next_poll = 0.0

    @override
    def next_batch(self) -> list[SourceBatch]:
        if self._src.stop.is_set() or not self._active:
            raise StopIteration
        if time.monotonic() < self._next_poll:
            return []
        self._next_poll = time.monotonic() + POLL_SECONDS
        fresh = sorted(p for pattern in PATTERNS for p in self._src.folder.glob(pattern) if p.name not in self._seen)
        batches = []
        for path in fresh:
            self._seen.add(path.name)
            body = path.read_bytes()
            key = content_key(body)
            frame, bad, errors = read_json_lines(body, self._src.stream, properties=True, origin=path.name)
            batches.append(SourceBatch(key, self._src.stream.name, frame, "inbox", True, bad, errors))
        return batches

    @override
    def next_awake(self) -> datetime | None:
        return awake_at(self._next_poll)


class InboxSource(DynamicSource[SourceBatch]):
    """Ingest JSON-lines files as they land in ``folder``, until ``stop`` is set."""

    def __init__(self, folder: Path, stream: StreamPlan, *, stop: threading.Event | None = None) -> None:
        if not folder.is_dir():
            msg = f"cannot watch {str(folder)!r}: no such folder; create it, then drop *.jsonl files into it"
            raise ConfigError(msg)
        self.folder = folder
        self.stream = stream
        self.stop = stop or threading.Event()

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _InboxPartition:
        return _InboxPartition(self, active=worker_index == 0)
