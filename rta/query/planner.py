"""Pick the table that answers a metric exactly: right parts, dimensions, grain and retention."""

from __future__ import annotations

from dataclasses import dataclass

from rta.compiler.plan import GrainTable, Plan, RollupPlan
from rta.dsl.durations import GRAINS
from rta.errors import QueryError

# grain="auto": the finest grain that keeps a chart readable for the range (at most ~360 points
# for minutes, ~200 for hours); coarser when the metric has no table at that grain.
AUTO_GRAIN_UP_TO = (("1m", 6 * 3600), ("1h", 8 * 86400), ("1d", None))


@dataclass(frozen=True, slots=True)
class Choice:
    """The rollup and grain table chosen for one stored metric."""

    rollup: RollupPlan
    table: GrainTable


def _candidates(plan: Plan, metric: str, grain: str, dims: set[str], age: int) -> list[tuple[int, int, Choice]]:
    want = GRAINS[grain]
    found = []
    for rollup in plan.rollups:
        if not rollup.metric_parts(metric) or not dims <= set(rollup.dims):
            continue
        for table in rollup.tables:
            size = GRAINS[table.grain]
            # The table must hold the whole range: minute data beyond its retention falls back to hours.
            if want % size == 0 and age <= table.ttl_seconds + size:
                found.append((-size, len(rollup.dims), Choice(rollup, table)))
    return sorted(found, key=lambda c: (c[0], c[1]))


def choose(plan: Plan, metric: str, grain: str, dims: set[str], age: int = 0) -> Choice:
    """The coarsest table whose grain divides ``grain``, whose rollup has ``dims`` and that keeps
    data ``age`` seconds old; narrow rollups first (distinct counts are cheaper there)."""
    found = _candidates(plan, metric, grain, dims, age)
    if not found:
        holders = []
        for r in plan.rollups:
            if r.metric_parts(metric):
                kept = ", ".join(f"{t.grain} kept {t.ttl_seconds // 86400}d" for t in r.tables)
                holders.append(f"{r.name} (by {', '.join(r.dims) or 'nothing'}; {kept})")
        msg = (
            f"no rollup answers {metric!r} at grain {grain!r} by {sorted(dims) or 'nothing'} for data {age // 86400}d old; "
            f"rollups holding it: {'; '.join(holders)}; add the dimensions or grain to a rollup, or ask for a coarser grain"
        )
        raise QueryError(msg)
    return found[0][2]


def auto_grain(plan: Plan, metrics: list[str], dims: set[str], span: int, age: int) -> str:
    """The grain for ``grain="auto"``: readable for ``span`` seconds, answerable for every metric."""
    preferred = next(g for g, limit in AUTO_GRAIN_UP_TO if limit is None or span <= limit)
    for grain in [g for g in GRAINS if GRAINS[g] >= GRAINS[preferred]]:
        if all(_candidates(plan, m, grain, dims, age) for m in metrics):
            return grain
    return "1d"  # choose() then explains what is missing
