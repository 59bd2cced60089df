"""Asking a funnel: check the request against the plan, run its statement, shape the frame, explain it.

The frame has one row per step (per breakdown group): ``step``, ``name``, the ``by`` columns,
``people`` entering the step, ``conversion`` (of the first step's people), ``step_conversion``
(of the step before's), ``drop_off`` (people lost since the step before), and ``median_seconds`` /
``p90_seconds`` from the step before (null at step 1). Every group has every step, with 0 people
where nobody got that far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.funnel import Funnel, check_funnel_field, check_funnel_filter
from rta.dsl.shown import block, listed
from rta.errors import DefinitionError, QueryError
from rta.query.funnel_request import FunnelRequest
from rta.query.funnels import funnel_sql

Reader = Callable[[str, Mapping[str, object]], pl.DataFrame]


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    """A funnel request checked against the plan: the definition, the range, the breakdown, the filter."""

    funnel: Funnel
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: object  # an Expr or None


def make_funnel_query(plan: Plan, request: FunnelRequest, now: datetime | None = None) -> FunnelQuery:
    """Check ``request``: the funnel exists, its fields and filter are readable, the range lies within raw retention."""
    try:
        found = plan.definitions.funnel(request.funnel)
        owner = f"funnel {found.name!r}"
        by = found.by if request.by is None else request.by
        for name in by:
            check_funnel_field(found.stream, name, f"{owner} by=")
        if len(set(by)) != len(by):
            raise DefinitionError(f"{owner}: by= repeats a field: {list(by)!r}")
        if request.where is not None:
            check_funnel_filter(found.stream, request.where, f"{owner} where=")
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    now = now or datetime.now(UTC)
    start, end = request.span(now)
    stream = plan.stream(found.stream.name)
    kept = stream.raw_ttl_seconds
    if kept is not None and (now - start).total_seconds() > kept + 86400:  # a day's grace: TTLs drop whole parts
        msg = (
            f"{owner}: raw events of {stream.name!r} are kept {kept // 86400}d and this range starts "
            f"{(now - start).days}d ago; ask for a shorter range"
        )
        raise QueryError(msg)
    return FunnelQuery(found, start, end, tuple(by), request.where)


def statement(plan: Plan, q: FunnelQuery) -> tuple[str, dict[str, object]]:
    """The ClickHouse SQL of ``q`` and its bound values."""
    select, params = funnel_sql(q.funnel, plan.stream(q.funnel.stream.name), q.start, q.end, by=q.by, where=q.where)  # type: ignore[arg-type]
    return select.sql(dialect="clickhouse"), params


def shape(q: FunnelQuery, rows: pl.DataFrame) -> pl.DataFrame:
    """The statement's rows (people and times per group and step) as the funnel's frame: every step of every group."""
    n = len(q.funnel.steps)
    by = list(q.by)
    rows = rows.with_columns(pl.col(c).cast(pl.String) for c in by).with_columns(
        pl.col("step").cast(pl.Int64), pl.col("people").cast(pl.Int64), pl.col("median_seconds", "p90_seconds").cast(pl.Float64)
    )
    # In any order, step k is "any k of the steps": no one step's name fits it.
    names = [f"{k} of {n} steps" for k in range(1, n + 1)] if q.funnel.order == "any" else list(q.funnel.names)
    steps = pl.DataFrame({"step": list(range(1, n + 1)), "name": names}, schema={"step": pl.Int64, "name": pl.String})
    groups = rows.filter(pl.col("step") == 1).select(by) if by else pl.DataFrame()
    grid = groups.join(steps, how="cross") if by else steps
    frame = grid.join(rows, on=[*by, "step"], how="left", nulls_equal=True).with_columns(pl.col("people").fill_null(0))
    first = pl.col("people").first().over(by) if by else pl.col("people").first()
    before = pl.col("people").shift(1).over(by) if by else pl.col("people").shift(1)
    frame = frame.sort([*by, "step"], nulls_last=True).with_columns(
        (pl.col("people") / first).alias("conversion"),
        pl.when(pl.col("step") == 1).then(1.0).when(before > 0).then(pl.col("people") / before).otherwise(None).alias("step_conversion"),
        pl.when(pl.col("step") == 1).then(0).otherwise(before - pl.col("people")).cast(pl.Int64).alias("drop_off"),
        pl.when(pl.col("step") == 1).then(None).otherwise(pl.col("median_seconds")).alias("median_seconds"),
        pl.when(pl.col("step") == 1).then(None).otherwise(pl.col("p90_seconds")).alias("p90_seconds"),
    )
    columns = ["step", "name", *by, "people", "conversion", "step_conversion", "drop_off", "median_seconds", "p90_seconds"]
    return frame.select(columns)


def answer_funnel(plan: Plan, read: Reader, request: FunnelRequest, now: datetime | None = None) -> pl.DataFrame:
    """The funnel's frame (see the module's docstring)."""
    q = make_funnel_query(plan, request, now)
    sql, params = statement(plan, q)
    return shape(q, read(sql, params))


@dataclass(frozen=True, slots=True)
class FunnelExplanation:
    """What answering a funnel ran: its statement, the rows it scans (ClickHouse's estimate, whole granules), the time."""

    funnel: str
    start: datetime
    end: datetime
    by: tuple[str, ...]
    table: str
    sql: str
    rows_scanned: int
    seconds: float

    def as_json(self) -> dict[str, object]:
        return {"funnel": self.funnel, "start": self.start.isoformat(), "end": self.end.isoformat(), "by": list(self.by),
                "table": self.table, "sql": self.sql, "rows_scanned": self.rows_scanned, "seconds": self.seconds}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FunnelExplanation:
        return cls(str(data["funnel"]), datetime.fromisoformat(str(data["start"])), datetime.fromisoformat(str(data["end"])),
                   tuple(data["by"]), str(data["table"]), str(data["sql"]), int(data["rows_scanned"]), float(data["seconds"]))  # type: ignore[call-overload,arg-type]  # fmt: skip

    def __str__(self) -> str:
        split = f" by {listed(self.by)}" if self.by else ""
        return (
            f"funnel {self.funnel}{split}, {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC: raw events {self.table}: "
            f"{self.rows_scanned:,} rows scanned in {self.seconds * 1000:.1f} ms"
        )

    def __repr__(self) -> str:
        return block(f"FunnelExplanation: {self}", [self.sql[:2000]])


def explain_funnel(plan: Plan, read: Reader, request: FunnelRequest, now: datetime | None = None) -> FunnelExplanation:
    """Run the funnel once, timed, and ask ClickHouse what its statement scans (``EXPLAIN ESTIMATE``)."""
    q = make_funnel_query(plan, request, now)
    sql, params = statement(plan, q)
    started = time.perf_counter()
    read(sql, params)
    seconds = time.perf_counter() - started
    estimate = read(f"EXPLAIN ESTIMATE {sql}", params)
    rows = int(estimate["rows"].sum()) if "rows" in estimate.columns and estimate.height else 0
    table = plan.stream(q.funnel.stream.name).raw_table or ""
    return FunnelExplanation(q.funnel.name, q.start, q.end, q.by, table, sql, rows, seconds)
