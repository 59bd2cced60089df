"""Alert rules: a condition on a metric over a window, noise control and where to notify.

``revenue.over("15m").vs("1w") < -0.30`` reads "revenue over the last 15 minutes fell more
than 30% against the same 15 minutes a week ago"; ``no_events(events, "10m")`` fires when a
stream went quiet; ``checkout.conversion.over("1h") < 0.02`` reads a funnel
(``rta/dsl/funnel_measure.py``). Rules are plain values; ``rta.alerts`` evaluates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rta.dsl.channels import Channel, Log, channel, shown_channel
from rta.dsl.context import latest, register
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.dsl.filter_kinds import check_filter_kinds
from rta.dsl.funnel import check_funnel_field, check_funnel_filter
from rta.dsl.metric import Metric
from rta.dsl.names import check_name
from rta.dsl.shown import LINE, card, code, cut, listed, span
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

if TYPE_CHECKING:
    from rta.dsl.funnel_measure import FunnelMeasure

Op = Literal[">", ">=", "<", "<=", "between", "outside"]
#: Baselines a window can be compared with, as shifts back in time (None: the window's own length).
BASELINES: dict[str, int | None] = {"previous_period": None, "1d": 86400, "1w": 7 * 86400, "1y": 364 * 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{what} must be a number, got {value!r}"
        raise DefinitionError(msg)
    return float(value)


def window_seconds(text: str, what: str) -> int:
    seconds = parse_duration(text, what=what)
    if seconds % 60:
        msg = f"invalid {what}: got {text!r}; alerts work on whole minutes, for example '1m', '15m' or '1h'"
        raise DefinitionError(msg)
    return seconds


@dataclass(frozen=True, slots=True)
class Window:
    """A metric over the last ``seconds``, a funnel's measure for the people who entered in them
    (``funnel``), or, with neither, the events a stream accepted.

    With ``shift`` the value is the relative change against the same window ``shift``
    seconds earlier (``previous_period``: the window just before): ``-0.3`` is a 30% drop.
    Comparing a window with a number builds a :class:`Condition`.
    """

    stream: Stream
    seconds: int
    metric: Metric | None = None
    baseline: str | None = None
    funnel: FunnelMeasure | None = None

    @property
    def arrivals(self) -> bool:
        """Whether the window counts arriving events (``no_events``): by arrival time, not event time."""
        return self.metric is None and self.funnel is None

    @property
    def shift(self) -> int | None:
        """Seconds back to the baseline window, if compared with one."""
        if self.baseline is None:
            return None
        return BASELINES[self.baseline] or self.seconds

    def vs(self, baseline: str) -> Window:
        """Compare with ``previous_period``, ``1d``, ``1w`` or ``1y`` earlier: the value becomes a relative change.

        >>> from rta import stream, metric, total
        >>> events = stream("events", measures={"revenue": float})
        >>> revenue = metric("revenue", total("revenue"), stream=events)
        >>> revenue.over("15m").vs("1w").shift
        604800
        """
        if self.arrivals:
            msg = "a count of arriving events cannot be compared with a baseline; compare a metric instead"
            raise DefinitionError(msg)
        if baseline not in BASELINES:
            msg = f"unknown baseline {baseline!r}; valid baselines are: {', '.join(BASELINES)}"
            raise DefinitionError(msg)
        return Window(self.stream, self.seconds, self.metric, baseline, self.funnel)

    def _compare(self, op: Op, *values: object) -> Condition:
        bounds = tuple(_number(v, f"the threshold of {self.describe()}") for v in values)
        if op in {"between", "outside"} and bounds[0] > bounds[1]:
            msg = f"{op}({values[0]!r}, {values[1]!r}): the low bound is above the high bound; swap them"
            raise DefinitionError(msg)
        return Condition(self, op, bounds)

    def __gt__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare(">", other)

    def __ge__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare(">=", other)

    def __lt__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare("<", other)

    def __le__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare("<=", other)

    def between(self, low: float, high: float) -> Condition:
        """Breached while ``low <= value <= high``."""
        return self._compare("between", low, high)

    def outside(self, low: float, high: float) -> Condition:
        """Breached while the value is below ``low`` or above ``high``."""
        return self._compare("outside", low, high)

    def describe(self) -> str:
        """For example ``revenue over 15m vs 1w``."""
        what = (
            self.metric.name
            if self.metric is not None
            else self.funnel.describe()
            if self.funnel is not None
            else f"events arriving in {self.stream.name}"
        )
        minutes = self.seconds // 60
        span = f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
        return f"{what} over {span}" + (f" vs {self.baseline}" if self.baseline else "")

    def __repr__(self) -> str:
        return f"Window({cut(self.describe(), LINE - 8)})"


def over(metric: Metric, window: str) -> Window:
    """``metric`` over the last ``window`` (whole minutes); also available as ``metric.over(window)``.

    >>> from rta import stream, metric, count
    >>> events = stream("events", dimensions={"event": str})
    >>> errors = metric("errors", count(), stream=events)
    >>> (errors.over("5m") > 100).describe()
    'errors over 5m > 100'
    """
    if not isinstance(metric, Metric):
        msg = f"over() takes a metric, got {metric!r}"
        raise DefinitionError(msg)
    streams = {b.stream for b in metric.base_metrics() if b.stream is not None}
    if len(streams) != 1:
        msg = f"metric {metric.name!r} reads {len(streams)} streams; an alert window needs a metric of one stream"
        raise DefinitionError(msg)
    return Window(streams.pop(), window_seconds(window, f"window of {metric.name!r}"), metric)


def no_events(stream: Stream | None = None, within: str = "10m") -> Condition:
    """Breached when ``stream`` accepted no events in the last ``within``: a dead pipeline is an incident too.

    >>> from rta import stream
    >>> no_events(stream("events"), "10m").describe()
    'events arriving in events over 10m < 1'
    """
    source = stream if stream is not None else latest(Stream)
    if not isinstance(source, Stream):
        msg = "no_events(): no stream given and none declared before; pass the stream, e.g. no_events(events, '10m')"
        raise DefinitionError(msg)
    return Window(source, window_seconds(within, "no_events() window")) < 1


@dataclass(frozen=True, slots=True)
class Condition:
    """A window compared with bounds: ``(threshold,)``, or ``(low, high)`` for between/outside."""

    window: Window
    op: Op
    bounds: tuple[float, ...]

    def breached(self, value: float | None) -> bool:
        """Whether ``value`` crosses the line; no value (nothing to average, no baseline) never does."""
        if value is None:
            return False
        low, high = self.bounds[0], self.bounds[-1]
        return {
            ">": value > low,
            ">=": value >= low,
            "<": value < low,
            "<=": value <= low,
            "between": low <= value <= high,
            "outside": value < low or value > high,
        }[self.op]

    def describe(self) -> str:
        """For example ``revenue over 15m vs 1w < -0.3``."""
        bounds = " and ".join(f"{b:g}" for b in self.bounds)
        return f"{self.window.describe()} {self.op} {bounds}"

    def __repr__(self) -> str:
        """For example ``Condition(errors over 5m > 100)``."""
        return f"Condition({cut(self.describe(), LINE - 11)})"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Hours (local to ``tz``) when notifications wait; ``start`` after ``end`` spans midnight."""

    start: str
    end: str
    tz: str = "UTC"


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule. Build it with :func:`alert`."""

    name: str
    condition: Condition
    by: tuple[str, ...] = ()
    where: Expr | None = None
    pending: int = 0  # seconds a breach must last before firing
    keep_firing: int = 0  # seconds to stay firing after the breach ends
    renotify: int | None = None  # repeat a firing notification this often
    cooldown: int = 0  # after a recovery, this long before firing may notify again
    every: int = 60
    notify: tuple[Channel, ...] = (Log(),)
    quiet_hours: QuietHours | None = None
    provisional: bool = False
    description: str | None = None

    @property
    def window(self) -> Window:
        """The condition's window."""
        return self.condition.window

    def summary(self, values: int | None = None, width: int | None = None) -> str:
        """The rule in one line: condition, split, filter, hold and channels.

        ``values`` cuts ``isin`` lists, ``width`` the filter's code.

        >>> from rta import stream, metric, count, col
        >>> events = stream("events", dimensions={"event": str, "country": str})
        >>> errors = metric("errors", count(), where=col("event") == "error", stream=events)
        >>> alert("spike", errors.over("5m") > 100, by="country", where=col("country") != "FR", pending="2m")
        Alert('spike': errors over 5m > 100 by country where col("country") != "FR" for 2m -> log)
        """
        split = f" by {', '.join(self.by)}" if self.by else ""
        where = f" where {cut(self.where.code(values), width or LINE)}" if self.where is not None else ""
        hold = f" for {span(self.pending)}" if self.pending else ""
        return f"{self.condition.describe()}{split}{where}{hold} -> {', '.join(shown_channel(c) for c in self.notify)}"

    def __repr__(self) -> str:
        start = f"Alert({self.name!r}: "
        return start + cut(self.summary(values=4, width=LINE // 3), LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        quiet = self.quiet_hours
        rows = [
            ("condition", self.condition.describe()),
            ("by", ", ".join(self.by) or None),
            ("where", code(self.where.code(values=20)) if self.where is not None else None),
            ("for", span(self.pending) if self.pending else None),
            ("keep firing", span(self.keep_firing) if self.keep_firing else None),
            ("renotify", f"every {span(self.renotify)}" if self.renotify else None),
            ("cooldown", span(self.cooldown) if self.cooldown else None),
            ("evaluated", f"every {span(self.every)}" + (", the current minute too (provisional)" if self.provisional else "")),
            ("quiet hours", f"{quiet.start} to {quiet.end} {quiet.tz}" if quiet is not None else None),
            ("notify", listed((shown_channel(c) for c in self.notify), 10)),
            ("description", self.description),
        ]
        return card("Alert", self.name, rows)


def alert(
    name: str,
    condition: Condition,
    *,
    pending: str | None = None,
    for_: str | None = None,
    keep_firing: str | None = None,
    renotify: str | None = None,
    cooldown: str | None = None,
    every: str = "1m",
    by: str | list[str] | tuple[str, ...] = (),
    where: Expr | None = None,
    notify: str | Channel | list[str | Channel] | tuple[str | Channel, ...] = "log",
    quiet_hours: tuple[str, str] | tuple[str, str, str] | None = None,
    provisional: bool = False,
    description: str | None = None,
) -> Alert:
    """Declare an alert rule.

    ``pending`` (or ``for_``): how long the condition must hold before firing; ``keep_firing``:
    how long to stay firing after it stops holding; ``renotify``: repeat while firing;
    ``cooldown``: after a recovery, how long a new firing stays quiet; ``by``: fire per
    dimension value, grouped into one notification; ``quiet_hours=("22:00", "07:00", "Europe/Paris")``
    holds notifications until the hours end; ``provisional=True`` also evaluates the
    current, not yet final minute (faster, flagged).

    >>> from rta import stream, metric, count, col
    >>> events = stream("events", dimensions={"event": str, "country": str})
    >>> errors = metric("errors", count(), where=col("event") == "error", stream=events)
    >>> rule = alert("error spike", errors.over("5m") > 100, pending="2m", by="country", notify="log")
    >>> rule.pending, rule.by
    (120, ('country',))
    """
    check_name(name.replace(" ", "_").replace("-", "_"), what="alert")
    owner = f"alert {name!r}"
    if not isinstance(condition, Condition):
        msg = f"{owner}: expected a condition such as errors.over('5m') > 100 or no_events(events, '10m'), got {condition!r}"
        raise DefinitionError(msg)
    if pending is not None and for_ is not None:
        msg = f"{owner}: pending= and for_= are the same setting; give one"
        raise DefinitionError(msg)
    hold = pending or for_
    splits = (by,) if isinstance(by, str) else tuple(by)
    stream = condition.window.stream
    fields = [*splits, *(sorted(where.fields()) if isinstance(where, Expr) else [])]
    if where is not None and not isinstance(where, Expr):
        msg = f"{owner}: where= takes a filter such as col('country') == 'FR', got {where!r}"
        raise DefinitionError(msg)
    if condition.window.arrivals and fields:
        msg = f"{owner}: no_events() counts every arriving event; it cannot be split or filtered (by=, where=)"
        raise DefinitionError(msg)
    if condition.window.funnel is not None:  # funnels read raw events: any field, prop.<key>, person.<trait>
        for field_name in splits:
            check_funnel_field(stream, field_name, f"{owner} by=")
        if where is not None:
            where = check_funnel_filter(stream, where, f"{owner} where=")
        if provisional:
            msg = f"{owner}: provisional=True reads the minute still filling in rollups; a funnel alert reads raw events, so drop it"
            raise DefinitionError(msg)
        fields = []
    # Rules on metrics are evaluated every minute from rollups, which keep dimensions only (never the raw-events fallback).
    for field_name in fields:
        if field_name not in stream.dimensions:
            msg = f"{owner}: cannot split or filter by {field_name!r}; {did_you_mean(field_name, list(stream.dimensions))}"
            raise DefinitionError(msg)
    if isinstance(where, Expr) and fields:
        check_filter_kinds(where, stream.fields, f"{owner} where=")
    targets = notify if isinstance(notify, list | tuple) else [notify]
    if not targets:
        msg = f"{owner}: notify= is empty; give at least one channel, for example 'log'"
        raise DefinitionError(msg)
    step = window_seconds(every, f"{owner} every=")
    rule = Alert(
        name,
        condition,
        splits,
        where,
        window_seconds(hold, f"{owner} pending=") if hold else 0,
        window_seconds(keep_firing, f"{owner} keep_firing=") if keep_firing else 0,
        window_seconds(renotify, f"{owner} renotify=") if renotify else None,
        window_seconds(cooldown, f"{owner} cooldown=") if cooldown else 0,
        step,
        tuple(channel(t) for t in targets),
        _quiet_hours(quiet_hours, owner),
        bool(provisional),
        description,
    )
    register(rule)
    return rule


def _quiet_hours(value: tuple[str, ...] | None, owner: str) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) not in (2, 3) or not all(isinstance(v, str) for v in value):
        msg = f"{owner}: quiet_hours= takes ('22:00', '07:00') or ('22:00', '07:00', 'Europe/Paris'), got {value!r}"
        raise DefinitionError(msg)
    for clock in value[:2]:
        if not _CLOCK.match(clock):
            msg = f"{owner}: quiet_hours= takes times as HH:MM, got {clock!r}"
            raise DefinitionError(msg)
    tz = value[2] if len(value) == 3 else "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{owner}: unknown time zone {tz!r} in quiet_hours=; use an IANA name such as 'Europe/Paris'"
        raise DefinitionError(msg) from None
    if value[0] == value[1]:
        msg = f"{owner}: quiet_hours= from {value[0]} to {value[1]} is empty; give different start and end times"
        raise DefinitionError(msg)
    return QuietHours(value[0], value[1], tz)
