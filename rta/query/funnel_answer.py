"""Asking a funnel: check the request against the plan, run its statement, shape the frame, explain it.

The frame has one row per step (per breakdown group): ``step``, ``name``, the ``by`` columns,
``people`` entering the step, ``conversion`` (of the first step's people), ``step_conversion``
(of the step before's), ``drop_off`` (people lost since the step before), and ``median_seconds`` /
``p90_seconds`` from the step before (null at step 1). Every group has every step, with 0 people
where nobody got that far.

With ``every=`` (and ``window=``, default the same), one funnel per window, windows ending ``every``
apart from ``start + window`` to ``end``: the same rows with ``window_start`` and ``window_end`` first
(conversion over time; alert backtests ask this way, one statement for every evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.dsl.funnel import Funnel
from rta.errors import DefinitionError, QueryError
from rta.query.funnels import FunnelWindows, funnel_sql
from rta.query.person_answer import Checked, PersonExplanation, Reader, check_request, definition_of, explain_statement
from rta.query.person_request import FunnelRequest

FunnelExplanation = PersonExplanation  # the name the workspaces use; retention and paths explain the same way
MAX_WINDOWS = 5_000  # funnels per statement with every=
MAX_COPIES = 1_440  # windows one event may fall in (window / every): each is a copy of it in the fold


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    """A funnel request checked against the plan: the definition, the range, the breakdown, the filter."""

    funnel: Funnel
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: Expr | None
    windows: FunnelWindows | None = None


def make_funnel_query(plan: Plan, request: FunnelRequest, now: datetime | None = None) -> FunnelQuery:
    """Check ``request``: the funnel exists, its fields and filter are readable, the range lies within raw retention."""
    found = definition_of(plan.definitions.funnel, request.name)
    c = check_request(plan, found.stream, found.by, f"funnel {found.name!r}", request, now)
    return FunnelQuery(found, c.start, c.end, c.by, c.where, _windows(request, c.start, c.end))


def _windows(request: FunnelRequest, start: datetime, end: datetime) -> FunnelWindows | None:
    if request.every is None:
        if request.window is not None:
            raise QueryError(f"window={request.window!r} needs every= (how far apart windows end), e.g. every='15m'")
        return None
    try:
        every = parse_duration(request.every, what="every=")
        span = parse_duration(request.window or request.every, what="window=")
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    first = start + timedelta(seconds=span)
    if first > end:
        raise QueryError(f"window={request.window or request.every} is longer than the range asked ({end - start}); ask a longer range")
    count = int((end - first).total_seconds()) // every + 1
    if count > MAX_WINDOWS or span // every > MAX_COPIES:
        msg = (
            f"every={request.every} over {end - start} makes {count:,} windows of {span // every:,} steps each; at most "
            f"{MAX_WINDOWS:,} windows and {MAX_COPIES:,} steps per window: ask a shorter range or a larger every="
        )
        raise QueryError(msg)
    ends = tuple(int((first + timedelta(seconds=i * every)).timestamp() * 1000) for i in range(count))
    return FunnelWindows(ends, span * 1000)


def statement(plan: Plan, q: FunnelQuery) -> tuple[str, dict[str, object]]:
    """The ClickHouse SQL of ``q`` and its bound values."""
    stream = plan.stream(q.funnel.stream.name)
    select, params = funnel_sql(q.funnel, stream, q.start, q.end, by=q.by, where=q.where, windows=q.windows)
    return select.sql(dialect="clickhouse"), params


def shape(q: FunnelQuery, rows: pl.DataFrame) -> pl.DataFrame:
    """The statement's rows (people and times per group and step) as the funnel's frame: every step of every group."""
    if q.windows is None:
        return _shaped(q, rows)
    parts = rows.partition_by("_w", as_dict=True) if rows.height and "_w" in rows.columns else {}
    span = timedelta(milliseconds=q.windows.span_ms)
    frames = []
    for end_ms in q.windows.ends_ms:
        part = parts.get((end_ms,), rows.clear()).drop("_w", strict=False)
        end = datetime.fromtimestamp(end_ms / 1000, UTC)
        frame = _shaped(q, part)
        bounds = pl.lit(end - span).dt.cast_time_unit("ms").alias("window_start"), pl.lit(end).dt.cast_time_unit("ms").alias("window_end")
        frames.append(frame.select(*bounds, pl.all()))
    return pl.concat(frames)


def _shaped(q: FunnelQuery, rows: pl.DataFrame) -> pl.DataFrame:
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
