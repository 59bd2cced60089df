"""Metric queries: a metric over a time range, by dimensions, with filters -> a Polars frame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl
import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Part, Plan
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS, parse_duration
from rta.dsl.metric import Arith, Metric
from rta.errors import DefinitionError, QueryError, did_you_mean
from rta.query.planner import Choice, choose

Where = Mapping[str, "str | Sequence[str]"]


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One metric query, normalized: a half-open UTC range ``[start, end)``."""

    metric: str
    start: datetime
    end: datetime
    grain: str
    by: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...]


def make_query(
    plan: Plan,
    metric: str,
    *,
    last: str | None = "7d",
    start: datetime | None = None,
    end: datetime | None = None,
    grain: str = "1h",
    by: Sequence[str] = (),
    where: Where | None = None,
    now: datetime | None = None,
) -> MetricQuery:
    """Check a query against the definitions; errors name the bad value and the valid ones."""
    found = plan.definitions.metric(metric)
    if grain not in GRAINS:
        msg = f"unknown grain {grain!r}; valid grains are: {', '.join(GRAINS)}"
        raise QueryError(msg)
    streams = {b.stream.name for b in found.base_metrics() if b.stream}
    dims = {d for s in plan.streams if s.name in streams for d in s.dims}
    conditions = tuple((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in (where or {}).items())
    for name in (*by, *(k for k, _ in conditions)):
        if name not in dims:
            msg = f"metric {metric!r} cannot be split or filtered by {name!r}; {did_you_mean(name, sorted(dims))}"
            raise QueryError(msg)
    step = GRAINS[grain]
    now = now or datetime.now(UTC)
    stop = end or now
    try:
        begin = start or stop - timedelta(seconds=parse_duration(last or "7d", what="time range (last)"))
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    # Whole buckets: the range starts on a bucket boundary and includes the current bucket.
    first = datetime.fromtimestamp(int(begin.timestamp()) // step * step, UTC)
    after = datetime.fromtimestamp(-(-int(stop.timestamp()) // step) * step, UTC)
    if after <= first:
        after = first + timedelta(seconds=step)
    return MetricQuery(metric, first, after, grain, tuple(by), conditions)


def _merged(part: Part) -> exp.Expr:
    column = exp.column(exp.to_identifier(part.column))
    if part.kind.params:
        return exp.ParameterizedAgg(this=part.kind.merge, expressions=[exp.Literal.number(p) for p in part.kind.params], params=[column])
    return exp.func(part.kind.merge, column)


def _value(choice: Choice, metric: str) -> exp.Expr:
    parts = {p.kind.suffix: _merged(p) for p in choice.rollup.metric_parts(metric)}
    if "sum" in parts and "n" in parts:  # an average: merged sum / merged count
        return exp.Div(this=parts["sum"], expression=exp.func("nullIf", parts["n"], exp.Literal.number(0)))
    (only,) = parts.values()
    return only


def stored_sql(q: MetricQuery, choice: Choice, metrics: Sequence[str]) -> tuple[exp.Select, dict[str, object]]:
    """One SELECT of ``metrics`` (all stored in ``choice``) by bucket and ``q.by``, with parameters."""
    params = Params()
    bucket = exp.column("bucket")
    step = exp.Interval(this=exp.Literal.number(GRAINS[q.grain]), unit=exp.var("SECOND"))
    dims = [exp.column(exp.to_identifier(d)) for d in q.by]
    conditions: list[exp.Expr] = [
        exp.GTE(this=bucket, expression=params.add(q.start.strftime("%Y-%m-%d %H:%M:%S"), "DateTime('UTC')")),
        exp.LT(this=bucket, expression=params.add(q.end.strftime("%Y-%m-%d %H:%M:%S"), "DateTime('UTC')")),
    ]
    for name, values in q.where:
        node = ex.IsIn(name, values) if len(values) > 1 else ex.Compare(name, "==", values[0])
        conditions.append(filter_sql(node, params, as_string=frozenset({name})))
    select = (
        exp.select(
            exp.alias_(exp.func("toStartOfInterval", bucket, step), "t"),
            *dims,
            *(exp.alias_(_value(choice, m), m) for m in metrics),
        )
        .from_(exp.to_table(choice.table.table))
        .where(exp.and_(*conditions))
        .group_by(exp.column("t"), *dims)
        .order_by(exp.column("t"), *dims)
    )
    return select, params.values


def fetch(client: Client, q: MetricQuery, choice: Choice, metrics: Sequence[str]) -> pl.DataFrame:
    """Run :func:`stored_sql`; columns ``bucket`` (UTC), the ``by`` dimensions, one per metric."""
    select, params = stored_sql(q, choice, metrics)
    frame = pl.from_arrow(client.query_arrow(select.sql(dialect="clickhouse"), parameters=params))
    assert isinstance(frame, pl.DataFrame)
    time = (pl.col("t").cast(pl.Int64) * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    return frame.select(time, *(pl.col(d).cast(pl.String) for d in q.by), *(pl.col(m).cast(pl.Float64) for m in metrics))


def _formula(node: Arith | Metric | float) -> pl.Expr:
    if isinstance(node, Metric):
        return pl.col(node.name) if node.formula is None else _formula(node.formula)
    if isinstance(node, float):
        return pl.lit(node)
    left, right = _formula(node.left), _formula(node.right)
    if node.op == "/":
        return pl.when(right == 0).then(None).otherwise(left / right)
    return {"+": left + right, "-": left - right, "*": left * right}[node.op]


def run_query(client: Client, plan: Plan, q: MetricQuery) -> pl.DataFrame:
    """Columns ``bucket``, the ``by`` dimensions and the metric; formulas from merged parts."""
    metric = plan.definitions.metric(q.metric)
    keys = ["bucket", *q.by]
    dims = set(q.by) | {k for k, _ in q.where}
    # Metrics answered by the same table share one query.
    tables: dict[Choice, list[str]] = {}
    for base in metric.base_metrics():
        tables.setdefault(choose(plan, base.name, q.grain, dims), []).append(base.name)
    frames = [fetch(client, q, choice, names) for choice, names in tables.items()]
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on=keys, how="full", coalesce=True)
    if metric.formula is not None:
        # Components are merged first, then combined: never an average of ratios.
        joined = joined.with_columns(_formula(metric.formula).alias(metric.name))
    return joined.select(*keys, metric.name).sort(keys)


def query(
    client: Client,
    plan: Plan,
    metric: str,
    **options: object,
) -> pl.DataFrame:
    """Query ``metric`` (see :func:`make_query` for the options) and return a Polars frame."""
    return run_query(client, plan, make_query(plan, metric, **options))  # type: ignore[arg-type]
