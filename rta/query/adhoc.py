"""Ad-hoc queries: a small immutable builder over raw events and rollup tables, compiled by sqlglot.

    ws.events.last("7d").where(col("event") == "purchase").group_by("country", every="1d")
      .agg(orders=count(), revenue=total("revenue")).order_by("revenue", descending=True).limit(10)

Every step returns a new query; values are bound as parameters; unknown columns fail at the
step that names them, listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Self

import polars as pl
import sqlglot.expressions as exp

from rta.compiler.aggregations import aggregation_of
from rta.compiler.plan import GrainTable, Plan, RollupPlan, StreamPlan
from rta.compiler.properties import PERSON_PREFIX, PROP_PREFIX
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl import aggregates as agg
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.errors import DefinitionError, QueryError, UnsupportedAggregation, did_you_mean
from rta.query.metric_query import metric_value
from rta.query.planner import Choice
from rta.query.raw_columns import RawColumns, is_raw_only

Runner = Callable[[str, dict[str, object]], pl.DataFrame]


def _raw_aggregate(a: agg.Aggregation, table: str, column: Callable[[str, bool], exp.Expr]) -> exp.Expr:
    """Raw events are exact: uniqExact and quantileExact, not the rollups' sketches."""
    # Qualified: ClickHouse would substitute an output alias of the same name (nesting aggregates).
    field = column(a.field, not isinstance(a, agg.Distinct)) if a.field else None  # distinct counts of texts; the rest of numbers
    try:
        return aggregation_of(a).exact_sql(a, field)
    except UnsupportedAggregation as err:
        raise QueryError(str(err)) from None


@dataclass(frozen=True, slots=True)
class _Source:
    """What a builder reads: raw events of a stream, or one rollup table."""

    table: str
    time: str
    columns: tuple[str, ...]
    dims: frozenset[str]  # compared as strings in filters
    rollup: RollupPlan | None = None
    grain_table: GrainTable | None = None
    stream: StreamPlan | None = None  # raw events: their properties and people's traits are columns too
    materialized: frozenset[str] = frozenset()  # raw events: the property columns the table has (read instead of the maps)

    def shown(self) -> str:
        """What the user asked for, as they name it (not the internal table): ``stream 'events'``, ``rollup 'traffic' at 1h``."""
        if self.rollup is not None and self.grain_table is not None:
            return f"rollup {self.rollup.name!r} at {self.grain_table.grain}"
        return f"the raw events of stream {self.stream.name!r}" if self.stream is not None else self.table


