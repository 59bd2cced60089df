"""Alert history and state in the store: every evaluation and notification, and where rules stand.

Rows are buffered (delivery threads record too) and written in one insert per round.
State is a ReplacingMergeTree keyed by (rule, group): the newest version wins, so a restart
picks up pending-since, last-notified and the evaluation cursor where they were.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import UTC, datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from rta.alerts.evaluate import Evaluated, GroupKey
from rta.alerts.notify import Notification
from rta.alerts.state import RuleState
from rta.compiler.ddl import ALERT_HISTORY_TABLE, ALERT_STATE_TABLE

HISTORY_COLUMNS = ["at", "recorded", "rule", "group", "kind", "status", "value", "current", "provisional", "channel", "detail"]
CURSOR = "\x00cursor"  # the state row holding a rule's last evaluated window end
_TIMES = {f.name for f in fields(RuleState) if f.name not in ("status", "owed")}


def _now() -> datetime:
    return datetime.now(UTC)


def _state_json(state: RuleState) -> str:
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(state).items()})


def _state_from(text: str) -> RuleState:
    raw = json.loads(text)
    return RuleState(**{k: datetime.fromisoformat(v) if k in _TIMES and v else v for k, v in raw.items()})  # type: ignore[arg-type]


class AlertStore:
    """Buffers history rows and state changes; ``flush`` writes them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._rows: list[list[object]] = []
        self._states: dict[tuple[str, GroupKey], str] = {}
        self._lock = threading.Lock()

    def evaluated(self, rule: str, items: list[Evaluated]) -> None:
        """Record evaluations."""
        now = _now()
        rows: list[list[object]] = [
            [e.at, now, rule, e.group, "evaluation", e.status, e.value, e.current, e.provisional, "", ""] for e in items
        ]
        with self._lock:
            self._rows += rows

    def notified(self, note: Notification, channel: str, outcome: str, detail: str) -> None:
        """Record a notification's fate on one channel (queued, sent, retrying, failed, silenced)."""
        group = json.dumps([g for g, _ in note.groups])
        value = note.groups[0][1] if len(note.groups) == 1 else None
        outcome = f"{outcome}: {detail}"
        row = [note.at, _now(), note.rule, group, "notification", note.status, value, None, note.provisional, channel, outcome]
        with self._lock:
            self._rows.append(row)

    def save_state(self, rule: str, group: GroupKey, state: RuleState | None) -> None:
        """Remember where a group stands (None: back to normal, nothing to remember)."""
        with self._lock:
            self._states[(rule, group)] = "" if state is None else _state_json(state)

    def save_cursor(self, rule: str, at: datetime) -> None:
        """Remember the last window end evaluated for ``rule``."""
        with self._lock:
            self._states[(rule, CURSOR)] = json.dumps({"at": at.isoformat()})

    def flush(self) -> None:
        """Write what was recorded since the last flush."""
        with self._lock:
            rows, self._rows = self._rows, []
            states, self._states = self._states, {}
        if rows:
            self.client.insert(ALERT_HISTORY_TABLE, rows, column_names=HISTORY_COLUMNS)
        if states:
            version = int(_now().timestamp() * 1_000_000)
            data = [[rule, group, text, version] for (rule, group), text in states.items()]
            self.client.insert(ALERT_STATE_TABLE, data, column_names=["rule", "group", "state", "version"])

    def load(self) -> tuple[dict[str, dict[GroupKey, RuleState]], dict[str, datetime]]:
        """States by rule and group, and each rule's cursor, as last saved."""
        rows = self.client.query(f"SELECT rule, `group`, state FROM {ALERT_STATE_TABLE} FINAL WHERE state != ''").result_rows
        states: dict[str, dict[GroupKey, RuleState]] = {}
        cursors: dict[str, datetime] = {}
        for rule, group, text in rows:
            if group == CURSOR:
                cursors[rule] = datetime.fromisoformat(json.loads(text)["at"])
            else:
                states.setdefault(rule, {})[group] = _state_from(text)
        return states, cursors


def read_history(read: Callable[[str, dict[str, object]], pl.DataFrame], *, rule: str | None = None, kind: str | None = None,
                 limit: int = 1000) -> pl.DataFrame:  # fmt: skip
    """The newest history rows first, optionally of one rule and one kind (evaluation, notification);
    ``read`` runs the statement (``ws.read``: the store, or the API of the process that owns it)."""
    where, params = [], {}
    if rule is not None:
        where.append("rule = {rule:String}")
        params["rule"] = rule
    if kind is not None:
        where.append("kind = {kind:String}")
        params["kind"] = kind
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT * FROM {ALERT_HISTORY_TABLE} {clause} ORDER BY recorded DESC, at DESC LIMIT {{limit:UInt32}}"
    return read(sql, {**params, "limit": limit})
