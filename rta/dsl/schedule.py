"""Scheduled reports: a dashboard rendered to a file on a schedule, optionally sent somewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rta.dsl.channels import Channel, channel, shown_channel
from rta.dsl.context import register
from rta.dsl.dashboard import Dashboard
from rta.dsl.durations import parse_duration
from rta.dsl.names import check_name
from rta.dsl.shown import LINE, cut, listed
from rta.errors import DefinitionError

EVERY = {"1h": "hourly, on the hour", "1d": "daily at `at`", "7d": "weekly, Mondays at `at`"}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """When to render which dashboard, over what range, and where to send it. Build it with :func:`report`."""

    name: str
    dashboard: str
    every: str  # 1h, 1d or 7d
    at: str = "08:00"  # local time of day (daily and weekly)
    tz: str = "UTC"
    last: str | None = None  # the range; the dashboard's by default
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pdf: bool = False
    notify: tuple[Channel, ...] = ()

    def due(self, now: datetime) -> datetime:
        """The latest scheduled time at or before ``now`` (aware, in UTC's instant)."""
        local = now.astimezone(ZoneInfo(self.tz))
        hour, minute = (int(x) for x in self.at.split(":"))
        if self.every == "1h":
            return local.replace(minute=0, second=0, microsecond=0)
        slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if slot > local:
            slot -= timedelta(days=1)
        if self.every == "7d":
            slot -= timedelta(days=slot.weekday())
            if slot > local:
                slot -= timedelta(days=7)
        # Re-attach the zone: a day or week back may cross a daylight-saving change.
        return slot.replace(tzinfo=None).replace(tzinfo=ZoneInfo(self.tz))

    def __repr__(self) -> str:
        """For example ``ReportSchedule('daily': dashboard shop every 1d at 08:00 UTC, last 24h -> log)``."""
        when = "hourly" if self.every == "1h" else f"every {self.every} at {self.at} {self.tz}"
        extras = "".join(f", {d} in [{listed(v, 3)}]" for d, v in self.where) + (", pdf" if self.pdf else "")
        sent = ", ".join(shown_channel(c) for c in self.notify) or "files only"
        start = f"ReportSchedule({self.name!r}: "
        body = f"dashboard {self.dashboard} {when}, last {self.last or 'as the dashboard'}{extras} -> {sent}"
        return start + cut(body, LINE - len(start) - 1) + ")"


def report(
    name: str,
    dashboard: Dashboard | str,
    *,
    every: str = "1d",
    at: str = "08:00",
    tz: str = "UTC",
    last: str | None = None,
    where: dict[str, str | list[str]] | None = None,
    pdf: bool = False,
    notify: str | Channel | list[str | Channel] | tuple[str | Channel, ...] = (),
) -> ReportSchedule:
    """Render ``dashboard`` to ``reports/NAME/`` on a schedule (``rta run``) and send it to ``notify``.

    >>> from rta import email
    >>> r = report("daily_shop", "shop", every="1d", at="07:30", tz="Europe/Paris", last="24h", notify=email("team@example.com"))
    >>> r.every, r.at, r.tz, [str(c) for c in r.notify]
    ('1d', '07:30', 'Europe/Paris', ['mailto:team@example.com'])
    """
    check_name(name, what="report")
    owner = f"report {name!r}"
    board = dashboard.name if isinstance(dashboard, Dashboard) else dashboard
    if not isinstance(board, str) or not board:
        msg = f"{owner}: dashboard= takes a dashboard or its name, got {dashboard!r}"
        raise DefinitionError(msg)
    if every not in EVERY:
        msg = f"{owner}: every={every!r} is not a schedule; use " + ", ".join(f"{k!r} ({v})" for k, v in EVERY.items())
        raise DefinitionError(msg)
    if not isinstance(at, str) or not _CLOCK.match(at):
        msg = f"{owner}: at= takes a time of day as HH:MM, got {at!r}"
        raise DefinitionError(msg)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{owner}: unknown time zone {tz!r}; use an IANA name such as 'Europe/Paris'"
        raise DefinitionError(msg) from None
    if last is not None:
        parse_duration(last, what=f"{owner} last=")
    filters = tuple((dim, (v,) if isinstance(v, str) else tuple(v)) for dim, v in (where or {}).items())
    targets = notify if isinstance(notify, list | tuple) else [notify]
    schedule = ReportSchedule(name, board, every, at, tz, last, filters, bool(pdf), tuple(channel(t) for t in targets))
    register(schedule)
    return schedule
