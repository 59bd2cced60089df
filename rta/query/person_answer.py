"""What answering any per-person definition (funnel, retention, paths) shares: checking the request, explaining the run.

A request is checked against the plan the same way for every kind: its breakdown and filter must
be readable from the definition's stream, and its range must lie within the raw events' retention.
An explanation is the statement, the rows it scans (ClickHouse's ``EXPLAIN ESTIMATE``: embedded
ClickHouse counts the rows a query returns as read) and the time it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.expr import Expr
from rta.dsl.person_fields import check_by, check_person_filter
from rta.dsl.shown import block, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, QueryError
from rta.query.person_request import PersonRequest

Reader = Callable[[str, Mapping[str, object]], pl.DataFrame]
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class Checked:
    """A request's range, breakdown and filter, checked against the definition's stream."""

    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: Expr | None


def check_request(
    plan: Plan, stream: Stream, own_by: tuple[str, ...], owner: str, request: PersonRequest, now: datetime | None = None
) -> Checked:
    """``request``'s breakdown (default ``own_by``) and filter readable from ``stream``, its range within raw retention."""
    try:
        by = check_by(stream, own_by if request.by is None else request.by, owner)
        if request.where is not None:
            check_person_filter(stream, request.where, f"{owner} where=")
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    now = now or datetime.now(UTC)
    start, end = request.span(now)
    planned = plan.stream(stream.name)
    kept = planned.raw_ttl_seconds
    if kept is not None and (now - start).total_seconds() > kept + 86400:  # a day's grace: TTLs drop whole parts
        msg = (
            f"{owner}: raw events of {planned.name!r} are kept {kept // 86400}d and this range starts "
            f"{(now - start).days}d ago; ask for a shorter range"
        )
        raise QueryError(msg)
    return Checked(start, end, by, request.where)


def definition_of(find: Callable[[str], D], name: str) -> D:
    """The definition ``find`` names, a missing one refused as a query error (it lists the valid names)."""
    try:
        return find(name)
    except DefinitionError as err:
        raise QueryError(str(err)) from None


@dataclass(frozen=True, slots=True)
class PersonExplanation:
    """What answering a funnel, retention or paths ran: its statement, the rows it scans (whole granules), the time."""

    kind: str
    name: str
    start: datetime
    end: datetime
    by: tuple[str, ...]
    table: str
    sql: str
    rows_scanned: int
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(), "by": list(self.by),
                "table": self.table, "sql": self.sql, "rows_scanned": self.rows_scanned, "seconds": self.seconds}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PersonExplanation:
        when, by = datetime.fromisoformat, data["by"]
        assert isinstance(by, list)
        return cls(str(data["kind"]), str(data["name"]), when(str(data["start"])), when(str(data["end"])), tuple(by),
                   str(data["table"]), str(data["sql"]), int(str(data["rows_scanned"])), float(str(data["seconds"])))  # fmt: skip

    def __str__(self) -> str:
        split = f" by {listed(self.by)}" if self.by else ""
        return (
            f"{self.kind} {self.name}{split}, {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC: raw events {self.table}: "
            f"{self.rows_scanned:,} rows scanned in {self.seconds * 1000:.1f} ms"
        )

    def __repr__(self) -> str:
        return block(f"{self.kind.capitalize()}Explanation: {self}", [self.sql[:2000]])


def explain_statement(
    plan: Plan, read: Reader, kind: str, name: str, stream: str, checked: Checked, sql: str, params: Mapping[str, object]
) -> PersonExplanation:
    """Run ``sql`` once, timed, and ask ClickHouse what it scans (``EXPLAIN ESTIMATE``)."""
    started = time.perf_counter()
    read(sql, params)
    seconds = time.perf_counter() - started
    estimate = read(f"EXPLAIN ESTIMATE {sql}", params)
    rows = int(estimate["rows"].sum()) if "rows" in estimate.columns and estimate.height else 0
    table = plan.stream(stream).raw_table or ""
    return PersonExplanation(kind, name, checked.start, checked.end, checked.by, table, sql, rows, seconds)
