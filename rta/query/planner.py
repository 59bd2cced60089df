"""Pick the table that answers a metric exactly: right parts, dimensions and grain, fewest rows."""

from __future__ import annotations

from dataclasses import dataclass

from rta.compiler.plan import GrainTable, Plan, RollupPlan
from rta.dsl.durations import GRAINS
from rta.errors import QueryError


@dataclass(frozen=True, slots=True)
class Choice:
    """The rollup and grain table chosen for one stored metric."""

    rollup: RollupPlan
    table: GrainTable


def choose(plan: Plan, metric: str, grain: str, dims: set[str]) -> Choice:
    """The coarsest table whose grain divides ``grain`` and whose rollup has ``dims``; narrow rollups first."""
    want = GRAINS[grain]
    candidates: list[tuple[int, int, Choice]] = []
    for rollup in plan.rollups:
        if not rollup.metric_parts(metric) or not dims <= set(rollup.dims):
            continue
        for table in rollup.tables:
            size = GRAINS[table.grain]
            if want % size == 0:
                candidates.append((-size, len(rollup.dims), Choice(rollup, table)))
    if not candidates:
        holders = [
            f"{r.name} (by {', '.join(r.dims) or 'nothing'}; grains {', '.join(t.grain for t in r.tables)})"
            for r in plan.rollups
            if r.metric_parts(metric)
        ]
        msg = (
            f"no rollup answers {metric!r} at grain {grain!r} by {sorted(dims) or 'nothing'}; "
            f"rollups holding it: {'; '.join(holders)}; add the dimensions or grain to a rollup"
        )
        raise QueryError(msg)
    candidates.sort(key=lambda c: (c[0], c[1]))
    return candidates[0][2]
