"""Live evaluation: each rule as soon as the windows it depends on are final.

A window of a metric is final once the stream's event-time watermark passes its end; if
the watermark stalls (no events at all) the wall clock takes over after ``STALL_SECONDS``,
so "fewer than N" rules still get evaluated. Counts of arriving events (``no_events``)
follow the wall clock. Provisional rules are also evaluated on the current minute.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rta.alerts.evaluate import GroupKey, step_rule
from rta.alerts.history import AlertStore
from rta.alerts.measure import readings
from rta.alerts.notify import Notification, Notifier
from rta.alerts.ssrf import AllowList, check_written
from rta.alerts.state import RuleState
from rta.dsl.alert import Alert
from rta.dsl.channels import Email, Webhook
from rta.dsl.schedule import ReportSchedule
from rta.errors import ConfigError, RtaError
from rta.query.protocol import OwningWorkspace, Workspace

STALL_SECONDS = 120  # after this long without events, windows close on the wall clock
ARRIVAL_SETTLE_SECONDS = 5  # a minute's arrivals are written this long after it ends
MAX_CATCH_UP = 60  # evaluations per rule per round after a pause; older windows are skipped
SILENCES = Path(".rta") / "silences.json"
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def allow_list(settings: dict[str, object]) -> AllowList:
    """``[alerts] allow_hosts`` of rta.toml."""
    section = settings.get("alerts", {})
    entries = section.get("allow_hosts", []) if isinstance(section, dict) else []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        msg = f"rta.toml: [alerts] allow_hosts takes a list of hosts or networks, got {entries!r}"
        raise ConfigError(msg)
    return AllowList.parse(entries)


def check_channels(owners: Sequence[Alert | ReportSchedule], allow: AllowList) -> None:
    """Refuse alert rules and scheduled reports whose targets, as written, point inside the network (no DNS here)."""
    for owner in owners:
        kind = "alert" if isinstance(owner, Alert) else "report"
        for target in owner.notify:
            url = target.url if isinstance(target, Webhook) else target.smtp if isinstance(target, Email) else None
            if url is not None:
                try:
                    check_written(url, allow)
                except RtaError as err:
                    raise type(err)(f"{kind} {owner.name!r}: {err}") from None


def silences(root: Path, now: datetime | None = None) -> dict[str, datetime]:
    """Rules silenced until a time (``rta alerts silence``), expired ones left out."""
    path = root / SILENCES
    now = now or _utcnow()
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found = {name: datetime.fromisoformat(until) for name, until in raw.items() if isinstance(until, str)}
    return {name: until for name, until in found.items() if until > now}


def silence(root: Path, rule: str, seconds: int, now: datetime | None = None) -> datetime:
    """Hold ``rule``'s notifications for ``seconds``; the running engine reads this at every round."""
    until = (now or _utcnow()) + timedelta(seconds=seconds)
    current = {k: v.isoformat() for k, v in silences(root, now).items()}
    path = root / SILENCES
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**current, rule: until.isoformat()}))
    tmp.replace(path)
    return until


def horizon(ws: Workspace, rule: Alert, now: datetime, marks: dict[str, datetime | None] | None = None) -> datetime:
    """The newest window end of ``rule`` that is final now (``marks``: watermarks already read, by stream)."""
    if rule.window.arrivals:
        return now - timedelta(seconds=ARRIVAL_SETTLE_SECONDS)
    stream = rule.window.stream.name
    mark = marks[stream] if marks is not None and stream in marks else ws.freshness(now, stream=stream).watermark
    stalled = now - timedelta(seconds=STALL_SECONDS)
    return min(now, max(mark, stalled) if mark is not None else stalled)


