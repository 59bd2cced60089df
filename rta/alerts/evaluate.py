"""One evaluation of one rule: readings at a time -> new states, notifications, history rows.

The engine (live) and backtests both step rules through :func:`step_rule`, so a backtest
shows exactly what live evaluation would have done with the same data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rta.alerts.notify import Notification
from rta.alerts.state import RuleState, advance
from rta.dsl.alert import Alert

GroupKey = str  # the group's dimension values as canonical JSON; "{}" when the rule is not split


def group_key(group: Mapping[str, object]) -> GroupKey:
    """A stable key for a group of dimension values."""
    return json.dumps({k: str(v) for k, v in group.items()}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One group's evaluation: what was read and where the group stands after it."""

    at: datetime
    group: GroupKey
    value: float | None
    current: float | None
    breached: bool
    status: str
    provisional: bool


def step_rule(
    rule: Alert,
    states: dict[GroupKey, RuleState],
    rows: Iterable[Mapping[str, object]],
    at: datetime,
    *,
    provisional: bool = False,
) -> tuple[list[Evaluated], list[Notification]]:
    """Advance every group of ``rule`` (``states`` is updated in place) with the readings at ``at``.

    Groups with state but no reading this time read as "no value": they stop breaching.
    Notifications are grouped: one for the groups that fire, one for those that recover.
    """
    read: dict[GroupKey, tuple[dict[str, str], float | None, float | None]] = {}
    for row in rows:
        group = {d: str(row[d]) for d in rule.by}
        value, current = row.get("value"), row.get("current")
        read[group_key(group)] = (group, _float(value), _float(current))
    if not rule.by and "{}" not in read:
        read["{}"] = ({}, None, None)
    evaluated: list[Evaluated] = []
    told: dict[str, list[tuple[dict[str, str], float | None]]] = {"firing": [], "resolved": []}
    for key in sorted(set(read) | set(states)):
        group, value, current = read.get(key, (json.loads(key), None, None))
        breached = rule.condition.breached(value)
        states[key], notice = advance(states.get(key, RuleState()), breached, at, rule)
        evaluated.append(Evaluated(at, key, value, current, breached, states[key].status, provisional))
        if notice is not None:
            told[notice].append((group, value))
        if _forgettable(states[key], rule, at):
            del states[key]  # keeps the state of per-dimension rules bounded by the groups in trouble
    notes = [
        Notification(rule.name, status, at, rule.condition.describe(), tuple(groups), provisional, rule.description)  # type: ignore[arg-type]
        for status, groups in told.items()
        if groups
    ]
    return evaluated, notes


def _forgettable(state: RuleState, rule: Alert, at: datetime) -> bool:
    """A normal state with nothing owed and no cooldown running acts like no state at all."""
    cooling = state.resolved_at is not None and (at - state.resolved_at).total_seconds() < rule.cooldown
    return state.status == "normal" and state.owed is None and not cooling


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
