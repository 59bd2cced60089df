"""Vectorized partial aggregates: one row per (minute, dimensions) of a batch, per rollup."""

from __future__ import annotations

import polars as pl

from rta.compiler.plan import Part, RollupPlan
from rta.flows.filters import to_polars

MINUTE = "minute"


def _part_expr(part: Part) -> pl.Expr:
    cond = to_polars(part.where) if part.where is not None else None
    field = pl.col(part.field) if part.field else None
    if part.flow_op == "rows":
        counted = pl.len() if cond is None else cond.sum()
        return counted.cast(pl.UInt64).alias(part.column)
    assert field is not None  # every other operation reads a field
    present = field.is_not_null() if cond is None else cond & field.is_not_null()
    if part.flow_op == "present":
        return present.sum().cast(pl.UInt64).alias(part.column)
    chosen = field.filter(present)
    match part.flow_op:
        case "sum":
            return chosen.sum().cast(pl.Float64).alias(part.column)
        case "min":
            return chosen.min().cast(pl.Float64).alias(part.column)
        case "max":
            return chosen.max().cast(pl.Float64).alias(part.column)
        case "unique":
            return chosen.unique().alias(part.column)
        case "values":
            return chosen.cast(pl.Float64).alias(part.column)
    msg = f"unknown flow operation {part.flow_op!r} for {part.column!r}"
    raise ValueError(msg)


_MERGE = {
    "rows": lambda c: c.sum(),
    "present": lambda c: c.sum(),
    "sum": lambda c: c.sum(),
    "min": lambda c: c.min(),
    "max": lambda c: c.max(),
    "unique": lambda c: c.explode().drop_nulls().unique(),
    "values": lambda c: c.explode().drop_nulls(),
}


def merge_partials(rollup: RollupPlan, frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Partials of several batches merged into one row per (minute, dimensions): same totals, fewer rows."""
    if len(frames) == 1:
        return frames[0]
    merged = pl.concat(frames, how="vertical").group_by([MINUTE, *rollup.dims])
    return merged.agg([_MERGE[p.flow_op](pl.col(p.column)).alias(p.column) for p in rollup.parts])


def partials(rollup: RollupPlan, events: pl.DataFrame) -> pl.DataFrame:
    """Partial aggregates of ``events`` (normalized, with a ``minute`` column) for ``rollup``.

    Only groups with at least one event exist; every part merges exactly in ClickHouse.
    """
    keys = [MINUTE, *rollup.dims]
    return events.group_by(keys).agg([_part_expr(p) for p in rollup.parts])
