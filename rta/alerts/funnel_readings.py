"""What a funnel alert's windows hold: one number of the funnel's answer per window end (and group).

``checkout.conversion.over("1h")`` evaluated at ``t`` is ``ws.funnel("checkout", start=t - 1h,
end=t)``'s last-step conversion: the query layer owns what a funnel counts. Every evaluation time of
a round or a backtest is asked in one statement (``every=`` / ``window=``: one funnel per window),
in runs of at most ``RUN`` windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from rta.dsl.alert import Alert
from rta.query.protocol import Workspace

RUN = 1_000  # windows per statement; the query layer refuses more than 5,000


def funnel_readings(ws: Workspace, rule: Alert, times: Sequence[datetime]) -> pl.DataFrame:
    """Columns ``at``, the rule's ``by``, ``value`` and ``current`` (as :func:`rta.alerts.measure.readings`)."""
    window = rule.window
    current = _measured(ws, rule, times, timedelta(0))
    if window.shift is None:
        return current.with_columns(pl.col("current").alias("value")).select("at", *rule.by, "value", "current")
    shift = timedelta(seconds=window.shift)
    before = _measured(ws, rule, times, shift).select((pl.col("at") + shift).alias("at"), *rule.by, pl.col("current").alias("baseline"))
    joined = current.join(before, on=["at", *rule.by], how="left", nulls_equal=True)
    base = pl.col("baseline")
    value = pl.when(base.is_null() | (base == 0)).then(None).otherwise((pl.col("current") - base) / base)
    return joined.select("at", *rule.by, value.alias("value"), "current")


def _measured(ws: Workspace, rule: Alert, times: Sequence[datetime], shift: timedelta) -> pl.DataFrame:
    """The measure at each of ``times - shift``, labelled by those times: ``at``, ``by``, ``current``."""
    measure, span = rule.window.funnel, timedelta(seconds=rule.window.seconds)
    assert measure is not None
    ends = sorted({t - shift for t in times})
    frames = []
    for run in _runs(ends, timedelta(seconds=rule.every)):
        every = f"{rule.every}s"
        answer = ws.funnel(measure.funnel.name, start=run[0] - span, end=run[-1], every=every, window=f"{rule.window.seconds}s",
                           by=list(rule.by), where=rule.where)  # fmt: skip
        wanted = pl.DataFrame({"window_end": run}, schema={"window_end": pl.Datetime("ms", "UTC")})
        picked = answer.filter(pl.col("step") == measure.step).join(wanted, on="window_end", how="semi")
        frames.append(picked.select(pl.col("window_end").alias("at"), *rule.by, pl.col(measure.column).cast(pl.Float64).alias("current")))
    return pl.concat(frames).with_columns(pl.col("current").fill_nan(None))  # 0 of 0 people converted: no value, not 0%


def _runs(ends: list[datetime], step: timedelta) -> list[list[datetime]]:
    """``ends`` cut into runs of consecutive times ``step`` apart, at most ``RUN`` long (each run is one statement)."""
    runs: list[list[datetime]] = []
    for t in ends:
        if runs and len(runs[-1]) < RUN and t - runs[-1][-1] == step:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs
