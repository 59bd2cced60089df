"""Insert ids seen in the last hour (configurable), in bounded memory, rebuilt from the log at start.

Ids are kept as 64-bit hashes in two hash tables (numpy arrays of buckets, probed for a whole
request at once): the current generation and the one before. The current one retires
after the window, and the previous one is dropped then, so an id is remembered for at least
the window and at most twice that. A lookup costs one bucket read per id, whatever the number of
ids held; expiry drops a whole table. A table grows by doubling; past ``max_ids`` the
current generation retires early, so memory stays bounded and the window shrinks under
extreme load rather than memory growing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import numpy as np

INITIAL_SLOTS = 1 << 16


def hashes_of(insert_ids: Iterable[str]) -> np.ndarray:
    """64-bit hashes, never 0 (0 marks an empty slot).

    Python's str hash is fast and stable within a process; the filter is rebuilt per process.
    """
    hashes = np.fromiter(map(hash, insert_ids), dtype=np.int64)
    hashes[hashes == 0] = 1
    return hashes


def _distinct(hashes: np.ndarray) -> np.ndarray:
    """Each hash once, in the order first seen (older ids first)."""
    return hashes[np.sort(np.unique(hashes, return_index=True)[1])]


class HashSet:
    """Distinct non-zero int64 keys in buckets of eight, looked up and added a batch at a time.

    A key lives in bucket ``key & mask``, or in a following one when that is full: at the
    load kept here (under half), nearly every key is settled in one vectorized step.
    """

    __slots__ = ("count", "keys", "started")
    WIDTH = 8

    def __init__(self, slots: int, started: int) -> None:
        self.keys = np.zeros((max(1, slots // self.WIDTH), self.WIDTH), dtype=np.int64)  # a power of two rows
        self.count = 0
        self.started = started  # the minute this generation began

    @property
    def slots(self) -> int:
        """Room for keys."""
        return self.keys.size

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Which of ``keys`` are held."""
        if not self.count:
            return np.zeros(len(keys), dtype=bool)
        mask = len(self.keys) - 1
        rows = keys & mask
        bucket = self.keys[rows]
        found = (bucket == keys[:, None]).any(axis=1)
        todo = np.flatnonzero(~found & (bucket != 0).all(axis=1))  # a full bucket: the key may have moved on
        while todo.size:
            rows[todo] = (rows[todo] + 1) & mask
            bucket = self.keys[rows[todo]]
            hit = (bucket == keys[todo, None]).any(axis=1)
            found[todo[hit]] = True
            todo = todo[~hit & (bucket != 0).all(axis=1)]
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add distinct keys that are not held yet (the caller keeps the load under a half)."""
        mask = len(self.keys) - 1
        rows = keys & mask
        while keys.size:
            free = self.keys[rows] == 0
            room = free.any(axis=1)
            column = free.argmax(axis=1)
            self.keys[rows[room], column[room]] = keys[room]  # two keys after one slot: one write wins, the other tries again
            won = room & (self.keys[rows, column] == keys)
            self.count += int(won.sum())
            keys, rows = keys[~won], np.where(room, rows, (rows + 1) & mask)[~won]

    def grown(self) -> HashSet:
        """The same keys in twice the slots."""
        bigger = HashSet(2 * self.slots, self.started)
        bigger.add(self.keys[self.keys != 0])
        return bigger


class InsertIdFilter:
    """``claim(ids)`` -> which ids are new; ``confirm``/``release`` once their write is durable or failed."""

    def __init__(self, window_seconds: int = 3600, *, max_ids: int = 50_000_000) -> None:
        self.window = window_seconds
        self.max_ids = max_ids
        # Tables are kept under half full: two of these hold at most max_ids.
        self._max_slots = max(INITIAL_SLOTS, 1 << (max_ids.bit_length() - 1))
        minute = int(time.time()) // 60
        self._current = HashSet(INITIAL_SLOTS, minute)
        self._previous = HashSet(1, minute)
        self._pending: set[int] = set()  # hashes being written by a request
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._current.count + self._previous.count

    def _roll(self, now: float) -> None:
        window = max(1, self.window // 60)
        passed = (int(now) // 60 - self._current.started) // window  # generations start whole windows apart
        if passed >= 1:
            self._retire(self._current.started + passed * window)
        if passed >= 2:  # the retired generation is over a window old too
            self._retire(self._current.started)

    def _retire(self, minute: int) -> None:
        # Sized for as many ids as the retiring generation held, at a quarter load.
        slots = min(self._max_slots, max(INITIAL_SLOTS, 1 << (4 * self._current.count).bit_length()))
        self._previous, self._current = self._current, HashSet(slots, minute)

    def _add(self, hashes: np.ndarray, now: float) -> None:
        hashes = hashes[-(self._max_slots // 2) :]  # more than a generation holds (a huge log at start): the newest
        while 2 * (self._current.count + len(hashes)) > self._current.slots:
            if self._current.slots < self._max_slots:
                self._current = self._current.grown()
            else:  # at the memory bound: the window shrinks instead
                self._retire(int(now) // 60)
        self._current.add(hashes)

    def claim(self, insert_ids: Sequence[str], now: float | None = None) -> list[bool] | None:
        """Which ids are new (repeats inside ``insert_ids`` count once); the new ones are held as pending.

        None when another request is writing one of these ids right now: its write may still
        fail, so calling these duplicates could lose them; the caller asks the client to retry.
        """
        hashes = hashes_of(insert_ids)
        with self._lock:
            self._roll(now if now is not None else time.time())
            listed = hashes.tolist()
            if not self._pending.isdisjoint(listed):
                return None
            fresh = ~(self._current.contains(hashes) | self._previous.contains(hashes))
            if len(set(listed)) < len(listed):  # repeats inside the request: the first one counts
                first = np.zeros(len(hashes), dtype=bool)
                first[np.unique(hashes, return_index=True)[1]] = True
                fresh &= first
            self._pending.update(hashes[fresh].tolist())
            return fresh.tolist()

    def confirm(self, insert_ids: Iterable[str], now: float | None = None) -> None:
        """The ids' events are durable: remember them for the window (they were claimed, so they are not held yet)."""
        hashes = _distinct(hashes_of(insert_ids))
        with self._lock:
            self._pending.difference_update(hashes.tolist())
            self._add(hashes, now if now is not None else time.time())

    def release(self, insert_ids: Iterable[str]) -> None:
        """The write failed: the ids may come again."""
        hashes = hashes_of(insert_ids).tolist()
        with self._lock:
            self._pending.difference_update(hashes)

    def remember(self, arrivals: dict[int, list[str]], now: float | None = None) -> None:
        """Add ids read back from the log (at start), by the minute they arrived."""
        now = now if now is not None else time.time()
        with self._lock:
            for minute, insert_ids in sorted(arrivals.items()):
                hashes = _distinct(hashes_of(insert_ids))
                self._add(hashes[~self._current.contains(hashes)], now)
                self._current.started = min(self._current.started, minute)  # retires a window after the oldest