@dataclass(frozen=True, slots=True)
class AdhocQuery:
    """An ad-hoc query. Start one with ``ws.events`` or ``ws.rollup(name, grain)``."""

    source: _Source
    run: Runner
    filters: tuple[Expr, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    keys: tuple[str, ...] = ()
    every: int | None = None
    aggregates: tuple[tuple[str, agg.Aggregation | str], ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    limit_rows: int | None = None

    def _check(self, name: str, what: str) -> str:
        if self.source.rollup is None and is_raw_only(name):
            return name  # any property, declared or not, and any trait of the event's person: raw events keep them all
        if name not in self.source.columns:
            hint = did_you_mean(name, list(self.source.columns))
            if self.source.rollup is None:
                hint += (
                    f"; undeclared properties are {PROP_PREFIX}<name>, e.g. {PROP_PREFIX}plan, and people's traits {PERSON_PREFIX}<trait>"
                )
            msg = f"{what}: unknown column {name!r} in {self.source.shown()}; {hint}"
            raise QueryError(msg)
        return name

    def where(self, *filters: Expr, **equals: str) -> Self:
        """Keep rows matching every filter; ``country="US"`` is short for ``col("country") == "US"``."""
        from rta.dsl.expr import col

        nodes = [*filters, *(col(k) == v for k, v in equals.items())]
        for node in nodes:
            if not isinstance(node, Expr):
                msg = f"where() takes filters such as col('event') == 'purchase', got {node!r}"
                raise QueryError(msg)
            for name in sorted(node.fields()):
                self._check(name, "where()")
        return replace(self, filters=self.filters + tuple(nodes))

    def between(self, start: datetime, end: datetime) -> Self:
        """Rows with times in ``[start, end)``."""
        if start >= end:
            msg = f"between(): start {start.isoformat()} is not before end {end.isoformat()}"
            raise QueryError(msg)
        return replace(self, start=start, end=end)

    def last(self, duration: str, *, now: datetime | None = None) -> Self:
        """Rows from the last ``duration`` (e.g. ``"7d"``)."""
        try:
            seconds = parse_duration(duration, what="last()")
        except DefinitionError as err:
            raise QueryError(str(err)) from None
        end = now or datetime.now(UTC)
        return replace(self, start=end - timedelta(seconds=seconds), end=end + timedelta(seconds=1))

    def group_by(self, *keys: str, every: str | None = None) -> Self:
        """Group by columns and, with ``every="1h"``, by time bucket (a ``bucket`` column)."""
        for key in keys:
            self._check(key, "group_by()")
        step = None
        if every is not None:
            try:
                step = parse_duration(every, what="group_by(every=)")
            except DefinitionError as err:
                raise QueryError(str(err)) from None
        return replace(self, keys=self.keys + keys, every=step)

    def agg(self, *metrics: str, **named: agg.Aggregation) -> Self:
        """Aggregates by name: ``n=count()``, ``revenue=total("revenue")`` on raw events; metric names on rollups."""
        items: list[tuple[str, agg.Aggregation | str]] = []
        if self.source.rollup is not None:
            if named:
                msg = f"agg() on {self.source.shown()} takes metric names, e.g. agg('page_views')"
                raise QueryError(msg)
            stored = sorted({p.metric for p in self.source.rollup.parts})
            for m in metrics:
                if m not in stored:
                    msg = f"agg(): metric {m!r} is not in rollup {self.source.rollup.name!r}; {did_you_mean(m, stored)}"
                    raise QueryError(msg)
                items.append((m, m))
        else:
            if metrics:
                msg = "agg() on raw events takes named aggregations, e.g. agg(orders=count(), revenue=total('revenue'))"
                raise QueryError(msg)
            for alias, a in named.items():
                if not isinstance(a, agg.Aggregation):
                    msg = f"agg({alias}=...): expected an aggregation such as count() or total('revenue'), got {a!r}"
                    raise QueryError(msg)
                if a.field is not None:
                    self._check(a.field, f"agg({alias}=...)")
                items.append((alias, a))
        return replace(self, aggregates=self.aggregates + tuple(items))

    def order_by(self, *names: str, descending: bool = False) -> Self:
        """Sort by output columns."""
        return replace(self, order=self.order + tuple((n, descending) for n in names))

    def limit(self, rows: int) -> Self:
        """At most ``rows`` rows."""
        if not isinstance(rows, int) or rows < 1:
            msg = f"limit() takes a positive number of rows, got {rows!r}"
            raise QueryError(msg)
        return replace(self, limit_rows=rows)

    def to_sql(self) -> tuple[str, dict[str, object]]:
        """The ClickHouse SQL and its parameters."""
        params = Params()
        table = self.source.table
        raw = RawColumns(self.source.stream, params, self.source.materialized) if self.source.stream is not None else None

        def column(name: str, numeric: bool = False) -> exp.Expr:
            if raw is not None:
                return raw.column(name, numeric)
            return exp.column(exp.to_identifier(name), table=exp.to_identifier(table))

        time = column(self.source.time)
        outputs: list[exp.Expr] = []
        groups: list[exp.Expr] = []
        if self.every is not None:
            step = exp.Interval(this=exp.Literal.number(self.every), unit=exp.var("SECOND"))
            outputs.append(exp.alias_(exp.func("toStartOfInterval", time, step), "bucket"))
            groups.append(exp.column("bucket"))
        outputs += [exp.alias_(column(k), k) for k in self.keys]
        groups += [column(k) for k in self.keys]
        for alias, a in self.aggregates:
            if isinstance(a, str):
                value = metric_value(Choice(self.source.rollup, self.source.grain_table), a)  # type: ignore[arg-type]
            else:
                value = _raw_aggregate(a, table, column)
            outputs.append(exp.alias_(value, alias))
        if not outputs:
            outputs = [exp.Star()]
        resolve = raw.resolve if raw is not None else None
        conditions = [filter_sql(f, params, as_string=self.source.dims, table=table, resolve=resolve) for f in self.filters]
        time_type = "DateTime64(3, 'UTC')" if raw is not None else "DateTime('UTC')"
        if self.start is not None and self.end is not None:
            for op, when in ((exp.GTE, self.start), (exp.LT, self.end)):
                # Rollup buckets are whole seconds: ClickHouse refuses a DateTime parameter with a fraction.
                written = when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if raw is not None else when.strftime("%Y-%m-%d %H:%M:%S")
                conditions.append(op(this=time, expression=params.add(written, time_type)))
        select = exp.select(*outputs).from_(exp.to_table(self.source.table))
        if raw is not None:
            select = raw.join(select)
        if conditions:
            select = select.where(exp.and_(*conditions))
        if groups and self.aggregates:
            select = select.group_by(*groups)
        known = {str(o.alias_or_name) for o in outputs}
        for name, descending in self.order:
            if name not in known:
                msg = f"order_by(): {name!r} is not an output column; output columns are: {', '.join(sorted(known))}"
                raise QueryError(msg)
            select = select.order_by(exp.Ordered(this=exp.column(exp.to_identifier(name)), desc=descending))
        if self.limit_rows is not None:
            select = select.limit(self.limit_rows)
        return select.sql(dialect="clickhouse"), params.values

    def collect(self) -> pl.DataFrame:
        """Run the query; a Polars frame."""
        sql, params = self.to_sql()
        return self.run(sql, params)


def events_query(plan: Plan, stream: StreamPlan, run: Runner, materialized: frozenset[str] = frozenset()) -> AdhocQuery:
    """A builder over a stream's raw events; ``materialized``: the raw table's property columns, read instead of the maps
    (``prop.plan`` by 10M events: 115 ms from its column against 898 ms from the map)."""
    if stream.raw_table is None:
        msg = (
            f"stream {stream.name!r} keeps no raw events; declare it with keep_raw='30d', or query its rollups with ws.rollup(name, grain)"
        )
        raise QueryError(msg)
    columns = (stream.time, *(f for f in (stream.insert_id, stream.user) if f), *stream.dims, *stream.measures)
    source = _Source(
        stream.raw_table,
        stream.time,
        columns,
        frozenset(stream.dims) | {f for f in (stream.user, stream.insert_id) if f},
        stream=stream,
        materialized=materialized,
    )
    return AdhocQuery(source, run)


def rollup_query(plan: Plan, name: str, grain: str, run: Runner) -> AdhocQuery:
    """A builder over one rollup table."""
    rollup = next((r for r in plan.rollups if r.name == name), None)
    if rollup is None:
        msg = f"no rollup named {name!r}; {did_you_mean(name, [r.name for r in plan.rollups])}"
        raise QueryError(msg)
    table = rollup.table(grain)
    if table is None:
        msg = f"rollup {name!r} is not kept at grain {grain!r}; its grains are: {', '.join(t.grain for t in rollup.tables)}"
        raise QueryError(msg)
    return AdhocQuery(_Source(table.table, "bucket", ("bucket", *rollup.dims), frozenset(rollup.dims), rollup, table), run)
