"""Asking a retention matrix: check the request, run its statement, shape the cohort matrix, explain it.

The frame is long, one row per (breakdown group,) cohort and period, as PostHog's and Mixpanel's
APIs list a cohort's values and as a heatmap draws them: ``cohort`` (the start of the cohort's
period, UTC), the ``by`` columns, ``cohort_size`` (its people), ``period`` (0, 1, ...), ``people``
(of the cohort, those who came back in that period; period 0 is the whole cohort) and
``retention`` (``people / cohort_size``, 0 to 1). Periods that have not begun by the range's end
are left out (the matrix is a triangle); periods that have, with nobody back, are 0.
:func:`wide` pivots it to one row per cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.expr import Expr
from rta.dsl.retention import PERIOD_ORIGIN, Retention, period_of
from rta.query.person_answer import Checked, PersonExplanation, Reader, check_request, definition_of, explain_statement
from rta.query.person_request import RetentionRequest
from rta.query.retention import retention_sql


@dataclass(frozen=True, slots=True)
class RetentionQuery:
    """A retention request checked against the plan; ``start`` is widened back to the start of its period."""

    retention: Retention
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: Expr | None


def period_start(retention: Retention, number: int) -> datetime:
    """When period ``number`` of ``retention`` begins."""
    return datetime.fromtimestamp(PERIOD_ORIGIN + number * retention.every_seconds, UTC)


def make_retention_query(plan: Plan, request: RetentionRequest, now: datetime | None = None) -> RetentionQuery:
    """Check ``request``: the definition exists, its fields and filter are readable, the range lies within raw retention."""
    found = definition_of(plan.definitions.retention, request.name)
    if request.last is None and request.start is None:  # the whole triangle: every cohort that can reach its last period
        request = request.but(last=f"{found.every_seconds * found.periods}s")
    c = check_request(plan, found.stream, found.by, f"retention {found.name!r}", request, now)
    first = period_start(found, period_of(c.start.timestamp(), found.every_seconds))
    return RetentionQuery(found, first, c.end, c.by, c.where)


def statement(plan: Plan, q: RetentionQuery) -> tuple[str, dict[str, object]]:
    """The ClickHouse SQL of ``q`` and its bound values."""
    select, params = retention_sql(q.retention, plan.stream(q.retention.stream.name), q.start, q.end, by=q.by, where=q.where)
    return select.sql(dialect="clickhouse"), params


COLUMNS = ["cohort", "cohort_size", "period", "people", "retention"]


def shape(q: RetentionQuery, rows: pl.DataFrame) -> pl.DataFrame:
    """The statement's rows as the matrix: every begun period of every cohort, sizes and shares added."""
    r, by = q.retention, list(q.by)
    rows = rows.with_columns(pl.col(c).cast(pl.String) for c in by).with_columns(pl.col("cohort", "period", "people").cast(pl.Int64))
    last = period_of((q.end - timedelta(milliseconds=1)).timestamp(), r.every_seconds)  # the period holding the range's last instant
    cohorts = rows.filter(pl.col("period") == 0).select(*by, "cohort", pl.col("people").alias("cohort_size"))
    begun = pl.int_ranges(0, pl.min_horizontal(pl.lit(r.periods), pl.lit(last + 1) - pl.col("cohort")), dtype=pl.Int64)
    grid = cohorts.with_columns(begun.alias("period")).explode("period")
    frame = grid.join(rows, on=[*by, "cohort", "period"], how="left", nulls_equal=True).with_columns(pl.col("people").fill_null(0))
    origin, every = PERIOD_ORIGIN * 1000, r.every_seconds * 1000
    frame = frame.with_columns(
        (pl.col("cohort") * every + origin).cast(pl.Datetime("ms", "UTC")).alias("cohort"),
        (pl.col("people") / pl.col("cohort_size")).alias("retention"),
    )
    return frame.sort([*by, "cohort", "period"], nulls_last=True).select("cohort", *by, *COLUMNS[1:])


def wide(frame: pl.DataFrame) -> pl.DataFrame:
    """The matrix as one row per cohort (and group): ``cohort``, the ``by`` columns, ``cohort_size``, then ``period_0``, ``period_1``, ...
    holding the retention of each period (null where it has not begun)."""
    index = [c for c in frame.columns if c not in ("period", "people", "retention")]
    periods = frame.with_columns(pl.format("period_{}", pl.col("period")).alias("_column"))
    out = periods.pivot("_column", index=index, values="retention", sort_columns=False)
    named = [f"period_{k}" for k in sorted(frame["period"].unique().to_list())]
    return out.select(*index, *named)


def answer_retention(plan: Plan, read: Reader, request: RetentionRequest, now: datetime | None = None) -> pl.DataFrame:
    """The cohort matrix (see the module's docstring)."""
    q = make_retention_query(plan, request, now)
    sql, params = statement(plan, q)
    return shape(q, read(sql, params))


def explain_retention(plan: Plan, read: Reader, request: RetentionRequest, now: datetime | None = None) -> PersonExplanation:
    """Run the matrix's statement once, timed, and ask ClickHouse what it scans."""
    q = make_retention_query(plan, request, now)
    sql, params = statement(plan, q)
    checked = Checked(q.start, q.end, q.by, q.where)
    return explain_statement(plan, read, "retention", q.retention.name, q.retention.stream.name, checked, sql, params)
