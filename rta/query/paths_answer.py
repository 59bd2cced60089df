"""Asking paths: check the request, run the statement, shape the top paths, explain it.

The frame has one row per path (per breakdown group), most people first: the ``by`` columns,
``start`` (the anchor's label), ``step_1`` ... ``step_N`` (the labels after it; null where the path
ended because the person did nothing more), ``people`` and ``share`` (of the group's people with
an anchor, 0 to 1). At most ``top`` paths per group (20 unless asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from rta.compiler.plan import Plan
from rta.dsl.expr import Expr
from rta.dsl.paths import Paths
from rta.query.paths import paths_sql
from rta.query.person_answer import Checked, PersonExplanation, Reader, check_request, definition_of, explain_statement
from rta.query.person_request import PathsRequest

DEFAULT_TOP = 20


@dataclass(frozen=True, slots=True)
class PathsQuery:
    """A paths request checked against the plan."""

    paths: Paths
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: Expr | None
    top: int


def make_paths_query(plan: Plan, request: PathsRequest, now: datetime | None = None) -> PathsQuery:
    """Check ``request``: the definition exists, its fields and filter are readable, the range lies within raw retention."""
    found = definition_of(plan.definitions.path, request.name)
    c = check_request(plan, found.stream, found.by, f"paths {found.name!r}", request, now)
    return PathsQuery(found, c.start, c.end, c.by, c.where, request.top or DEFAULT_TOP)


def statement(plan: Plan, q: PathsQuery) -> tuple[str, dict[str, object]]:
    """The ClickHouse SQL of ``q`` and its bound values."""
    select, params = paths_sql(q.paths, plan.stream(q.paths.stream.name), q.start, q.end, top=q.top, by=q.by, where=q.where)
    return select.sql(dialect="clickhouse"), params


def step_columns(paths: Paths) -> list[str]:
    return ["start", *(f"step_{k}" for k in range(1, paths.steps + 1))]


def shape(q: PathsQuery, rows: pl.DataFrame) -> pl.DataFrame:
    """The statement's rows as the frame: the path spread over step columns, shares added."""
    by, steps = list(q.by), step_columns(q.paths)
    rows = rows.with_columns(pl.col(c).cast(pl.String) for c in by).with_columns(
        pl.col("path").cast(pl.List(pl.String)), pl.col("people", "total").cast(pl.Int64)
    )
    spread = [pl.col("path").list.get(k, null_on_oob=True).alias(name) for k, name in enumerate(steps)]
    frame = rows.with_columns(*spread, (pl.col("people") / pl.col("total")).alias("share"))
    frame = frame.sort([*by, "people", "path"], descending=[*([False] * len(by)), True, False], nulls_last=True)
    return frame.select(*by, *steps, "people", "share")


def answer_paths(plan: Plan, read: Reader, request: PathsRequest, now: datetime | None = None) -> pl.DataFrame:
    """The top paths (see the module's docstring)."""
    q = make_paths_query(plan, request, now)
    sql, params = statement(plan, q)
    return shape(q, read(sql, params))


def explain_paths(plan: Plan, read: Reader, request: PathsRequest, now: datetime | None = None) -> PersonExplanation:
    """Run the paths' statement once, timed, and ask ClickHouse what it scans."""
    q = make_paths_query(plan, request, now)
    sql, params = statement(plan, q)
    checked = Checked(q.start, q.end, q.by, q.where)
    return explain_statement(plan, read, "paths", q.paths.name, q.paths.stream.name, checked, sql, params)
