"""The alert state machine: Normal -> Pending -> Firing -> (Resolved) Normal, as a pure function.

``advance(state, breached, at, rule)`` returns the next state and the notification owed
now, if any. Times come from the caller, so tests drive it with a fake clock and
backtests replay history through exactly the code that runs live.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from rta.dsl.alert import Alert, QuietHours

Status = Literal["normal", "pending", "firing"]
Notice = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule (or one group of a per-dimension rule) stands."""

    status: Status = "normal"
    since: datetime | None = None  # when the current status began
    last_breach: datetime | None = None
    clear_since: datetime | None = None  # while firing: when the condition stopped holding
    notified_at: datetime | None = None  # last firing notification of this episode
    resolved_at: datetime | None = None  # last recovery told, for the cooldown
    owed: Notice | None = None  # a notification held back by quiet hours or the cooldown


def in_quiet_hours(quiet: QuietHours | None, at: datetime) -> bool:
    """Whether ``at`` falls in the quiet hours (which may span midnight)."""
    if quiet is None:
        return False
    local = at.astimezone(ZoneInfo(quiet.tz)).time()
    start, end = time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)
    return start <= local < end if start < end else local >= start or local < end


def _transition(state: RuleState, breached: bool, at: datetime, rule: Alert) -> tuple[RuleState, bool, bool]:
    """The next state, whether it just started firing, and whether it just recovered."""
    if breached:
        state = replace(state, last_breach=at, clear_since=None)
        if state.status == "normal":
            state = replace(state, status="pending", since=at)
        if state.status == "pending" and state.since is not None and at - state.since >= timedelta(seconds=rule.pending):
            return replace(state, status="firing", since=at), True, False
        return state, False, False
    if state.status == "pending":
        return replace(state, status="normal", since=at), False, False
    if state.status == "firing":
        state = replace(state, clear_since=state.clear_since or at)
        if at - state.clear_since >= timedelta(seconds=rule.keep_firing):  # type: ignore[operator]
            return replace(state, status="normal", since=at, clear_since=None), False, True
    return state, False, False


def advance(state: RuleState, breached: bool, at: datetime, rule: Alert) -> tuple[RuleState, Notice | None]:
    """Step ``state`` with one evaluation at ``at``; returns the new state and what to notify now.

    A firing notice waits out quiet hours and the cooldown after the last recovery told (a
    flapping rule stays quiet); a recovery is told only if its firing was.
    """
    state, fired, recovered = _transition(state, breached, at, rule)
    if fired:
        state = replace(state, owed="firing", notified_at=None)
    elif recovered:
        state = replace(state, owed="resolved" if state.notified_at is not None else None, notified_at=None)
    if in_quiet_hours(rule.quiet_hours, at):
        return state, None
    if state.owed == "firing":
        if state.resolved_at is not None and at - state.resolved_at < timedelta(seconds=rule.cooldown):
            return state, None
        return replace(state, owed=None, notified_at=at), "firing"
    if state.owed == "resolved":
        return replace(state, owed=None, resolved_at=at), "resolved"
    renotify = rule.renotify
    if state.status == "firing" and renotify and state.notified_at is not None and at - state.notified_at >= timedelta(seconds=renotify):
        return replace(state, notified_at=at), "firing"
    return state, None
