"""Stored metrics computed from a stream's raw events: the planner's fallback when no rollup answers.

The SELECT has the shape of a rollup's (:func:`rta.query.metric_query.stored_sql`): the same
buckets, the same ``[start, end)`` range, the same columns, so everything after it (gap filling,
top groups, totals, comparisons, formulas) is shared. Each metric is its aggregation over the
events its own filter keeps, with the rollups' sketch where they keep one (distinct counts give
the same number either way; docs/architecture.md, "Raw-events fallback").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlglot.expressions as exp

from rta.compiler.aggregations import aggregation_of, raw_sql
from rta.compiler.plan import Plan
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl import aggregates as agg
from rta.dsl.durations import GRAINS
from rta.query.planner import RawChoice
from rta.query.raw_columns import RawColumns

if TYPE_CHECKING:
    from rta.query.metric_query import MetricQuery

RAW_TIME_TYPE = "DateTime64(3, 'UTC')"


def raw_metrics_sql(
    plan: Plan, q: MetricQuery, raw: RawChoice, metrics: Sequence[str], *, totals: bool = False, materialized: frozenset[str] = frozenset()
) -> tuple[exp.Select, dict[str, object]]:
    """One SELECT of stored ``metrics`` from ``raw``'s events by bucket and ``q.by`` (``totals``: the whole range)."""
    params = Params()
    columns = RawColumns(raw.stream, params, materialized)
    time = columns.column(raw.stream.time)
    conditions: list[exp.Expr] = [
        exp.GTE(this=time, expression=params.add(q.start.strftime("%Y-%m-%d %H:%M:%S.000"), RAW_TIME_TYPE)),
        exp.LT(this=time.copy(), expression=params.add(q.end.strftime("%Y-%m-%d %H:%M:%S.000"), RAW_TIME_TYPE)),
    ]
    if q.where is not None:
        conditions.append(filter_sql(q.where, params, as_string=columns.text_fields, table=columns.table, resolve=columns.resolve))
    outputs: list[exp.Expr] = []
    keys: list[exp.Expr] = []
    if not totals:
        step = exp.Interval(this=exp.Literal.number(GRAINS[q.grain]), unit=exp.var("SECOND"))
        # toDateTime: the rollups' buckets are whole seconds, and so is the column the caller reads
        outputs.append(exp.alias_(exp.func("toDateTime", exp.func("toStartOfInterval", time.copy(), step)), "t"))
        keys.append(exp.column("t"))
    for name in q.by:
        outputs.append(exp.alias_(columns.column(name), name, quoted=True))
        keys.append(exp.column(exp.to_identifier(name, quoted=True)))
    outputs += [exp.alias_(_metric(plan, columns, params, m), m, quoted=True) for m in metrics]
    select = exp.select(*outputs).from_(exp.to_table(columns.table)).where(exp.and_(*conditions, copy=False), copy=False)
    select = columns.join(select)
    if keys:
        select = select.group_by(*keys, copy=False).order_by(*(k.copy() for k in keys), copy=False)
    return select, params.values


def _metric(plan: Plan, columns: RawColumns, params: Params, name: str) -> exp.Expr:
    """A stored metric over the events its filter keeps: ``aggregate(if(filter, field, NULL))``."""
    metric = plan.definitions.metric(name)
    a = metric.aggregation
    assert a is not None
    field = columns.column(a.field, numeric=not isinstance(a, agg.Distinct)) if a.field else exp.Literal.number(1)
    if metric.where is not None:
        keep = filter_sql(metric.where, params, as_string=columns.text_fields, table=columns.table, resolve=columns.resolve)
        field = exp.If(this=keep, true=field, false=exp.null())
    if isinstance(a, agg.Count):
        return exp.func("count", field)
    value = raw_sql(a, field)
    # Aggregates of only NULLs are NULL; where an empty bucket means zero, the rollups say 0.
    return exp.func("ifNull", value, exp.Literal.number(0)) if aggregation_of(a).zero_when_empty else value


def integral(plan: Plan, name: str) -> bool:
    """Counts and distinct counts are whole numbers."""
    a = plan.definitions.metric(name).aggregation
    return a is not None and aggregation_of(a).integral
