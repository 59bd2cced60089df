"""Asking a funnel: check the request against the plan, run its statement, shape the frame, explain it.

The frame has one row per step (per breakdown group): ``step``, ``name``, the ``by`` columns,
``people`` entering the step, ``conversion`` (of the first step's people), ``step_conversion``
(of the step before's), ``drop_off`` (people lost since the step before), and ``median_seconds`` /
``p90_seconds`` from the step before (null at step 1). Every group has every step, with 0 people
where nobody got that far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.expr import Expr
from rta.dsl.funnel import Funnel
from rta.query.funnels import funnel_sql
from rta.query.person_answer import Checked, PersonExplanation, Reader, check_request, definition_of, explain_statement
from rta.query.person_request import FunnelRequest

FunnelExplanation = PersonExplanation  # the name the workspaces use; retention and paths explain the same way


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    """A funnel request checked against the plan: the definition, the range, the breakdown, the filter."""

    funnel: Funnel
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: Expr | None


def make_funnel_query(plan: Plan, request: FunnelRequest, now: datetime | None = None) -> FunnelQuery:
    """Check ``request``: the funnel exists, its fields and filter are readable, the range lies within raw retention."""
    found = definition_of(plan.definitions.funnel, request.name)
    c = check_request(plan, found.stream, found.by, f"funnel {found.name!r}", request, now)
    return FunnelQuery(found, c.start, c.end, c.by, c.where)


def statement(plan: Plan, q: FunnelQuery) -> tuple[str, dict[str, object]]:
    """The ClickHouse SQL of ``q`` and its bound values."""
    select, params = funnel_sql(q.funnel, plan.stream(q.funnel.stream.name), q.start, q.end, by=q.by, where=q.where)
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


def explain_funnel(plan: Plan, read: Reader, request: FunnelRequest, now: datetime | None = None) -> FunnelExplanation:
    """Run the funnel once, timed, and ask ClickHouse what its statement scans (``EXPLAIN ESTIMATE``)."""
    q = make_funnel_query(plan, request, now)
    sql, params = statement(plan, q)
    checked = Checked(q.start, q.end, q.by, q.where)
    return explain_statement(plan, read, "funnel", q.funnel.name, q.funnel.stream.name, checked, sql, params)
