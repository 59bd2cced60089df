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
        self._minute = int(time.time()) // 60
        self._current: set[int] = set()
        self._pending: dict[int, int] = {}  # hashes being written -> how many writers hold them
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        minute = int(now) // 60
        if minute != self._minute:
            if self._current:
                self._closed[self._minute] = np.sort(np.fromiter(self._current, dtype=np.int64, count=len(self._current)))
            self._current, self._minute = set(), minute
        oldest = minute - self.window // 60
        while self._closed and (next(iter(self._closed)) < oldest or self._size() > self.max_ids):
            self._closed.popitem(last=False)

    def _size(self) -> int:
        return len(self._current) + sum(len(a) for a in self._closed.values())

    def _seen(self, hashes: np.ndarray) -> np.ndarray:
        seen = np.zeros(len(hashes), dtype=bool)
        for array in self._closed.values():
            where = np.searchsorted(array, hashes)
            where[where == len(array)] = 0
            seen |= array[where] == hashes
        return seen

    def claim(self, insert_ids: Sequence[str], now: float | None = None) -> list[bool]:
        """Which ids are new (repeats inside ``insert_ids`` count once); new ones are held as pending."""
        hashes = np.fromiter((_hash(i) for i in insert_ids), dtype=np.int64, count=len(insert_ids))
        with self._lock:
            self._roll(now if now is not None else time.time())
            seen = self._seen(hashes) if self._closed else np.zeros(len(hashes), dtype=bool)
            fresh: list[bool] = []
            claimed: set[int] = set()
            for h, old in zip(hashes.tolist(), seen.tolist(), strict=True):
                new = not old and h not in self._current and h not in self._pending and h not in claimed
                fresh.append(new)
                if new:
                    claimed.add(h)
            for h in claimed:
                self._pending[h] = self._pending.get(h, 0) + 1
            return fresh

    def confirm(self, insert_ids: Iterable[str]) -> None:
        """The ids' events are durable: remember them for the window."""
        with self._lock:
            for insert_id in insert_ids:
                h = _hash(insert_id)
                self._drop_pending(h)
                self._current.add(h)

    def release(self, insert_ids: Iterable[str]) -> None:
        """The write failed: the ids may come again."""
        with self._lock:
            for insert_id in insert_ids:
                self._drop_pending(_hash(insert_id))

    def _drop_pending(self, h: int) -> None:
        count = self._pending.get(h, 0)
        if count <= 1:
            self._pending.pop(h, None)
        else:
            self._pending[h] = count - 1

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
