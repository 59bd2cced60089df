"""Replay history through the live evaluation code: when would a rule have fired?"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from rta.alerts.evaluate import GroupKey, step_rule
from rta.alerts.measure import readings
from rta.alerts.state import RuleState
from rta.dsl.alert import Alert
from rta.dsl.durations import parse_duration
from rta.dsl.shown import ELLIPSIS, ROWS, block, card, html_table, span
from rta.errors import DefinitionError, QueryError
from rta.query.protocol import Workspace


@dataclass(frozen=True)
class Backtest:
    """Every evaluation (``at``, ``group``, ``value``, ``breached``, ``status``) and every notification."""

    rule: Alert
    evaluations: pl.DataFrame
    notifications: pl.DataFrame

    def firing_periods(self) -> pl.DataFrame:
        """One row per stretch of firing: ``group``, ``start``, ``end`` (null while still firing)."""
        frame = self.evaluations.sort("group", "at").with_columns(firing=pl.col("status") == "firing")
        frame = frame.with_columns(
            run=(pl.col("firing") != pl.col("firing").shift(1).over("group")).fill_null(True).cum_sum().over("group")
        )
        runs = frame.group_by("group", "run").agg(
            pl.col("firing").first(), pl.col("at").min().alias("start"), pl.col("at").max().alias("last")
        )
        ended = frame.group_by("group").agg(pl.col("at").max().alias("final"))
        runs = runs.filter("firing").join(ended, on="group")
        step = timedelta(seconds=self.rule.every)
        end = pl.when(pl.col("last") == pl.col("final")).then(None).otherwise(pl.col("last") + step)
        return runs.select("group", "start", end.alias("end")).sort("start", "group")

    def chart(self) -> Any:
        """An Altair chart: the value, the threshold(s) and the firing periods shaded."""
        import altair as alt

        # Groups by their values (country=FR); an unsplit rule's one group ("{}") needs no legend.
        values = self.evaluations.select("at", pl.col("group").map_elements(_group, return_dtype=pl.String), "value")
        encoding: dict[str, Any] = {
            "x": alt.X("at:T", title="evaluated at (UTC)"),
            "y": alt.Y("value:Q", title=self.rule.window.describe()),
        }
        if self.rule.by:
            encoding["color"] = alt.Color("group:N", title=", ".join(self.rule.by))
        line = alt.Chart(values).mark_line(interpolate="step-before").encode(**encoding)
        rules = (
            alt.Chart(pl.DataFrame({"threshold": list(self.rule.condition.bounds)})).mark_rule(strokeDash=[4, 4]).encode(y="threshold:Q")
        )
        periods = self.firing_periods().with_columns(pl.col("end").fill_null(self.evaluations["at"].max()))
        shade = alt.Chart(periods).mark_rect(opacity=0.15, color="#d62728").encode(x="start:T", x2="end:T")
        return (shade + line + rules).properties(title=f"{self.rule.name}: {self.rule.condition.describe()}", width=640, height=220)

    def _headline(self) -> str:
        fired = self.notifications.filter(pl.col("status") == "firing").height
        return f"{self.evaluations['at'].n_unique()} evaluations, {fired} firing notifications"

    def _range(self) -> str:
        if self.evaluations.is_empty():
            return "no evaluation"
        at: list[datetime] = [self.evaluations["at"].min(), self.evaluations["at"].max()]  # type: ignore[list-item]
        return f"{at[0]:%Y-%m-%d %H:%M} to {at[1]:%Y-%m-%d %H:%M} UTC, every {span(self.rule.every)}"

    def _periods(self) -> list[tuple[str, str, str]]:
        """(start, end, group) of each firing period, as text."""
        if self.evaluations.is_empty():
            return []
        return [
            (f"{start:%Y-%m-%d %H:%M}", "still firing" if end is None else f"{end:%Y-%m-%d %H:%M}", _group(group))
            for group, start, end in self.firing_periods().iter_rows()
        ]

    def __repr__(self) -> str:
        """The rule's name and counts (the CLI prints this line), then the rule, the range and the first firing periods."""
        periods = self._periods()
        lines = [f"{self.rule.summary(values=4)}; {self._range()}"]
        lines += [f"firing {start} to {end}" + (f" ({group})" if group else "") for start, end, group in periods[:5]]
        if len(periods) > 5:
            lines.append(f"{ELLIPSIS} {len(periods) - 5:,} more firing periods")
        return block(f"Backtest({self.rule.name!r}: {self._headline()})", lines)

    def _repr_html_(self) -> str:
        periods = html_table(["firing from", "to", "group"], self._periods(), limit=ROWS)
        told = html_table(
            ["at", "status", "groups", "text"],
            [(f"{at:%Y-%m-%d %H:%M}", status, groups, text) for at, status, groups, text in self.notifications.iter_rows()],
            limit=ROWS,
        )
        rows = [
            ("rule", self.rule.summary(values=20)),
            ("evaluated", self._range()),
            ("result", self._headline()),
            ("firing periods", periods if len(self.evaluations) else None),
            ("notifications", told if len(self.notifications) else None),
        ]
        return card("Backtest", self.rule.name, rows)


def _group(key: str) -> str:
    """A group key (canonical JSON) as ``country=FR, device=mobile``; empty when the rule is not split."""
    try:
        values = json.loads(key)
    except ValueError:
        return key
    return ", ".join(f"{k}={v}" for k, v in values.items()) if isinstance(values, dict) else key


def backtest(
    ws: Workspace,
    rule: Alert,
    *,
    last: str = "30d",
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> Backtest:
    """Evaluate ``rule`` at every ``every`` step over a past range, with pending, keep-firing and cooldown."""
    step = rule.every
    stop = end or now or datetime.now(UTC)
    try:
        begin = start or stop - timedelta(seconds=parse_duration(last, what="backtest range (last)"))
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    # ``last`` means (stop - last, stop]: an hour is 60 evaluations wherever the clock falls (61 when stop was on the minute).
    lowest = int(begin.timestamp()) // step + 1 if start is None else -(-int(begin.timestamp()) // step)
    first, final = lowest * step, int(stop.timestamp()) // step * step
    if first > final:
        msg = f"the backtest range {begin.isoformat()} to {stop.isoformat()} holds no evaluation (every {step // 60}m)"
        raise QueryError(msg)
    times = [datetime.fromtimestamp(t, UTC) for t in range(first, final + 1, step)]
    frame = readings(ws, rule, times)
    by_time = frame.partition_by("at", as_dict=True) if not frame.is_empty() else {}
    states: dict[GroupKey, RuleState] = {}
    evaluated, notes = [], []
    for t in times:
        rows = by_time.get((t,))
        done, told = step_rule(rule, states, rows.iter_rows(named=True) if rows is not None else [], t)
        evaluated += done
        notes += told
    evaluations = pl.DataFrame(
        [
            {"at": e.at, "group": e.group, "value": e.value, "current": e.current, "breached": e.breached, "status": e.status}
            for e in evaluated
        ],
        schema={
            "at": pl.Datetime("ms", "UTC"), "group": pl.String, "value": pl.Float64, "current": pl.Float64,
            "breached": pl.Boolean, "status": pl.String,
        },
    )  # fmt: skip
    notifications = pl.DataFrame(
        [{"at": n.at, "status": n.status, "groups": len(n.groups), "text": n.text()} for n in notes],
        schema={"at": pl.Datetime("ms", "UTC"), "status": pl.String, "groups": pl.Int64, "text": pl.String},
    )
    return Backtest(rule, evaluations, notifications)
