"""Compare every rollup bucket in the store with the brute-force oracle."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan, RollupPlan
from rta.dsl import aggregates as agg
from rta.query.metric_query import MetricQuery, fetch
from rta.query.planner import Choice
from rta.testing import oracle

# uniqCombined64 at precision 12 keeps 2^12 registers: relative standard error ~1.04/64.
UNIQ_SE = 1.04 / 64


def read_rollup(client: Client, rollup: RollupPlan, grain: str, start: datetime, end: datetime) -> pl.DataFrame:
    table = rollup.table(grain)
    assert table is not None
    q = MetricQuery((), start, end, grain, rollup.dims, fill_gaps=False)
    names = list(dict.fromkeys(p.metric for p in rollup.parts))
    return fetch(client, q, Choice(rollup, table), names)


def _quantile_ok(values: list[float], q: float, got: float) -> bool:
    """The estimate's rank is within 3 standard errors of q (binomial) plus a small digest allowance."""
    if not values:
        return got is None or math.isnan(got)
    ordered = values
    n = len(ordered)
    slack = 3 * math.sqrt(q * (1 - q) / n) + 0.02
    lo = ordered[max(0, math.floor((q - slack) * (n - 1)))]
    hi = ordered[min(n - 1, math.ceil((q + slack) * (n - 1)))]
    return lo - 1e-9 <= got <= hi + 1e-9


def _value_lists(plan: Plan, rollup: RollupPlan, grain: str, events: pl.DataFrame, now: datetime, metric: str) -> pl.DataFrame:
    """Per (bucket, dims): the sorted values a quantile metric saw, to judge the estimate by rank."""
    from rta.dsl.durations import GRAINS
    from rta.flows.filters import to_polars

    m = plan.definitions.metric(metric)
    assert m.aggregation is not None and m.aggregation.field is not None
    stream = plan.stream(rollup.stream)
    step = GRAINS[grain]
    ts = pl.col(stream.time).dt.epoch("s")
    keep = (ts >= int(now.timestamp()) - stream.max_lateness_seconds) & (ts <= int(now.timestamp()) + stream.max_future_seconds)
    field = pl.col(m.aggregation.field)
    chosen = field.filter((to_polars(m.where) if m.where is not None else pl.lit(True)) & field.is_not_null())
    bucket = ((ts // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    keys = ["bucket", *rollup.dims]
    framed = events.filter(keep).with_columns(bucket, *(pl.col(d).fill_null("") for d in rollup.dims))
    return framed.group_by(keys).agg(chosen.sort().alias("values")).sort(keys)


def assert_matches_oracle(client: Client, plan: Plan, events: pl.DataFrame, now: datetime) -> int:
    """Every metric of every rollup at every grain equals the oracle; returns values compared."""
    compared = 0
    metrics = {m.name: m for m in plan.definitions.metrics}
    start = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    for rollup in plan.rollups:
        keys = ["bucket", *rollup.dims]
        for table in rollup.tables:
            want = oracle(plan, rollup, table.grain, events, now)
            got = read_rollup(client, rollup, table.grain, start, now + timedelta(days=2)).sort(keys)
            assert got.select(keys).equals(want.select(keys)), f"{table.table}: bucket/dimension groups differ"
            for name in dict.fromkeys(p.metric for p in rollup.parts):
                aggregation = metrics[name].aggregation
                pairs = zip(got[name].to_list(), want[name].to_list(), strict=True)
                if isinstance(aggregation, agg.Distinct):
                    for g, w in pairs:
                        assert abs(g - w) <= 3 * UNIQ_SE * w + 1e-9, f"{table.table}.{name}: {g} vs exact {w}"
                elif isinstance(aggregation, agg.Quantile):
                    lists = _value_lists(plan, rollup, table.grain, events, now, name)
                    for values, g in zip(lists["values"].to_list(), got[name].to_list(), strict=True):
                        assert _quantile_ok(values, aggregation.q, g), f"{table.table}.{name}: {g} for {len(values)} values"
                else:
                    for g, w in pairs:
                        ok = (g is None and w is None) or math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9)
                        assert ok, f"{table.table}.{name}: {g} != {w}"
                compared += got.height
    return compared