def newest_final(ws: Workspace, rule: Alert, now: datetime, marks: dict[str, datetime | None] | None = None) -> datetime:
    """The end of the newest window of ``rule`` that is final at ``now``."""
    step = rule.every
    return datetime.fromtimestamp(int(horizon(ws, rule, now, marks).timestamp()) // step * step, UTC)


class AlertEngine:
    """Evaluates rules against a workspace, keeps their state in the store and notifies."""

    def __init__(
        self,
        ws: OwningWorkspace,
        rules: Sequence[Alert] | None = None,
        *,
        notifier: Notifier | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self.ws = ws
        self.rules = tuple(ws.plan.definitions.alerts if rules is None else rules)
        allow = allow_list(ws.project.settings)
        check_channels(self.rules, allow)
        self.store = AlertStore(ws.client)
        self.notifier = notifier or Notifier(allow=allow)
        self.notifier.record = self._delivered
        self.clock = clock
        self.sent: list[Notification] = []  # what this engine handed to the notifier, newest last
        states, cursors = self.store.load()
        self.states: dict[str, dict[GroupKey, RuleState]] = {r.name: states.get(r.name, {}) for r in self.rules}
        self.cursors: dict[str, datetime] = {r.name: cursors[r.name] for r in self.rules if r.name in cursors}
        self.last_at: dict[str, datetime] = {}
        self._marks: dict[str, datetime | None] = {}  # watermarks read this round
        self._lock = threading.Lock()
        started = clock()
        for rule in self.rules:
            self.due(rule, started)  # places the cursor of a new rule: it judges windows ending from now on

    def _delivered(self, note: Notification, channel: str, outcome: str, detail: str) -> None:
        self.store.notified(note, channel, outcome, detail)

    def horizon(self, rule: Alert, now: datetime) -> datetime:
        """The newest window end of ``rule`` that is final now."""
        if not rule.window.arrivals:
            stream = rule.window.stream.name
            if stream not in self._marks:  # one freshness query per stream and round
                self._marks[stream] = self.ws.freshness(now, stream=stream).watermark
        return horizon(self.ws, rule, now, self._marks)

    def newest_final(self, rule: Alert, now: datetime) -> datetime:
        """The end of the newest window of ``rule`` that is final at ``now``."""
        return newest_final(self.ws, rule, now, self._marks)

    def due(self, rule: Alert, now: datetime) -> list[datetime]:
        """Window ends final now and not yet evaluated, at most ``MAX_CATCH_UP``.

        A rule seen for the first time starts with the windows that end after now: it judges
        what happens while it runs, not the past (that is what backtests are for).
        """
        step = rule.every
        last = int(self.newest_final(rule, now).timestamp())
        cursor = self.cursors.get(rule.name)
        if cursor is None:
            self.cursors[rule.name] = datetime.fromtimestamp(last, UTC)
            self.store.save_cursor(rule.name, self.cursors[rule.name])
            return []
        first = max(int(cursor.timestamp()) + step, last - (MAX_CATCH_UP - 1) * step)
        return [datetime.fromtimestamp(t, UTC) for t in range(first, last + 1, step)]

    def skip_to_now(self, now: datetime | None = None) -> None:
        """Judge only windows ending after ``now`` from here on: what ended before (a backfill) is left unevaluated."""
        with self._lock:
            now = now or self.clock()
            self._marks.clear()
            for rule in self.rules:
                newest = self.newest_final(rule, now)
                if self.cursors.get(rule.name, newest) <= newest:
                    self.cursors[rule.name] = newest
                    self.store.save_cursor(rule.name, newest)

    def run_once(self, now: datetime | None = None) -> list[Notification]:
        """Evaluate what is due, save state and history, hand notifications to the notifier."""
        with self._lock:
            now = now or self.clock()
            self._marks.clear()
            quiet = silences(self.ws.project.root, now)
            notes: list[Notification] = []
            for rule in self.rules:
                notes += self._evaluate(rule, self.due(rule, now), now, provisional=False)
                if rule.provisional and rule.window.metric is not None:
                    ahead = datetime.fromtimestamp(-(-int(now.timestamp()) // 60) * 60, UTC)
                    notes += self._evaluate(rule, [ahead], now, provisional=True)
            for note in notes:
                rule = next(r for r in self.rules if r.name == note.rule)
                if note.rule in quiet and not note.test:
                    self.store.notified(note, "*", "silenced", f"until {quiet[note.rule]:%Y-%m-%d %H:%M} UTC")
                    continue
                self.sent.append(note)
                self.notifier.send(note, rule.notify)
            self.store.flush()
            return notes

    def _evaluate(self, rule: Alert, times: list[datetime], now: datetime, *, provisional: bool) -> list[Notification]:
        if not times:
            return []
        frame = readings(self.ws, rule, times)
        by_time = frame.partition_by("at", as_dict=True) if not frame.is_empty() else {}
        states = self.states.setdefault(rule.name, {})
        notes: list[Notification] = []
        for t in times:
            rows = by_time.get((t,))
            # States step forward in time: a final window evaluated after a provisional look counts at that later time.
            at = max(now if provisional else t, self.last_at.get(rule.name, t))
            before = dict(states)
            evaluated, told = step_rule(rule, states, rows.iter_rows(named=True) if rows is not None else [], at, provisional=provisional)
            self.last_at[rule.name] = at
            self.store.evaluated(rule.name, evaluated)
            for key in set(before) | set(states):
                if before.get(key) != states.get(key):
                    self.store.save_state(rule.name, key, states.get(key))
            notes += told
        if not provisional:
            self.cursors[rule.name] = times[-1]
            self.store.save_cursor(rule.name, times[-1])
        return notes

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then write the last records."""
        self.notifier.close(timeout)
        self.store.flush()
