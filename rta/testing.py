"""Test helpers for analysts and for rta itself: a source of frames and a brute-force oracle.

The oracle recomputes every metric of a rollup from raw events with plain Polars, the slow
obvious way, so rollups read back from the store can be compared with it. Its filters are judged
row by row in Python (:func:`holds`), not by the flow's Polars translation it checks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from rta.compiler.aggregations import aggregation_of
from rta.compiler.plan import Plan, RollupPlan
from rta.dsl import aggregates as agg
from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS
from rta.dsl.expr import Expr
from rta.flows.frames import BatchSource as BatchSource  # the sources moved to the flow; tests import them here too
from rta.flows.frames import frame_batches as frame_batches

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def holds(node: Expr, row: Mapping[str, Any]) -> bool | None:
    """Whether ``node`` holds for one event: True, False, or None when a missing value leaves it unknown.

    SQL's three-valued logic, spelled out: a leaf on a missing value is unknown, ``~`` keeps it
    unknown, ``&`` is false if either side is, ``|`` true if either side is.

    >>> holds(~(ex.col("revenue") > 10), {"revenue": None}) is None
    True
    """
    match node:
        case ex.IsNull(field=f):
            return row.get(f) is None
        case ex.And(left=a, right=b):
            left, right = holds(a, row), holds(b, row)
            return False if False in (left, right) else None if None in (left, right) else True
        case ex.Or(left=a, right=b):
            left, right = holds(a, row), holds(b, row)
            return True if True in (left, right) else None if None in (left, right) else False
        case ex.Not(operand=o):
            inner = holds(o, row)
            return None if inner is None else not inner
    value = row.get(getattr(node, "field", ""))
    if value is None:
        return None
    match node:
        case ex.Compare(op=op, value=v):
            return _ORDER[op](value, v)
        case ex.IsIn(values=vs):
            return value in vs
        case ex.Between(low=lo, high=hi):
            return lo <= value <= hi
        case ex.TextMatch(op="contains", text=t):
            return t in value
        case ex.TextMatch(op="startswith", text=t):
            return value.startswith(t)
        case ex.TextMatch(op="endswith", text=t):
            return value.endswith(t)
    raise TypeError(f"the oracle has no rule for filter node {type(node).__name__}")


def filter_mask(node: Expr, events: pl.DataFrame) -> pl.Series:
    """One boolean per event: whether ``node`` holds (unknown counts as not)."""
    rows = events.select(sorted(node.fields())).iter_rows(named=True)
    return pl.Series([holds(node, row) is True for row in rows], dtype=pl.Boolean)


def _with_masks(events: pl.DataFrame, wheres: Mapping[str, Expr | None]) -> pl.DataFrame:
    return events.with_columns(filter_mask(w, events).alias(f"__where_{name}") for name, w in wheres.items() if w is not None)


def _keep(name: str, where: Expr | None) -> pl.Expr | None:
    return pl.col(f"__where_{name}") if where is not None else None


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
    names = list(dict.fromkeys(p.metric for p in rollup.parts))
    accepted = _with_masks(accepted, {name: metrics[name].where for name in names})
    exprs = []
    for name in names:
        m = metrics[name]
        assert m.aggregation is not None
        exprs.append(_oracle_expr(name, m.aggregation, _keep(name, m.where)))
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
        keep = keep & pl.lit(filter_mask(where, events))
    step = GRAINS[grain]
    bucket = ((ts.dt.epoch("s") // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    found = [plan.definitions.metric(m) for m in metrics]
    stored = list(dict.fromkeys(b for m in found for b in m.base_metrics()))
    events = _with_masks(events, {m.name: m.where for m in stored})
    exprs = []
    for m in stored:
        assert m.aggregation is not None
        exprs.append(_oracle_expr(m.name, m.aggregation, _keep(m.name, m.where)))
    keys = ["bucket", *by]
    # Declared dimensions hold '' for a missing value; an undeclared property or a trait stays missing (a group of its own).
    declared = [d for d in by if not d.startswith(("prop.", "person."))]
    frame = events.filter(keep).with_columns(bucket, *(pl.col(d).fill_null("") for d in declared)).group_by(keys).agg(exprs)
    from rta.query.metric_query import formula_expr

    frame = frame.with_columns(formula_expr(m).alias(m.name) for m in found if m.formula is not None)
    return frame.select(*keys, *metrics).sort(keys)
