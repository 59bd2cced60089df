"""Result cache with single flight: concurrent identical queries run once, results live for a TTL."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class QueryCache(Generic[T]):
    """An in-process LRU of results with per-entry TTLs; callers of an in-flight key wait for it."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._flights: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._max = max_entries
        self._clock = clock
        self.computed = 0  # how many times a value was actually computed (for tests and explain)

    def peek(self, key: Hashable) -> T | None:
        """The live cached value, without computing or waiting."""
        with self._lock:
            entry = self._entries.get(key)
            return entry[1] if entry is not None and entry[0] > self._clock() else None

    def get_or_compute(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> tuple[T, bool]:
        """The cached value and True, or the computed one and False; one computation per key at a time."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry[0] > self._clock():
                    self._entries.move_to_end(key)
                    return entry[1], True
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = threading.Event()
                    break
            flight.wait()  # another caller computes it; then read its result
        try:
            value = compute()
            with self._lock:
                self.computed += 1
                self._entries[key] = (self._clock() + ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
            return value, False
        finally:
            with self._lock:
                del self._flights[key]
            flight.set()
