"""What a rule's window holds at given times: one value per group (and the change vs a baseline).

Live evaluation asks for one time, a backtest for thousands; both come here. Windows of
metrics whose parts merge by sum, min or max (counts, totals, ratios of them) are rolled
over one series query; distinct counts, averages and quantiles, which do not add up, are
asked per window with ``total=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from rta.alerts.funnel_readings import funnel_readings
from rta.compiler.aggregations import RangeTotal, aggregation_of
from rta.dsl import aggregates as agg
from rta.dsl.alert import Alert
from rta.dsl.durations import GRAINS
from rta.errors import QueryError
from rta.query.metric_query import formula_expr
from rta.query.protocol import Workspace

COMPARE = {"previous_period": "previous_period", "1d": "previous_day", "1w": "previous_week", "1y": "previous_year"}
MAX_WINDOW_QUERIES = 5_000  # backtests of non-additive metrics run one query per evaluation


def grain_for(rule: Alert, times: Sequence[datetime]) -> str:
    """The coarsest grain that tiles the window, its baseline and every evaluation time."""
    window = rule.window
    for grain, step in reversed(GRAINS.items()):
        spans = (window.seconds, window.shift or 0, *(int(t.timestamp()) for t in times))
        if all(s % step == 0 for s in spans):
            return grain
    msg = f"alert {rule.name!r}: evaluation times must fall on whole minutes"
    raise QueryError(msg)


def _rolls(rule: Alert) -> dict[str, RangeTotal] | None:
    """How each stored metric of the rule's metric rolls over buckets, or None if one cannot."""
    metric = rule.window.metric
    if metric is None:  # the stream's arrivals roll over buckets as a count does
        arrivals = _range_total(agg.Count())
        assert arrivals is not None
        return {"events": arrivals}
    rolls = {}
    for base in metric.base_metrics():
        total = _range_total(base.aggregation)
        if total is None:
            return None
        rolls[base.name] = total
    return rolls


def _range_total(aggregation: agg.Aggregation | None) -> RangeTotal | None:
    return aggregation_of(aggregation).range_total if aggregation is not None else None


def readings(ws: Workspace, rule: Alert, times: Sequence[datetime]) -> pl.DataFrame:
    """Columns ``at`` (window end), the rule's ``by`` dimensions, ``value`` and ``current``.

    ``value`` is what the condition compares: the window's value, or with a baseline the
    relative change ``(current - baseline) / baseline`` (null when the baseline is 0 or empty).
    """
    times = sorted(set(times))
    if not times:
        return pl.DataFrame()
    if rule.window.funnel is not None:
        return funnel_readings(ws, rule, times).sort("at", *rule.by)
    rolls = _rolls(rule)
    if rolls is None:
        if len(times) > MAX_WINDOW_QUERIES:
            msg = (
                f"alert {rule.name!r}: {len(times):,} evaluations of a metric that does not add up over buckets "
                f"(more than {MAX_WINDOW_QUERIES:,}); backtest a shorter range"
            )
            raise QueryError(msg)
        frame = pl.concat([_window_total(ws, rule, t) for t in times], how="diagonal_relaxed")
    else:
        frame = _rolled(ws, rule, times, rolls)
    return frame.sort("at", *rule.by)


def _value(rule: Alert, current: pl.Expr, baseline: pl.Expr | None) -> pl.Expr:
    if baseline is None:
        return current.alias("value")
    return pl.when(baseline.is_null() | (baseline == 0)).then(None).otherwise((current - baseline) / baseline).alias("value")


def _window_total(ws: Workspace, rule: Alert, at: datetime) -> pl.DataFrame:
    window, metric = rule.window, rule.window.metric
    assert metric is not None
    start = at - timedelta(seconds=window.seconds)
    compare = COMPARE[window.baseline] if window.baseline else None
    frame = ws.query(
        metric.name, start=start, end=at, grain=grain_for(rule, [at]), by=rule.by, where=rule.where,
        total=True, compare=compare, cache=False,
    )  # fmt: skip
    baseline = pl.col(f"{metric.name}_previous") if compare else None
    return frame.select(pl.lit(at).dt.cast_time_unit("ms").alias("at"), *rule.by, _value(rule, pl.col(metric.name), baseline),
                        pl.col(metric.name).alias("current"))  # fmt: skip


def _rolled(ws: Workspace, rule: Alert, times: list[datetime], rolls: dict[str, RangeTotal]) -> pl.DataFrame:
    window = rule.window
    grain = grain_for(rule, times)
    step = timedelta(seconds=GRAINS[grain])
    span = timedelta(seconds=window.seconds)
    shift = timedelta(seconds=window.shift or 0)
    start, end = times[0] - span - shift, times[-1]
    if window.metric is None:
        series = ws.arrivals(window.stream.name, start, end)
        series = (
            pl.DataFrame({"bucket": pl.datetime_range(start, end - step, step, time_unit="ms", time_zone="UTC", eager=True)})
            .join(series, on="bucket", how="left")
            .with_columns(pl.col("events").fill_null(0.0))
        )
    else:
        series = ws.query(list(rolls), start=start, end=end, grain=grain, by=rule.by, where=rule.where, fill_gaps=True, cache=False)
    # The row of bucket b holds the window (b - span, b]: the window ending at b + step.
    rolled = (
        series.sort(*rule.by, "bucket")
        .rolling("bucket", period=span, closed="right", group_by=list(rule.by) or None)
        .agg(*(total.polars(pl.col(name)) for name, total in rolls.items()))
        .with_columns((pl.col("bucket") + step).alias("at"))
    )
    current = formula_expr(window.metric).alias("current") if window.metric is not None else pl.col("events").alias("current")
    values = rolled.select("at", *rule.by, current)
    wanted = pl.DataFrame({"at": times}, schema={"at": pl.Datetime("ms", "UTC")})
    if not shift:
        picked = values.join(wanted, on="at", how="inner")
        return picked.select("at", *rule.by, _value(rule, pl.col("current"), None), "current")
    earlier = values.select((pl.col("at") + shift).alias("at"), *rule.by, pl.col("current").alias("baseline"))
    picked = values.join(wanted, on="at", how="inner").join(earlier, on=["at", *rule.by], how="left")
    return picked.select("at", *rule.by, _value(rule, pl.col("current"), pl.col("baseline")), "current")
