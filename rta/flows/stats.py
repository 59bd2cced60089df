"""Counters the flow updates and the CLI prints: events in, written, rejected, freshness."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class FlowStats:
    """Thread-safe running totals of one flow run."""

    started: float = field(default_factory=time.monotonic)
    events_in: int = 0
    events_written: int = 0
    rows_written: int = 0
    inserts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    newest_event_ms: int | None = None
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def parsed(self, events: int, outcomes: dict[str, int], errors: tuple[str, ...]) -> None:
        """Record a parsed batch."""
        with self._lock:
            self.events_in += events
            for name, n in outcomes.items():
                self.outcomes[name] = self.outcomes.get(name, 0) + n
            self.errors.extend(errors[: max(0, 20 - len(self.errors))])

    def written(self, rows: int, events: int, newest_ms: int | None) -> None:
        """Record one insert that reached the store."""
        with self._lock:
            self.rows_written += rows
            self.events_written += events
            self.inserts += 1
            if newest_ms is not None and (self.newest_event_ms is None or newest_ms > self.newest_event_ms):
                self.newest_event_ms = newest_ms

    @property
    def rejected(self) -> int:
        """Events not counted: late, future or invalid."""
        return sum(n for k, n in self.outcomes.items() if k != "accepted")
