"""ClickHouse DDL built as sqlglot expressions: identifiers are quoted by the generator."""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot.expressions as exp

from rta.compiler.aggregations import SKETCHES
from rta.compiler.plan import GrainTable, Part, RollupPlan, StreamPlan
from rta.compiler.properties import PROPS, PROPS_JSON, PROPS_NUM, PROPS_NUM_JSON, PROPS_NUM_TYPE, PROPS_TYPE

DEDUP_WINDOW = 10_000  # insert blocks remembered per table for insert_deduplication_token
STATS_TABLE = "rta_ingest_stats"
ALERT_HISTORY_TABLE = "rta_alert_history"
ALERT_STATE_TABLE = "rta_alert_state"
ALERT_HISTORY_TTL = 90 * 86400
_START_OF = {"1m": None, "1h": "toStartOfHour", "1d": "toStartOfDay"}
_PARTITION = {"1m": "toYYYYMMDD", "1h": "toYYYYMM", "1d": "toYear"}
_UNITS = (("DAY", 86400), ("HOUR", 3600), ("MINUTE", 60), ("SECOND", 1))


def _type(text: str) -> exp.DataType:
    return exp.DataType.build(text, dialect="clickhouse")


def _column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name))


def _interval(seconds: int) -> exp.Interval:
    unit, size = next((u, s) for u, s in _UNITS if seconds % s == 0)
    return exp.Interval(this=exp.Literal.number(seconds // size), unit=exp.var(unit))


def _ttl(column: exp.Expr, seconds: int) -> exp.MergeTreeTTL:
    return exp.MergeTreeTTL(expressions=[exp.Add(this=column, expression=_interval(seconds))])


def _create_table(
    name: str,
    columns: list[tuple[str, str]],
    engine: str,
    *,
    partition: exp.Expr | None = None,
    order_by: Sequence[exp.Expr] | None = None,
    ttl: exp.MergeTreeTTL | None = None,
    projections: Sequence[exp.ProjectionDef] = (),
) -> exp.Create:
    name_, _, arg = engine.partition("(")
    engine_expr = exp.Anonymous(this=name_, expressions=[_column(arg.rstrip(")"))]) if arg else exp.to_identifier(engine)
    props: list[exp.Expr] = [exp.EngineProperty(this=engine_expr)]
    if partition is not None:
        props.append(exp.PartitionedByProperty(this=partition))
    if order_by is not None:
        props.append(exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=order_by), nulls_first=False)]))
    if ttl is not None:
        props.append(ttl)
    if engine != "Null":
        settings = [exp.EQ(this=_column("non_replicated_deduplication_window"), expression=exp.Literal.number(DEDUP_WINDOW))]
        if projections:  # merges of aggregated rows rebuild the projections instead of refusing them
            settings.append(exp.EQ(this=_column("deduplicate_merge_projection_mode"), expression=exp.Literal.string("rebuild")))
        props.append(exp.SettingsProperty(expressions=settings))
    schema = exp.Schema(
        this=exp.to_table(name),
        expressions=[*(exp.ColumnDef(this=exp.to_identifier(c), kind=_type(t)) for c, t in columns), *projections],
    )
    return exp.Create(this=schema, kind="TABLE", exists=True, properties=exp.Properties(expressions=props))


# Every undeclared property (rta/compiler/properties.py): the maps, parsed at insert from the JSON
# texts the flow passes in EPHEMERAL columns (an insert that gives the maps themselves keeps them;
# one that gives neither gets empty maps, but a format that leaves fields out row by row, such as
# JSONEachRow, must then name its columns: ClickHouse computes such rows' defaults without the
# EPHEMERAL columns, and fails).
_MAPS = ((PROPS, PROPS_TYPE, PROPS_JSON), (PROPS_NUM, PROPS_NUM_TYPE, PROPS_NUM_JSON))


def raw_table(stream: StreamPlan) -> exp.Create:
    """Raw events of a stream: a MergeTree with a TTL."""
    assert stream.raw_table is not None and stream.raw_ttl_seconds is not None
    columns = [(stream.time, "DateTime64(3, 'UTC')")]
    columns += [(f, "String") for f in (stream.insert_id, stream.user) if f]
    columns += [(d, "LowCardinality(String)") for d in stream.dims]
    columns += [(m, "Nullable(Float64)") for m in stream.measures]
    columns += [(text, "String") for _, _, text in _MAPS]  # before the maps: their DEFAULTs read them
    columns += [(name, kind) for name, kind, _ in _MAPS]
    time = _column(stream.time)
    create = _create_table(
        stream.raw_table,
        columns,
        "MergeTree",
        partition=exp.func("toYYYYMMDD", time),
        order_by=[time],
        ttl=_ttl(exp.func("toDateTime", time), stream.raw_ttl_seconds),
    )
    definitions = {c.name: c for c in create.this.expressions if isinstance(c, exp.ColumnDef)}
    for name, kind, text in _MAPS:
        definitions[text].set("constraints", [exp.ColumnConstraint(kind=exp.EphemeralColumnConstraint())])
        parsed = exp.Anonymous(this="JSONExtract", expressions=[_column(text), exp.Literal.string(kind)])
        definitions[name].set("constraints", [exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(this=parsed))])
    return create


