"""One record per aggregation: everything each layer needs to store, compute, merge and check it.

An aggregation is stored as one or more *parts*: the flow computes each part per (minute,
dimensions) with Polars, a Null-engine input table receives them, materialized views turn them
into ClickHouse states per grain and queries merge the states. Its record (:class:`AggregationKind`)
holds a row for each layer, as Ibis keeps an op table per backend:

- the compiler: its parts (:class:`PartKind`: columns, state and merge functions), each with the
  flow operation (:class:`FlowOp`: the Polars partial and the Polars merge of partials);
- queries: the value from the merged parts, how buckets combine over a range, whether an empty
  bucket means zero;
- ad-hoc queries over raw events: the exact ClickHouse aggregate;
- the test oracle: the exact Polars expression.

Adding an aggregation is one record in ``AGGREGATIONS`` (with its node in ``rta/dsl/aggregates.py``)
and the golden files; a new flow operation also goes in ``FLOW_OPS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import polars as pl
import sqlglot.expressions as exp

from rta.dsl import aggregates as agg
from rta.errors import CompilationError, UnsupportedAggregation

# uniqCombined64 at precision 12: small fixed-size state, ~1% error, and stable hashing
# across versions (docs/architecture.md, "Mergeable, small sketches": the default `uniq` state made 7-day queries take seconds).
UNIQ = "uniqCombined64"
UNIQ_PRECISION = 12
DIGEST = "digest"

A = TypeVar("A", bound=agg.Aggregation)


@dataclass(frozen=True, slots=True)
class PartKind:
    """How one kind of part is stored and merged in ClickHouse.

    Its repr is part of a rollup's version (the hash naming its tables), so ``aggregation``, the
    record that reads the part back, is left out of repr and equality: it names no stored column.
    """

    suffix: str
    partial_type: str  # column type in the Null input table
    state_type: str  # column type in the rollup tables
    to_state: str  # aggregate function the materialized views apply
    merge: str  # aggregate function queries apply
    params: tuple[float, ...] = ()  # parameters of to_state / merge
    aggregation: str = dataclasses.field(default="", repr=False, compare=False)  # the node's class name, set by parts_of


COUNT_PART = PartKind("n", "UInt64", "SimpleAggregateFunction(sum, UInt64)", "sum", "sum")
SUM_PART = PartKind("sum", "Float64", "SimpleAggregateFunction(sum, Float64)", "sum", "sum")
MIN_PART = PartKind("min", "Nullable(Float64)", "SimpleAggregateFunction(min, Nullable(Float64))", "min", "min")
MAX_PART = PartKind("max", "Nullable(Float64)", "SimpleAggregateFunction(max, Nullable(Float64))", "max", "max")
UNIQ_PART = PartKind(
    "uniq",
    "Array(String)",
    f"AggregateFunction({UNIQ}({UNIQ_PRECISION}), String)",
    f"{UNIQ}ArrayState",
    f"{UNIQ}Merge",
    (UNIQ_PRECISION,),
)
SKETCHES = frozenset({UNIQ_PART.suffix, DIGEST})  # parts whose states are costly to merge


def digest_part(q: float) -> PartKind:
    """A t-digest part for quantile ``q``."""
    return PartKind(
        DIGEST,
        "Array(Float64)",
        f"AggregateFunction(quantileTDigest({q!r}), Float64)",
        "quantileTDigestArrayState",
        "quantileTDigestMerge",
        (q,),
    )


Partial = Callable[[pl.Expr | None, pl.Expr | None], pl.Expr]  # (field, filter or None) -> one value per group


@dataclass(frozen=True, slots=True)
class FlowOp:
    """What the flow computes for a part per batch group, and how partials of several batches merge."""

    name: str  # shown in the plan, and part of the rollup's version
    partial: Partial
    merge: Callable[[pl.Expr], pl.Expr]
    shown: str = "{name}({field})"  # how `rta compile` prints it

    def show(self, field: str | None) -> str:
        """The operation as the printed plan shows it, e.g. ``sum(revenue)``."""
        return self.shown.format(name=self.name, field=field)


def _present(field: pl.Expr | None, keep: pl.Expr | None) -> pl.Expr:
    """Rows passing the filter whose field is not null (SQL's aggregates skip nulls too)."""
    assert field is not None  # only counting rows reads no field
    return field.is_not_null() if keep is None else keep & field.is_not_null()


def _chosen(field: pl.Expr | None, keep: pl.Expr | None) -> pl.Expr:
    assert field is not None
    return field.filter(_present(field, keep))


ROWS = FlowOp("rows", lambda f, keep: (pl.len() if keep is None else keep.sum()).cast(pl.UInt64), pl.Expr.sum, "count()")
PRESENT = FlowOp("present", lambda f, keep: _present(f, keep).sum().cast(pl.UInt64), pl.Expr.sum, "count({field})")
SUM = FlowOp("sum", lambda f, keep: _chosen(f, keep).sum().cast(pl.Float64), pl.Expr.sum)
MIN = FlowOp("min", lambda f, keep: _chosen(f, keep).min().cast(pl.Float64), pl.Expr.min)
MAX = FlowOp("max", lambda f, keep: _chosen(f, keep).max().cast(pl.Float64), pl.Expr.max)
UNIQUE = FlowOp("unique", lambda f, keep: _chosen(f, keep).unique(), lambda c: c.explode().drop_nulls().unique())
VALUES = FlowOp("values", lambda f, keep: _chosen(f, keep).cast(pl.Float64), lambda c: c.explode().drop_nulls())
FLOW_OPS: dict[str, FlowOp] = {op.name: op for op in (ROWS, PRESENT, SUM, MIN, MAX, UNIQUE, VALUES)}


@dataclass(frozen=True, slots=True)
class RangeTotal:
    """How a metric's bucket values combine into one value for a range, in SQL and in Polars."""

    sql: str  # an aggregate (and window) function of ClickHouse
    polars: Callable[[pl.Expr], pl.Expr]


SUM_OVER_RANGE = RangeTotal("sum", pl.Expr.sum)
MIN_OVER_RANGE = RangeTotal("min", pl.Expr.min)
MAX_OVER_RANGE = RangeTotal("max", pl.Expr.max)


def _only(merged: Sequence[exp.Expr]) -> exp.Expr:
    (value,) = merged
    return value


def _mean(merged: Sequence[exp.Expr]) -> exp.Expr:
    total, count = merged
    return exp.Div(this=total, expression=exp.func("nullIf", count, exp.Literal.number(0)))


def _kept(field: pl.Expr | None, keep: pl.Expr) -> pl.Expr:
    assert field is not None
    return field.filter(keep & field.is_not_null())


def _sketch(part: PartKind, field: exp.Expr | None) -> exp.Expr:
    """The part's own aggregate over raw values (``uniqCombined64(12)(x)``): what merging its states gives."""
    name = part.merge.removesuffix("Merge")
    return exp.ParameterizedAgg(this=name, expressions=[exp.Literal.number(p) for p in part.params], params=[field])


@dataclass(frozen=True, slots=True)
class AggregationKind(Generic[A]):
    """Everything about one aggregation node, one field per layer that needs it."""

    node: type[A]
    #: Its stored parts, in order, each with the flow operation computing it.
    parts: Callable[[A], tuple[tuple[PartKind, FlowOp], ...]]
    #: Empty buckets mean zero (counts, totals, distinct counts), not "no value" (min, max, means, quantiles).
    zero_when_empty: bool
    #: How bucket values combine over a range, or None when they do not (distinct counts, means,
    #: quantiles rank and alert by merging the whole range's states instead).
    range_total: RangeTotal | None
    #: The exact aggregate over raw events (ad-hoc queries): the field's column, None for count().
    exact_sql: Callable[[A, exp.Expr | None], exp.Expr]
    #: The exact Polars aggregate (the oracle): the field (None for count()) and the metric's filter.
    exact_polars: Callable[[A, pl.Expr | None, pl.Expr], pl.Expr]
    #: The metric's value from its parts' merged states, in the order of ``parts``.
    value: Callable[[Sequence[exp.Expr]], exp.Expr] = _only
    #: The aggregate over raw events that answers as the merged parts do (the planner's raw-events
    #: fallback): the same sketch where the parts keep one, else None for ``exact_sql``.
    sketch_sql: Callable[[A, exp.Expr | None], exp.Expr] | None = None
    #: Its values are whole numbers (counts, distinct counts): answered as integers, never 17.0.
    integral: bool = False


AGGREGATIONS: dict[type[agg.Aggregation], AggregationKind[Any]] = {
    a.node: a
    for a in (
        AggregationKind(
            agg.Count,
            parts=lambda _: ((COUNT_PART, ROWS),),
            zero_when_empty=True,
            range_total=SUM_OVER_RANGE,
            exact_sql=lambda _, field: exp.func("count"),
            exact_polars=lambda _, field, keep: keep.sum(),
            integral=True,
        ),
        AggregationKind(
            agg.Sum,
            parts=lambda _: ((SUM_PART, SUM),),
            zero_when_empty=True,
            range_total=SUM_OVER_RANGE,
            exact_sql=lambda _, field: exp.func("sum", field),
            exact_polars=lambda _, field, keep: _kept(field, keep).sum(),
        ),
        AggregationKind(
            agg.Min,
            parts=lambda _: ((MIN_PART, MIN),),
            zero_when_empty=False,
            range_total=MIN_OVER_RANGE,
            exact_sql=lambda _, field: exp.func("min", field),
            exact_polars=lambda _, field, keep: _kept(field, keep).min(),
        ),
        AggregationKind(
            agg.Max,
            parts=lambda _: ((MAX_PART, MAX),),
            zero_when_empty=False,
            range_total=MAX_OVER_RANGE,
            exact_sql=lambda _, field: exp.func("max", field),
            exact_polars=lambda _, field, keep: _kept(field, keep).max(),
        ),
        AggregationKind(
            agg.Avg,  # stored as sum and count so it merges exactly: never a mean of means
            parts=lambda _: ((SUM_PART, SUM), (COUNT_PART, PRESENT)),
            zero_when_empty=False,
            range_total=None,
            exact_sql=lambda _, field: exp.func("avg", field),
            exact_polars=lambda _, field, keep: _kept(field, keep).mean(),
            value=_mean,
        ),
        AggregationKind(
            agg.Distinct,
            parts=lambda _: ((UNIQ_PART, UNIQUE),),
            zero_when_empty=True,
            range_total=None,
            exact_sql=lambda _, field: exp.func("uniqExact", field),
            exact_polars=lambda _, field, keep: _kept(field, keep).n_unique(),
            integral=True,
            sketch_sql=lambda _, field: _sketch(UNIQ_PART, field),
        ),
        AggregationKind(
            agg.Quantile,
            parts=lambda a: ((digest_part(a.q), VALUES),),
            zero_when_empty=False,
            range_total=None,
            exact_sql=lambda a, field: exp.ParameterizedAgg(this="quantileExact", expressions=[exp.Literal.number(a.q)], params=[field]),
            exact_polars=lambda a, field, keep: _kept(field, keep).quantile(a.q, interpolation="linear"),
            sketch_sql=lambda a, field: _sketch(digest_part(a.q), field),
        ),
    )
}
_BY_NAME = {node.__name__: a for node, a in AGGREGATIONS.items()}


def raw_sql(node: agg.Aggregation, field: exp.Expr | None) -> exp.Expr:
    """The aggregate over raw events answering as ``node``'s rollup parts do: the same sketch, else exact.

    >>> from rta.dsl.aggregates import distinct
    >>> raw_sql(distinct("user_id"), exp.column("user_id")).sql("clickhouse")
    'uniqCombined64(12)(user_id)'
    """
    record = aggregation_of(node)
    return (record.sketch_sql or record.exact_sql)(node, field)


def aggregation_of(node: agg.Aggregation) -> AggregationKind[Any]:
    """The record of an aggregation node.

    >>> from rta.dsl.aggregates import average
    >>> a = aggregation_of(average("load_ms"))
    >>> [(kind.suffix, op.name) for kind, op in a.parts(average("load_ms"))], a.zero_when_empty, a.range_total
    ([('sum', 'sum'), ('n', 'present')], False, None)
    >>> a.exact_sql(average("load_ms"), exp.column("load_ms")).sql("clickhouse")
    'AVG(load_ms)'
    """
    for cls in type(node).__mro__:
        if cls in AGGREGATIONS:
            return AGGREGATIONS[cls]
    known = ", ".join(sorted(_BY_NAME))
    msg = f"no record for aggregation {type(node).__name__!r} in rta/compiler/aggregations.py; known aggregations are: {known}"
    raise UnsupportedAggregation(msg)


def parts_of(node: agg.Aggregation) -> tuple[tuple[PartKind, str], ...]:
    """The parts ``node`` is stored as, each with the name of its flow operation (see ``FLOW_OPS``).

    >>> from rta.dsl.aggregates import quantile
    >>> [(kind.suffix, kind.state_type, op) for kind, op in parts_of(quantile("load_ms", 0.95))]
    [('digest', 'AggregateFunction(quantileTDigest(0.95), Float64)', 'values')]
    """
    record = aggregation_of(node)
    parts = []
    for kind, op in record.parts(node):
        if FLOW_OPS.get(op.name) is not op:
            msg = f"flow operation {op.name!r} of {type(node).__name__} is not in FLOW_OPS; add it there so the flow finds it"
            raise CompilationError(msg)
        parts.append((replace(kind, aggregation=record.node.__name__), op.name))
    return tuple(parts)


def stored_as(kinds: Sequence[PartKind]) -> AggregationKind[Any]:
    """The record that reads back a metric stored as these parts (from :func:`parts_of`)."""
    names = {k.aggregation for k in kinds}
    if len(names) != 1 or not names <= _BY_NAME.keys():
        msg = f"parts {[k.suffix for k in kinds]!r} name no single aggregation (got {sorted(names)!r}); build them with parts_of()"
        raise CompilationError(msg)
    return _BY_NAME[names.pop()]


def flow_op(name: str) -> FlowOp:
    """The flow operation of a part, by the name the plan keeps."""
    if name not in FLOW_OPS:
        msg = f"unknown flow operation {name!r}; valid operations are: {', '.join(FLOW_OPS)}"
        raise CompilationError(msg)
    return FLOW_OPS[name]
