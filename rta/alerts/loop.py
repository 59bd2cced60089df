"""Run an alert engine beside the flow: a round every second, never stopping the flow."""

from __future__ import annotations

import logging
import threading

from rta.alerts.engine import AlertEngine

log = logging.getLogger("rta.alerts")


class AlertLoop:
    """Calls ``engine.run_once()`` every ``every`` seconds on a thread until stopped."""

    def __init__(self, engine: AlertEngine, *, every: float = 1.0) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rta-alerts", daemon=True)

    def start(self) -> AlertLoop:
        """Start the rounds."""
        self._thread.start()
        return self

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.every):
            try:
                self.engine.run_once()
                failing = False
            except Exception as err:  # a broken rule or a busy store must not take the flow down
                if not failing:
                    log.error("alert evaluation failed (retrying every %ss): %s", self.every, err)
                failing = True

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current round, deliver what is queued (up to ``timeout``), record it."""
        self._stop.set()
        self._thread.join()
        self.engine.close(timeout)