def input_table(rollup: RollupPlan) -> exp.Create:
    """The Null-engine table the flow inserts partials into; views fan them out per grain."""
    columns = [("minute", "DateTime('UTC')")] + [(d, "String") for d in rollup.dims]
    columns += [(p.column, p.kind.partial_type) for p in rollup.parts]
    return _create_table(rollup.input_table, columns, "Null")


def projections(rollup: RollupPlan, grain: str) -> list[exp.ProjectionDef]:
    """Per-dimension projections of a grain table whose rollup keeps sketches by several dimensions.

    Merging distinct-count and quantile states is what dashboards wait for (docs/architecture.md, "Mergeable, small sketches"): a split
    by country alone should merge one state per bucket and country, not one per country and
    device. ClickHouse picks a projection by itself when a query groups and filters within it
    (measured: a 7-day top-10 countries by visitors 47 -> 23 ms).
    """
    if grain == "1m" or len(rollup.dims) < 2 or not any(p.kind.suffix in SKETCHES for p in rollup.parts):
        return []  # minute tables serve short ranges, and their projections would cost the flow most
    return [
        exp.ProjectionDef(
            this=exp.to_identifier(f"by_{dim}"),
            expression=exp.select("bucket", dim, *(p.merged() for p in rollup.parts)).group_by("bucket", dim),
        )
        for dim in rollup.dims
    ]


def grain_table(rollup: RollupPlan, table: GrainTable) -> exp.Create:
    """An AggregatingMergeTree of states at one grain."""
    columns = [("bucket", "DateTime('UTC')")] + [(d, "LowCardinality(String)") for d in rollup.dims]
    columns += [(p.column, p.kind.state_type) for p in rollup.parts]
    bucket = _column("bucket")
    return _create_table(
        table.table,
        columns,
        "AggregatingMergeTree",
        partition=exp.func(_PARTITION[table.grain], bucket),
        order_by=[bucket, *(_column(d) for d in rollup.dims)],
        ttl=_ttl(bucket, table.ttl_seconds),
        projections=projections(rollup, table.grain),
    )


def _to_state(part: Part) -> exp.Expr:
    call: exp.Expr = exp.Anonymous(this=part.kind.to_state, expressions=[_column(part.column)])
    if part.kind.params:
        call = exp.ParameterizedAgg(
            this=part.kind.to_state,
            expressions=[exp.Literal.number(p) for p in part.kind.params],
            params=[_column(part.column)],
        )
    return exp.alias_(call, part.column)


def grain_view(rollup: RollupPlan, table: GrainTable) -> exp.Create:
    """The materialized view that turns partials into states of one grain."""
    start_of = _START_OF[table.grain]
    minute = _column("minute")
    bucket = exp.func(start_of, minute) if start_of else minute
    select = (
        exp.select(exp.alias_(bucket, "bucket"), *(_column(d) for d in rollup.dims), *(_to_state(p) for p in rollup.parts))
        .from_(exp.to_table(rollup.input_table))
        .group_by(_column("bucket"), *(_column(d) for d in rollup.dims))
    )
    props = exp.Properties(expressions=[exp.MaterializedProperty(), exp.ToTableProperty(this=exp.to_table(table.table))])
    return exp.Create(this=exp.to_table(table.view), kind="VIEW", exists=True, expression=select, properties=props)


def stats_table() -> exp.Create:
    """Events per stream, minute and outcome (accepted, late, future, invalid): nothing is dropped silently."""
    columns = [("minute", "DateTime('UTC')"), ("stream", "LowCardinality(String)"), ("outcome", "LowCardinality(String)")]
    columns += [("events", "SimpleAggregateFunction(sum, UInt64)")]
    # When the flow last wrote, and the newest event it accepted (capped at that time): the
    # event-time watermark that tells final buckets from provisional ones.
    columns += [("last_seen", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))")]
    columns += [("newest_event", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))")]
    order = [_column("stream"), _column("outcome"), _column("minute")]
    return _create_table(STATS_TABLE, columns, "AggregatingMergeTree", order_by=order)


def alert_tables() -> list[exp.Create]:
    """Every evaluation and notification of alert rules (kept 90 days), and the rules' state."""
    history = [("at", "DateTime64(3, 'UTC')"), ("recorded", "DateTime64(3, 'UTC')"), ("rule", "LowCardinality(String)")]
    history += [("group", "String"), ("kind", "LowCardinality(String)"), ("status", "LowCardinality(String)")]
    history += [("value", "Nullable(Float64)"), ("current", "Nullable(Float64)"), ("provisional", "Bool")]
    history += [("channel", "String"), ("detail", "String")]
    at = _column("at")
    state = [("rule", "String"), ("group", "String"), ("state", "String"), ("version", "UInt64")]
    return [
        _create_table(
            ALERT_HISTORY_TABLE,
            history,
            "MergeTree",
            partition=exp.func("toYYYYMM", at),
            order_by=[_column("rule"), at],
            ttl=_ttl(exp.func("toDateTime", at), ALERT_HISTORY_TTL),
        ),  # fmt: skip
        _create_table(ALERT_STATE_TABLE, state, "ReplacingMergeTree(version)", order_by=[_column("rule"), _column("group")]),
    ]
