"""``ws.alerts``: the project's rules, their history, backtests, from a notebook."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from rta.alerts.backtest import Backtest, backtest
from rta.alerts.engine import newest_final, silences
from rta.alerts.history import read_history
from rta.alerts.measure import readings
from rta.dsl.alert import Alert
from rta.query.protocol import Workspace


def rule_table(rules: Sequence[Alert], root: Path) -> pl.DataFrame:
    """One row per rule: its condition, noise control, channels and silence (from the definitions
    and the project's silences only, so `rta alerts list` needs no store)."""
    quiet = silences(root)
    rows = [
        {
            "alert": r.name,
            "condition": r.condition.describe(),
            "by": ", ".join(r.by),
            "pending_s": r.pending,
            "every_s": r.every,
            "notify": ", ".join(str(c) for c in r.notify),
            "silenced_until": quiet.get(r.name),
        }
        for r in rules
    ]
    schema: dict[str, pl.DataType] = {"alert": pl.String(), "condition": pl.String(), "by": pl.String(), "pending_s": pl.Int64()}
    schema |= {"every_s": pl.Int64(), "notify": pl.String(), "silenced_until": pl.Datetime("us", "UTC")}
    return pl.DataFrame(rows, schema=schema)


class WorkspaceAlerts:
    """Alert rules of a workspace's project."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def _rule(self, rule: str | Alert) -> Alert:
        return rule if isinstance(rule, Alert) else self.ws.plan.definitions.alert(rule)

    def list(self) -> pl.DataFrame:
        """One row per rule: its condition, noise control, channels and silence."""
        return rule_table(self.ws.plan.definitions.alerts, self.ws.project.root)

    def history(self, rule: str | None = None, *, kind: str | None = None, limit: int = 1000) -> pl.DataFrame:
        """Evaluations and notifications, newest first."""
        return read_history(self.ws.read, rule=rule, kind=kind, limit=limit)

    def backtest(self, rule: str | Alert, *, last: str = "30d", start: datetime | None = None, end: datetime | None = None) -> Backtest:
        """How ``rule`` would have behaved over a past range (same code as live evaluation)."""
        return backtest(self.ws, self._rule(rule), last=last, start=start, end=end)

    def check(self, rule: str | Alert, now: datetime | None = None) -> pl.DataFrame:
        """The rule's reading at its newest final window, and whether it breaches."""
        found = self._rule(rule)
        at = newest_final(self.ws, found, now or datetime.now(UTC))
        frame = readings(self.ws, found, [at])
        return frame.with_columns(pl.col("value").map_elements(found.condition.breached, return_dtype=pl.Boolean).alias("breached"))
