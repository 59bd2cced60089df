"""Vectorized partial aggregates: one row per (minute, dimensions) of a batch, per rollup.

What each part computes and how partials merge is its flow operation's
(:data:`rta.compiler.aggregations.FLOW_OPS`).
"""

from __future__ import annotations

import polars as pl

from rta.compiler.aggregations import flow_op
from rta.compiler.plan import Part, RollupPlan
from rta.flows.filters import to_polars

MINUTE = "minute"


def _part_expr(part: Part) -> pl.Expr:
    keep = to_polars(part.where) if part.where is not None else None
    field = pl.col(part.field) if part.field else None
    return flow_op(part.flow_op).partial(field, keep).alias(part.column)


def merge_partials(rollup: RollupPlan, frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Partials of several batches merged into one row per (minute, dimensions): same totals, fewer rows."""
    if len(frames) == 1:
        return frames[0]
    merged = pl.concat(frames, how="vertical").group_by([MINUTE, *rollup.dims])
    return merged.agg([flow_op(p.flow_op).merge(pl.col(p.column)).alias(p.column) for p in rollup.parts])


def partials(rollup: RollupPlan, events: pl.DataFrame) -> pl.DataFrame:
    """Partial aggregates of ``events`` (normalized, with a ``minute`` column) for ``rollup``.

    Only groups with at least one event exist; every part merges exactly in ClickHouse.

    >>> from rta import stream, metric, rollup, average, count
    >>> from rta.compiler import compile
    >>> from rta.dsl import definitions
    >>> events = stream("events", dimensions={"country": str}, measures={"load_ms": float})
    >>> plan = compile(definitions([rollup("r", [metric("n", count(), stream=events),
    ...                                           metric("load", average("load_ms"), stream=events)], by=["country"])]))
    >>> batch = pl.DataFrame({MINUTE: [0, 0, 0], "country": ["DE", "DE", "US"], "load_ms": [10.0, None, 4.0]})
    >>> partials(plan.rollups[0], batch).sort("country").rows()
    [(0, 'DE', 2, 10.0, 1), (0, 'US', 1, 4.0, 1)]
    """
    keys = [MINUTE, *rollup.dims]
    return events.group_by(keys).agg([_part_expr(p) for p in rollup.parts])
