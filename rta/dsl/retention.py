"""Retention: of the people who did ``start`` in a period, how many came back (did ``back``) in each period after.

``retention("weekly_return", start=col("event") == "signup", back=col("event") == "page_view",
every="1w", periods=8)`` declares one; ``ws.retention("weekly_return", last="8w")`` answers it from
raw events (``rta/query/retention.py``; docs/architecture.md, "Retention and paths"). The definition
is PostHog's *recurring* retention:

- periods are calendar periods of ``every``: multiples of it counted from Monday 1970-01-05 00:00 UTC,
  so days start at midnight UTC and weeks on Monday;
- a person is in the cohort of every period in which they did ``start`` (people who sign up once are in one);
  with ``cohort="first_time"`` (PostHog's *first time*, Mixpanel's default) only in that of their first
  ``start`` event of all the raw events kept, and in none when that is before the range;
- period 0 is the cohort's own period, so every member counts there (100%); period *k* counts the
  members with a ``back`` event in ``[cohort start + k * every, cohort start + (k + 1) * every)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rta.dsl.context import register
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.dsl.names import check_name
from rta.dsl.person_fields import check_by, check_person_filter, person_stream
from rta.dsl.shown import CELL, LINE, card, code, cut, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

CohortKind = Literal["recurring", "first_time"]
COHORTS: tuple[CohortKind, ...] = ("recurring", "first_time")
MAX_PERIODS = 100  # a cohort matrix of more columns is a typo (or a finer `every`)
SHORTEST_EVERY = 3600  # finer periods than an hour are sessions, not retention
#: Periods are counted from this Monday (1970-01-05 00:00 UTC, in seconds): weeks start on Monday, days at midnight UTC.
PERIOD_ORIGIN = 4 * 86400


@dataclass(frozen=True, slots=True)
class Retention:
    """A declared retention matrix. Build it with :func:`retention`."""

    name: str
    stream: Stream
    start: Expr
    back: Expr
    every: str
    every_seconds: int
    periods: int
    by: tuple[str, ...]
    cohort: CohortKind = "recurring"
    description: str | None = None

    def __repr__(self) -> str:
        """For example ``Retention('weekly_return': 8 periods of 1w; by device)``."""
        split = f"; by {listed(self.by)}" if self.by else ""
        first = ", first time" if self.cohort == "first_time" else ""
        head = f"Retention({self.name!r}: "
        return head + cut(f"{self.periods} periods of {self.every}{first}{split}", LINE - len(head) - 1) + ")"

    def _repr_html_(self) -> str:
        rows = [
            ("stream", self.stream.name),
            ("start", code(self.start.code(20))),
            ("back", code(self.back.code(20))),
            ("periods", f"{self.periods} of {self.every}"),
            ("cohorts", "each person's first start" if self.cohort == "first_time" else "every period with a start"),
            ("by", listed(self.by, 30) or None),
            ("description", cut(self.description, CELL) if self.description else None),
        ]
        return card("Retention", self.name, rows)


def period_of(seconds: float, every_seconds: int) -> int:
    """The number of the period of ``every_seconds`` that holds the time ``seconds`` (since the epoch)."""
    return int((seconds - PERIOD_ORIGIN) // every_seconds)


def retention(
    name: str,
    *,
    start: Expr,
    back: Expr,
    every: str = "1w",
    periods: int = 8,
    by: Sequence[str] | str = (),
    cohort: CohortKind = "recurring",
    description: str | None = None,
    stream: Stream | None = None,
) -> Retention:
    """Declare a retention matrix: people who did ``start`` in a period, and who of them did ``back`` in each later one.

    ``every`` is the period (``"1d"``, ``"1w"``; at least an hour), ``periods`` how many columns the
    matrix has (period 0, the cohort's own, included). ``cohort="recurring"`` (the default) puts a person in
    every period they did ``start`` in, ``"first_time"`` only in their first. ``by`` is the default breakdown (declared
    dimensions, ``prop.<key>``, ``person.<trait>``), read at the person's first ``start`` event of the period.

    >>> from rta import stream, col
    >>> events = stream("events", dimensions={"event": str}, user="user_id", keep_raw="30d")
    >>> retention("weekly", start=col("event") == "signup", back=col("event") == "visit", stream=events)
    Retention('weekly': 8 periods of 1w)
    """
    check_name(name, what="retention")
    owner = f"retention {name!r}"
    source = person_stream(stream, owner, "retention is")
    first = check_person_filter(source, start, f"{owner} start=")
    again = check_person_filter(source, back, f"{owner} back=")
    seconds = parse_duration(every, what=f"every= of {owner}")
    if seconds < SHORTEST_EVERY:
        msg = f"{owner}: every={every!r} is shorter than an hour; retention periods are hours, days or weeks, for example '1d' or '1w'"
        raise DefinitionError(msg)
    if isinstance(periods, bool) or not isinstance(periods, int) or not 2 <= periods <= MAX_PERIODS:
        msg = f"{owner}: periods= takes a whole number from 2 to {MAX_PERIODS} (period 0 included), got {periods!r}"
        raise DefinitionError(msg)
    if cohort not in COHORTS:
        msg = f"{owner}: cohort={cohort!r} is not one of {', '.join(repr(c) for c in COHORTS)}; {did_you_mean(str(cohort), list(COHORTS))}"
        raise DefinitionError(msg)
    result = Retention(name, source, first, again, every, seconds, periods, check_by(source, by, owner), cohort, description)
    register(result)
    return result
