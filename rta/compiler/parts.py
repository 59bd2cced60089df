"""Lookup tables from aggregations to the partial columns the flow computes and the states
ClickHouse keeps.

A metric is stored as one or more *parts*. The flow computes each part per (minute,
dimensions) with Polars; a Null-engine input table receives the parts and materialized
views turn them into states per grain; queries merge the states.
"""

from __future__ import annotations

from dataclasses import dataclass

from rta.dsl import aggregates as agg
from rta.errors import UnsupportedAggregation

# uniqCombined64 at precision 12: small fixed-size state, ~1% error, and stable hashing
# across versions (DESIGN §4: the default `uniq` state made 7-day queries take seconds).
UNIQ = "uniqCombined64"
UNIQ_PRECISION = 12


@dataclass(frozen=True, slots=True)
class PartKind:
    """How one kind of part is computed, stored and merged."""

    suffix: str
    partial_type: str  # column type in the Null input table
    state_type: str  # column type in the rollup tables
    to_state: str  # aggregate function the materialized views apply
    merge: str  # aggregate function queries apply
    params: tuple[float, ...] = ()  # parameters of to_state / merge


COUNT = PartKind("n", "UInt64", "SimpleAggregateFunction(sum, UInt64)", "sum", "sum")
SUM = PartKind("sum", "Float64", "SimpleAggregateFunction(sum, Float64)", "sum", "sum")
MIN = PartKind("min", "Nullable(Float64)", "SimpleAggregateFunction(min, Nullable(Float64))", "min", "min")
MAX = PartKind("max", "Nullable(Float64)", "SimpleAggregateFunction(max, Nullable(Float64))", "max", "max")
UNIQUE = PartKind(
    "uniq",
    "Array(String)",
    f"AggregateFunction({UNIQ}({UNIQ_PRECISION}), String)",
    f"{UNIQ}ArrayState",
    f"{UNIQ}Merge",
    (UNIQ_PRECISION,),
)


def digest(q: float) -> PartKind:
    """A t-digest part for quantile ``q``."""
    return PartKind(
        "digest",
        "Array(Float64)",
        f"AggregateFunction(quantileTDigest({q!r}), Float64)",
        "quantileTDigestArrayState",
        "quantileTDigestMerge",
        (q,),
    )


#: What the flow computes for each part: "rows" counts rows passing the filter, "present"
#: counts rows whose field is not null, the rest apply to the field's values.
FLOW_OP: dict[str, str] = {"n": "rows", "sum": "sum", "min": "min", "max": "max", "uniq": "unique", "digest": "values"}


def parts_of(aggregation: agg.Aggregation) -> tuple[tuple[PartKind, str], ...]:
    """The parts an aggregation is stored as, each with its flow operation."""
    match aggregation:
        case agg.Count():
            return ((COUNT, "rows"),)
        case agg.Sum():
            return ((SUM, "sum"),)
        case agg.Avg():
            return ((SUM, "sum"), (COUNT, "present"))
        case agg.Min():
            return ((MIN, "min"),)
        case agg.Max():
            return ((MAX, "max"),)
        case agg.Distinct():
            return ((UNIQUE, "unique"),)
        case agg.Quantile(q=q):
            return ((digest(q), "values"),)
    msg = f"no ClickHouse translation for {type(aggregation).__name__!r}"
    raise UnsupportedAggregation(msg)
