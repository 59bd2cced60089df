"""A daemon thread that runs one tick every few seconds until stopped (the alert and report loops)."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("rta")


class Periodic:
    """Calls ``tick()`` every ``every`` seconds on a daemon thread named ``name`` until ``stop()``.

    The first tick comes after ``every`` seconds, or at ``start()`` when ``now`` is true. A tick that
    raises does not end the thread: ``failed`` hears of it and the next tick comes on time.
    Subclasses say what one tick does, and how they report a failure.
    """

    def __init__(self, *, every: float, name: str, now: bool = False) -> None:
        self.every = every
        self._now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> None:
        """One round of work."""
        raise NotImplementedError

    def failed(self, err: Exception, streak: int) -> None:
        """A tick raised ``err``, the ``streak``-th in a row (1 for the first); log it."""
        log.error("%s: tick failed (%d in a row): %s", self._thread.name, streak, err)

    def start(self) -> Self:
        """Start ticking."""
        self._thread.start()
        return self

    def _run(self) -> None:
        if not self._now and self._stop.wait(self.every):
            return
        streak = 0
        while True:
            try:
                self.tick()
                streak = 0
            except Exception as err:  # one bad tick must not end the loop, nor what it runs beside
                streak += 1
                self.failed(err, streak)
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        """Stop after the current tick."""
        self._stop.set()
        self._thread.join()
