"""Scheduled reports: render each ``report(...)`` of the DSL when it is due, write it to a folder,
hand it to the alerts' notifier (email with the files attached, webhooks, Slack, the log).

The last report sent per schedule is kept in ``.rta/reports.json``: a restart neither repeats
a report nor makes up the ones it slept through (only the newest missed one is sent).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rta.dash import make_view
from rta.dash.data import QuerySource, load_board
from rta.dash.export import write_report
from rta.dsl.channels import Channel
from rta.dsl.schedule import ReportSchedule
from rta.periodic import Periodic

log = logging.getLogger("rta.reports")
STATE = Path(".rta") / "reports.json"
MIME = {".html": "text/html", ".pdf": "application/pdf"}


@dataclass(frozen=True, slots=True)
class ReportNotice:
    """A rendered report as a notifier message: its files, what it covers, a stable id."""

    rule: str  # the report's name (the notifier's word for who speaks)
    dashboard: str
    title: str
    at: datetime  # the scheduled time it answers
    range_text: str
    freshness: str
    files: tuple[Path, ...]
    test: bool = False
    status: str = "report"

    @property
    def id(self) -> str:
        """Stable across retries, so receivers can drop repeats."""
        return hashlib.blake2b(f"report|{self.rule}|{self.at.isoformat()}|{self.test}".encode(), digest_size=12).hexdigest()

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook."""
        return {
            "id": self.id,
            "report": self.rule,
            "dashboard": self.dashboard,
            "at": self.at.isoformat(),
            "range": self.range_text,
            "freshness": self.freshness,
            "files": [str(p) for p in self.files],
            "test": self.test,
        }

    def text(self) -> str:
        """One line for chat, logs and the mail subject."""
        return f"[rta] report {self.rule}: {self.title}, {self.range_text} ({self.freshness}) -> {self.files[0].name}"

    @property
    def attachments(self) -> tuple[tuple[str, bytes, str], ...]:
        """The files, for email."""
        return tuple((p.name, p.read_bytes(), MIME.get(p.suffix, "application/octet-stream")) for p in self.files)


def render(source: QuerySource, schedule: ReportSchedule, folder: Path, at: datetime, *, test: bool = False) -> ReportNotice:
    """Render ``schedule``'s dashboard now into ``folder/NAME/NAME-YYYYmmdd-HHMM.html`` (and .pdf)."""
    board = source.plan.definitions.dashboard(schedule.dashboard)
    view = make_view(board, last=schedule.last, where={d: list(v) for d, v in schedule.where})
    data = load_board(source, board, view)
    stem = folder / schedule.name / f"{schedule.name}-{at.astimezone(UTC):%Y%m%d-%H%M}"
    files = write_report(data, stem.with_suffix(".html"), pdf=stem.with_suffix(".pdf") if schedule.pdf else None)
    written = (files.html, *((files.pdf,) if files.pdf else ()))
    return ReportNotice(
        schedule.name, board.name, board.title, at, view.describe_range(data.generated_at), data.freshness_text(), written, test
    )


Send = Callable[[ReportNotice, tuple[Channel, ...]], None]


class ReportScheduler:
    """Renders and sends each schedule once per due time; ``run_once`` is one check (``rta run`` calls it every minute)."""

    def __init__(
        self,
        source: QuerySource,
        schedules: tuple[ReportSchedule, ...],
        root: Path,
        folder: Path,
        send: Send,
        *,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.source, self.schedules, self.folder, self.send, self.close = source, schedules, folder, send, close
        self.state_path = root / STATE
        try:
            self.sent: dict[str, str] = json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            self.sent = {}

    def run_once(self, now: datetime | None = None) -> list[ReportNotice]:
        """Render and send every schedule whose latest due time has not been sent yet."""
        now = now or datetime.now(UTC)
        done = []
        for schedule in self.schedules:
            due = schedule.due(now)
            last = self.sent.get(schedule.name)
            if last is None:
                self._remember(schedule, due)  # first sight: the next due time is the first report
                continue
            if datetime.fromisoformat(last) >= due:
                continue
            try:
                notice = render(self.source, schedule, self.folder, due)
            except Exception as err:  # a failing report must not stop the others, nor the flow
                log.error("report %r could not be rendered (retrying next minute): %s", schedule.name, err)
                continue
            self._remember(schedule, due)
            log.info("report %r written to %s", schedule.name, notice.files[0])
            if schedule.notify:
                self.send(notice, schedule.notify)
            done.append(notice)
        return done

    def _remember(self, schedule: ReportSchedule, due: datetime) -> None:
        self.sent[schedule.name] = due.isoformat()
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.sent, indent=1))


class ReportLoop(Periodic):
    """Checks the schedules every ``every`` seconds on a thread, the first time at ``start()``."""

    def __init__(self, scheduler: ReportScheduler, *, every: float = 30.0) -> None:
        super().__init__(every=every, name="rta-reports", now=True)
        self.scheduler = scheduler

    def tick(self) -> None:
        """One check of the schedules."""
        self.scheduler.run_once()

    def failed(self, err: Exception, streak: int) -> None:
        """Log every failed check: the store may be busy, the next check tries again."""
        log.error("scheduled reports failed: %s", err)
