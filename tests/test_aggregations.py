"""One record per aggregation: every DSL node has one, the flow finds its operations, versions stay put."""

from __future__ import annotations

import inspect

import polars as pl
import pytest

from rta import col
from rta.compiler import aggregations
from rta.compiler.aggregations import AGGREGATIONS, FLOW_OPS, aggregation_of, parts_of, stored_as
from rta.dsl import aggregates as agg
from rta.dsl import expr as ex
from rta.errors import CompilationError, UnsupportedAggregation, UnsupportedFilter

pytestmark = pytest.mark.core

NODES = [c for _, c in inspect.getmembers(agg, inspect.isclass) if issubclass(c, agg.Aggregation) and c is not agg.Aggregation]
EXAMPLES = [agg.count(), agg.total("x"), agg.minimum("x"), agg.maximum("x"), agg.average("x"), agg.distinct("x"), agg.quantile("x", 0.9)]


def test_every_dsl_aggregation_has_a_record() -> None:
    assert set(NODES) == set(AGGREGATIONS) == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("node", EXAMPLES, ids=lambda n: type(n).__name__)
def test_parts_use_flow_operations_the_flow_finds_and_read_back(node: agg.Aggregation) -> None:
    parts = parts_of(node)
    assert all(FLOW_OPS[op].name == op for _, op in parts)
    assert stored_as([kind for kind, _ in parts]) is aggregation_of(node)


def test_the_record_a_part_names_is_not_part_of_its_version() -> None:
    """Rollup versions hash the parts' reprs: the back reference must not change them (nor the tables' names)."""
    kind, _ = parts_of(agg.average("x"))[1]
    assert kind == aggregations.COUNT_PART and "aggregation" not in repr(kind)


@pytest.mark.parametrize("node", [n for n in EXAMPLES if not isinstance(n, agg.Distinct | agg.Quantile)], ids=lambda n: type(n).__name__)
def test_merged_partials_give_the_exact_value(node: agg.Aggregation) -> None:
    """Partials of two batches, merged as the flow merges them, give what the oracle computes at once."""
    frame = pl.DataFrame({"g": [1, 1, 1, 1, 2], "x": [3.0, None, 5.0, 1.0, 7.0], "e": ["a", "a", "b", "a", "a"]})
    keep = ex.Compare("e", "==", "a")
    from rta.flows.filters import to_polars

    record = aggregation_of(node)
    field = pl.col("x") if node.field else None

    def partial(batch: pl.DataFrame) -> pl.DataFrame:
        return batch.group_by("g").agg(op.partial(field, to_polars(keep)).alias(kind.suffix) for kind, op in record.parts(node))

    halves = pl.concat([partial(frame[:2]), partial(frame[2:])])
    merged = halves.group_by("g").agg(op.merge(pl.col(kind.suffix)) for kind, op in record.parts(node)).sort("g")
    columns = [kind.suffix for kind, _ in record.parts(node)]
    values = [v[0] if len(v) == 1 else v[0] / v[1] for v in merged.select(columns).rows()]
    exact = frame.group_by("g").agg(record.exact_polars(node, field, to_polars(keep)).cast(pl.Float64).alias("v")).sort("g")
    assert values == exact["v"].to_list()


def test_an_unknown_aggregation_says_which_are_known() -> None:
    class Median(agg.Aggregation):
        pass

    with pytest.raises(UnsupportedAggregation, match=r"no record for aggregation 'Median'.*known aggregations are: Avg, Count"):
        parts_of(Median("x"))


def test_parts_not_built_by_parts_of_are_refused() -> None:
    with pytest.raises(CompilationError, match=r"name no single aggregation"):
        stored_as([aggregations.SUM_PART, aggregations.COUNT_PART])


def test_an_unknown_filter_node_has_its_own_error() -> None:
    from rta.compiler.sql_filter import Params, filter_sql
    from rta.flows.filters import to_polars

    class Like(ex.Expr):
        def fields(self) -> frozenset[str]:
            return frozenset({"e"})

    with pytest.raises(UnsupportedFilter, match=r"no ClickHouse translation for filter node 'Like'; filters are built from col"):
        filter_sql(Like(), Params())
    with pytest.raises(UnsupportedFilter, match=r"no Polars translation for filter node 'Like'"):
        to_polars(Like() & (col("e") == "a"))
