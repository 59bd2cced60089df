"""Test helpers for analysts and for rta itself: a source of frames and a brute-force oracle.

The oracle recomputes every metric of a rollup from raw events with plain Polars, the slow
obvious way, so rollups read back from the store can be compared with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from rta.compiler.aggregations import aggregation_of
from rta.compiler.plan import Plan, RollupPlan
from rta.dsl import aggregates as agg
from rta.dsl.durations import GRAINS
from rta.dsl.expr import Expr
from rta.flows.filters import to_polars
from rta.flows.frames import BatchSource as BatchSource  # the sources moved to the flow; tests import them here too
from rta.flows.frames import frame_batches as frame_batches


def _oracle_expr(metric_name: str, aggregation: agg.Aggregation, where: pl.Expr | None) -> pl.Expr:
    keep = where if where is not None else pl.lit(True)
    field = pl.col(aggregation.field) if aggregation.field else None
    exact = aggregation_of(aggregation).exact_polars(aggregation, field, keep)
    return exact.cast(pl.Float64).alias(metric_name)


def oracle(plan: Plan, rollup: RollupPlan, grain: str, events: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Every metric of ``rollup`` at ``grain`` from normalized ``events``, by brute force.

    ``events`` has the stream's fields with a UTC ``timestamp``-typed time column; events
    outside the accepted lateness window at ``now`` are left out, as the flow does.
    """
    stream = plan.stream(rollup.stream)
    ts = pl.col(stream.time)
    now_ms = int(now.timestamp() * 1000)
    accepted = events.filter(
        (ts.dt.epoch("ms") >= now_ms - stream.max_lateness_seconds * 1000)
        & (ts.dt.epoch("ms") <= now_ms + stream.max_future_seconds * 1000)
    )
    step = GRAINS[grain]
    bucket = ((ts.dt.epoch("s") // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    metrics = {m.name: m for m in plan.definitions.metrics}
    exprs = []
    for name in dict.fromkeys(p.metric for p in rollup.parts):
        m = metrics[name]
        assert m.aggregation is not None
        exprs.append(_oracle_expr(name, m.aggregation, to_polars(m.where) if m.where is not None else None))
    keys = ["bucket", *rollup.dims]
    return accepted.with_columns(bucket, *(pl.col(d).fill_null("") for d in rollup.dims)).group_by(keys).agg(exprs).sort(keys)


def oracle_query(
    plan: Plan,
    metrics: Sequence[str],
    grain: str,
    events: pl.DataFrame,
    now: datetime,
    *,
    by: Sequence[str] = (),
    where: Expr | None = None,
) -> pl.DataFrame:
    """What a metric query should return (without gap filling), by brute force over raw events."""
    stream = next(iter(plan.streams))
    ts = pl.col(stream.time)
    epoch = ts.dt.epoch("ms")
    now_ms = int(now.timestamp() * 1000)
    keep = (epoch >= now_ms - stream.max_lateness_seconds * 1000) & (epoch <= now_ms + stream.max_future_seconds * 1000)
    if where is not None:
        keep = keep & to_polars(where)
    step = GRAINS[grain]
    bucket = ((ts.dt.epoch("s") // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    found = [plan.definitions.metric(m) for m in metrics]
    stored = list(dict.fromkeys(b for m in found for b in m.base_metrics()))
    exprs = []
    for m in stored:
        assert m.aggregation is not None
        exprs.append(_oracle_expr(m.name, m.aggregation, to_polars(m.where) if m.where is not None else None))
    keys = ["bucket", *by]
    frame = events.filter(keep).with_columns(bucket, *(pl.col(d).fill_null("") for d in by)).group_by(keys).agg(exprs)
    from rta.query.metric_query import formula_expr

    frame = frame.with_columns(formula_expr(m).alias(m.name) for m in found if m.formula is not None)
    return frame.select(*keys, *metrics).sort(keys)
