"""Insert ids seen in the last hour (configurable), in bounded memory, rebuilt from the log at start.

Ids are kept as 64-bit hashes per minute of arrival: the current minute in a set, older
minutes as sorted arrays (8 bytes an id). Past ``max_ids`` the oldest minutes go first, so
memory stays bounded and the window shrinks under extreme load rather than growing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np


def _hash(insert_id: str) -> int:
    # Python's str hash is fast and stable within a process; the filter is rebuilt per process.
    return hash(insert_id)


class InsertIdFilter:
    """``claim(ids)`` -> which ids are new; ``confirm``/``release`` once their write is durable or failed."""

    def __init__(self, window_seconds: int = 3600, *, max_ids: int = 50_000_000) -> None:
        self.window = window_seconds
        self.max_ids = max_ids
        self._closed: OrderedDict[int, np.ndarray] = OrderedDict()  # minute -> sorted hashes
        self._merged = np.empty(0, dtype=np.int64)  # every closed minute's hashes, sorted: one lookup per request
        self._minute = int(time.time()) // 60
        self._current: set[int] = set()
        self._pending: set[int] = set()  # hashes being written by a request
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        minute = int(now) // 60
        if minute == self._minute:
            return
        if self._current:
            self._closed[self._minute] = np.sort(np.fromiter(self._current, dtype=np.int64, count=len(self._current)))
        self._current, self._minute = set(), minute
        oldest = minute - self.window // 60
        while self._closed and (next(iter(self._closed)) < oldest or self._size() > self.max_ids):
            self._closed.popitem(last=False)
        self._merge()

    def _merge(self) -> None:
        arrays = list(self._closed.values())
        self._merged = np.sort(np.concatenate(arrays)) if arrays else np.empty(0, dtype=np.int64)

    def _size(self) -> int:
        return len(self._current) + sum(len(a) for a in self._closed.values())

    def _seen(self, hashes: np.ndarray) -> np.ndarray:
        merged = self._merged
        if not len(merged):
            return np.zeros(len(hashes), dtype=bool)
        where = np.searchsorted(merged, hashes)
        where[where == len(merged)] = 0
        return np.asarray(merged[where] == hashes)

    def claim(self, insert_ids: Sequence[str], now: float | None = None) -> list[bool] | None:
        """Which ids are new (repeats inside ``insert_ids`` count once); the new ones are held as pending.

        None when another request is writing one of these ids right now: its write may still
        fail, so calling these duplicates could lose them; the caller asks the client to retry.
        """
        hashes = np.fromiter((_hash(i) for i in insert_ids), dtype=np.int64, count=len(insert_ids))
        with self._lock:
            self._roll(now if now is not None else time.time())
            seen = self._seen(hashes)
            fresh: list[bool] = []
            claimed: set[int] = set()
            pending, current = self._pending, self._current
            for h, old in zip(hashes.tolist(), seen.tolist(), strict=True):
                if h in pending:
                    return None
                new = not old and h not in current and h not in claimed
                fresh.append(new)
                if new:
                    claimed.add(h)
            pending |= claimed
            return fresh

    def confirm(self, insert_ids: Iterable[str]) -> None:
        """The ids' events are durable: remember them for the window."""
        hashes = {_hash(i) for i in insert_ids}
        with self._lock:
            self._pending -= hashes
            self._current |= hashes

    def release(self, insert_ids: Iterable[str]) -> None:
        """The write failed: the ids may come again."""
        hashes = {_hash(i) for i in insert_ids}
        with self._lock:
            self._pending -= hashes

    def remember(self, arrivals: dict[int, list[str]]) -> None:
        """Add ids read back from the log (at start), by the minute they arrived."""
        with self._lock:
            for minute, insert_ids in sorted(arrivals.items()):
                hashes = np.fromiter((_hash(i) for i in insert_ids), dtype=np.int64, count=len(insert_ids))
                if minute == self._minute:
                    self._current.update(hashes.tolist())
                elif minute in self._closed:
                    self._closed[minute] = np.unique(np.concatenate([self._closed[minute], hashes]))
                else:
                    self._closed[minute] = np.unique(hashes)
            self._closed = OrderedDict(sorted(self._closed.items()))
            self._merge()
