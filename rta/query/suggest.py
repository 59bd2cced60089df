"""Rollup suggestions: which filter combinations a project's rollups cannot answer, or answer slowly.

Dashboards let viewers filter by a few dimensions, alone or two at a time. Every stored metric
must have a rollup keyed by those dimensions, and distinct counts should have a *narrow* one
(merging sketches from a wide rollup is what makes them slow, docs/architecture.md, "Mergeable, small sketches").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rta.compiler.plan import Plan
from rta.dsl import aggregates as agg
from rta.errors import QueryError, did_you_mean

# A distinct count read from a rollup with this many more dimensions than asked merges too many sketches.
WIDE_FOR_DISTINCT = 1


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A rollup to add, and why."""

    metrics: tuple[str, ...]
    by: tuple[str, ...]
    reason: str

    def code(self) -> str:
        """The DSL line that adds it."""
        name = "_".join(("by", *self.by)) if self.by else "overall"
        return f'rollup("{name}", [{", ".join(self.metrics)}], by={list(self.by)!r})'


def suggest_rollups(plan: Plan, filters: Sequence[str], *, together: int = 2) -> list[Suggestion]:
    """Rollups to add so every metric answers for each combination of up to ``together`` filters."""
    dims = {d for s in plan.streams for d in s.dims}
    for name in filters:
        if name not in dims:
            msg = f"dashboard filter {name!r} is not a dimension; {did_you_mean(name, sorted(dims))}"
            raise QueryError(msg)
    combos = [()] + [c for n in range(1, together + 1) for c in itertools.combinations(sorted(set(filters)), n)]
    wanted: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for metric in plan.definitions.metrics:
        if metric.is_derived:
            continue
        distinct = isinstance(metric.aggregation, agg.Distinct)
        holders = [r for r in plan.rollups if r.metric_parts(metric.name)]
        for combo in combos:
            fitting = [r for r in holders if set(combo) <= set(r.dims)]
            if not fitting:
                wanted.setdefault(combo, ([], []))[0].append(metric.name)
            elif distinct and min(len(r.dims) for r in fitting) - len(combo) > WIDE_FOR_DISTINCT:
                wanted.setdefault(combo, ([], []))[1].append(metric.name)
    suggestions = []
    for combo, (missing, slow) in wanted.items():
        if missing:
            suggestions.append(
                Suggestion(tuple(missing), combo, f"no rollup answers {', '.join(missing)} filtered by {', '.join(combo) or 'nothing'}")
            )
        if slow:
            suggestions.append(Suggestion(tuple(slow), combo, f"distinct counts {', '.join(slow)} would merge sketches from a wide rollup"))
    return suggestions
