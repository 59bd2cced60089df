"""Run an alert engine beside the flow: a round every second, never stopping the flow."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rta.alerts.engine import AlertEngine
from rta.dsl.channels import Log
from rta.periodic import Periodic

log = logging.getLogger("rta.alerts")


class AlertLoop(Periodic):
    """Calls ``engine.run_once()`` every ``every`` seconds on a thread until stopped."""

    def __init__(
        self,
        engine: AlertEngine,
        *,
        every: float = 1.0,
        announce: Callable[[str], None] | None = None,
        hold: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(every=every, name="rta-alerts")
        self.engine = engine
        self.announce = announce  # the console of `rta run`: every notification shows there, whatever its channels
        self.hold = hold  # true while a backfill runs: its windows are history, judged by backtests, not live

    def tick(self) -> None:
        """One round of the rules; each notification also goes to ``announce`` (unless a log channel already wrote it)."""
        if self.hold is not None:
            if self.hold():
                return
            self.hold = None
            self.engine.skip_to_now()  # "no traffic" during a backfill was the backfill, not the site
        if self.announce is None:
            self.engine.run_once()
            return
        seen = len(self.engine.sent)
        self.engine.run_once()
        channels = {r.name: r.notify for r in self.engine.rules}
        for note in self.engine.sent[seen:]:  # handed to the notifier: silenced ones are not
            sent_to = channels.get(note.rule, ())
            if not any(isinstance(c, Log) for c in sent_to):
                self.announce(f"{note.text()} -> {', '.join(str(c) for c in sent_to) or 'no channel'}")

    def failed(self, err: Exception, streak: int) -> None:
        """Log the first failure of a run of them: a broken rule or a busy store must not take the flow down."""
        if streak == 1:
            log.error("alert evaluation failed (retrying every %ss): %s", self.every, err)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current round, deliver what is queued (up to ``timeout``), record it."""
        super().stop()
        self.engine.close(timeout)
