"""Run an alert engine beside the flow: a round every second, never stopping the flow."""

from __future__ import annotations

import logging

from rta.alerts.engine import AlertEngine
from rta.periodic import Periodic

log = logging.getLogger("rta.alerts")


class AlertLoop(Periodic):
    """Calls ``engine.run_once()`` every ``every`` seconds on a thread until stopped."""

    def __init__(self, engine: AlertEngine, *, every: float = 1.0) -> None:
        super().__init__(every=every, name="rta-alerts")
        self.engine = engine

    def tick(self) -> None:
        """One round of the rules."""
        self.engine.run_once()

    def failed(self, err: Exception, streak: int) -> None:
        """Log the first failure of a run of them: a broken rule or a busy store must not take the flow down."""
        if streak == 1:
            log.error("alert evaluation failed (retrying every %ss): %s", self.every, err)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current round, deliver what is queued (up to ``timeout``), record it."""
        super().stop()
        self.engine.close(timeout)
