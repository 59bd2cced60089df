"""Pick the table that answers a metric exactly: right parts, dimensions, grain and retention.

When no rollup does (a dimension no rollup keeps, an undeclared property, a person trait, a
comparison on a measure), the stream's raw events answer, within their retention
(docs/architecture.md, "Raw-events fallback"); beyond it, the error says which rollup to add.
"""

from __future__ import annotations

from dataclasses import dataclass

from rta.compiler.plan import GrainTable, Plan, RollupPlan, StreamPlan
from rta.dsl.durations import GRAINS
from rta.errors import QueryError
from rta.query.raw_columns import is_raw_only

# grain="auto": the finest grain that keeps a chart readable for the range (at most ~360 points
# for minutes, ~200 for hours); coarser when the metric has no table at that grain.
AUTO_GRAIN_UP_TO = (("1m", 6 * 3600), ("1h", 8 * 86400), ("1d", None))


@dataclass(frozen=True, slots=True)
class Choice:
    """The rollup and grain table chosen for one stored metric."""

    rollup: RollupPlan
    table: GrainTable


@dataclass(frozen=True, slots=True)
class RawChoice:
    """A stream's raw events, answering stored metrics no rollup answers exactly."""

    stream: StreamPlan

    @property
    def table(self) -> str:
        """The raw-events table."""
        assert self.stream.raw_table is not None
        return self.stream.raw_table


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


def _raw(plan: Plan, metric: str, age: int) -> RawChoice | None:
    """The metric's stream's raw events, when they are kept and still hold data ``age`` seconds old."""
    stream = plan.definitions.metric(metric).stream
    found = plan.stream(stream.name) if stream is not None else None
    if found is None or found.raw_table is None or found.raw_ttl_seconds is None or age > found.raw_ttl_seconds:
        return None
    return RawChoice(found)


def route(plan: Plan, metric: str, grain: str, dims: set[str], age: int = 0) -> Choice | RawChoice:
    """The rollup table :func:`choose` picks, else the raw events of the metric's stream (within their retention)."""
    if _candidates(plan, metric, grain, dims, age):
        return choose(plan, metric, grain, dims, age)
    raw = _raw(plan, metric, age)
    if raw is not None:
        return raw
    try:
        return choose(plan, metric, grain, dims, age)
    except QueryError as err:
        raise QueryError(f"{err}; {_beyond_raw(plan, metric, dims, age)}") from None


def _beyond_raw(plan: Plan, metric: str, dims: set[str], age: int) -> str:
    """Why raw events cannot answer either, and what to add."""
    stream = plan.definitions.metric(metric).stream
    found = plan.stream(stream.name) if stream is not None else None
    if found is None or found.raw_table is None or found.raw_ttl_seconds is None:
        where = f"stream {found.name!r} keeps" if found is not None else "it has"
        why = f"{where} no raw events to fall back on (declare the stream with keep_raw='30d')"
    else:
        why = f"raw events of {found.name!r} are kept {_age(found.raw_ttl_seconds)} and this range starts {_age(age)} ago"
    measures = set(found.measures) if found is not None else set()
    undeclared = sorted(d for d in dims if is_raw_only(d) or d in measures)
    if undeclared:
        keep = "declare a property a dimension and add it to a rollup to keep it longer"
        return f"{why}; only raw events answer by {', '.join(undeclared)} ({keep})"
    if any(dims <= set(r.dims) for r in plan.rollups if r.metric_parts(metric)):
        return why  # a rollup has the dimensions: its grains and retention are the limit (see above)
    name = "_".join(("by", *sorted(dims))) if dims else "overall"
    return f'{why}; add rollup("{name}", [{metric}], by={sorted(dims)!r}) to keep the answer'


def why_raw(plan: Plan, metric: str, grain: str, dims: set[str], age: int) -> str:
    """Why no rollup answers ``metric``, for explanations: what is missing, the first kind found."""
    holders = [r for r in plan.rollups if r.metric_parts(metric)]
    if not holders:
        return f"no rollup holds {metric}"
    missing = [name for name in sorted(dims) if not any(name in r.dims for r in holders)]
    if missing:
        return f"no rollup of {metric} splits or filters by {', '.join(missing)}"
    if not any(dims <= set(r.dims) for r in holders):
        return f"no one rollup of {metric} has all of {', '.join(sorted(dims))}"
    return f"no rollup of {metric} by {', '.join(sorted(dims)) or 'nothing'} keeps grain {grain} for data {_age(age)} old"


def _age(seconds: int) -> str:
    return f"{seconds // 86400}d" if seconds >= 86400 else f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds // 60}m"


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
    if all(_candidates(plan, m, preferred, dims, age) or _raw(plan, m, age) for m in metrics):
        return preferred  # raw events answer at any grain
    return "1d"  # choose() then explains what is missing
