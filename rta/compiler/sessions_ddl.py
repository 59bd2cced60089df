"""The sessions table of a stream: the flow's signed visit rows (rta/flows/sessions.py), and their rollup.

A plain MergeTree, not a CollapsingMergeTree: readers sum ``sign`` per visit (all its columns) and
keep those summing to one, which is exact whatever ClickHouse has merged, so nothing depends on
``FINAL`` or on when merges run (docs/architecture.md, "Sessions").

The rollup (a SummingMergeTree per minute of the visits' starts and their dimensions, filled by a
materialized view) sums the signed rows: a visit replaced by a longer one adds -1 where it was and
+1 where it is now, so every sum (visits, bounces, milliseconds, pages) is exact without reading the
visits. What a bounce is and how long a visit lasts are defined here, once, for both readers.
"""

from __future__ import annotations

import sqlglot
import sqlglot.expressions as exp

from rta.compiler.ddl import _column, _create_table, _ttl
from rta.compiler.plan import SessionPlan

BOUNCE_SECONDS = 10
#: A visit's length and whether it bounced (PostHog's rule), over the sessions table's columns.
DURATION_MS = "dateDiff('millisecond', start, `end`)"
BOUNCED = f"pages <= 1 AND interactions = 0 AND {DURATION_MS} < {BOUNCE_SECONDS * 1000}"
#: The rollup's sums, as the view computes them from signed rows.
ROLLUP_SUMS: tuple[tuple[str, str], ...] = (
    ("visits_n", "sum(sign)"),
    ("bounces_n", f"sum(sign * ({BOUNCED}))"),
    ("duration_ms", f"sum(sign * {DURATION_MS})"),
    ("pageviews_n", "sum(sign * pages)"),
)
#: The metrics every stream with sessions has, by name, with their units (rta/query/session_metrics.py answers them).
SESSION_METRIC_UNITS: dict[str, str | None] = {
    "visits": None, "bounces": None, "bounce_rate": "%", "visit_duration": "s", "median_visit_duration": "s",
    "pages_per_visit": None, "visit_pageviews": None,
}  # fmt: skip
_TIME = "DateTime64(3, 'UTC')"
# Each visit's own columns, in the order the flow writes them; the stream's dimensions follow, then sign.
SESSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "String"), ("person", "String"), ("sid", "String"),
    ("start", _TIME), ("start_id", "String"), ("end", _TIME), ("end_id", "String"),
    ("events", "UInt32"), ("pages", "UInt32"), ("interactions", "UInt32"),
    ("entry", "Nullable(String)"), ("entry_ts", f"Nullable({_TIME})"), ("entry_id", "Nullable(String)"),
    ("exit", "Nullable(String)"), ("exit_ts", f"Nullable({_TIME})"), ("exit_id", "Nullable(String)"),
)  # fmt: skip


def split_fields(plan: SessionPlan) -> tuple[str, ...]:
    """What session metrics split and filter by: the first event's dimensions, the entry and exit pages."""
    return (*plan.dims, *(("entry", "exit") if plan.path else ()))


def columns(plan: SessionPlan) -> list[tuple[str, str]]:
    """Every column of the sessions table."""
    return [*SESSION_COLUMNS, *((d, "LowCardinality(String)") for d in plan.dims), ("sign", "Int8")]


def sessions_table(plan: SessionPlan) -> exp.Create:
    """The table of signed visit rows, by the visit's start."""
    start = _column("start")
    return _create_table(
        plan.table,
        columns(plan),
        "MergeTree",
        partition=exp.func("toYYYYMM", start),
        order_by=[start, _column("key")],
        ttl=_ttl(exp.func("toDateTime", start), plan.ttl_seconds),
    )


def rollup_table(plan: SessionPlan) -> exp.Create:
    """Signed sums of visits per minute of their start and dimensions."""
    bucket = _column("bucket")
    columns = [("bucket", "DateTime('UTC')"), *((d, "LowCardinality(String)") for d in plan.dims), *((c, "Int64") for c, _ in ROLLUP_SUMS)]
    return _create_table(
        plan.rollup,
        columns,
        "SummingMergeTree",
        partition=exp.func("toYYYYMM", bucket),
        order_by=[bucket, *(_column(d) for d in plan.dims)],
        ttl=_ttl(bucket, plan.ttl_seconds),
    )


def rollup_select(plan: SessionPlan) -> exp.Select:
    """The sums of the sessions table's rows per minute and dimensions: the view's query, and the backfill's."""
    sums = [exp.alias_(sqlglot.parse_one(sql, dialect="clickhouse"), name) for name, sql in ROLLUP_SUMS]  # this module's constants
    return (
        exp.select(exp.alias_(exp.func("toStartOfMinute", _column("start")), "bucket"), *(_column(d) for d in plan.dims), *sums)
        .from_(exp.to_table(plan.table))
        .group_by(_column("bucket"), *(_column(d) for d in plan.dims))
    )


def rollup_view(plan: SessionPlan) -> exp.Create:
    """The materialized view that sums each insert of visit rows into the rollup."""
    props = exp.Properties(expressions=[exp.MaterializedProperty(), exp.ToTableProperty(this=exp.to_table(plan.rollup))])
    return exp.Create(this=exp.to_table(f"{plan.rollup}_mv"), kind="VIEW", exists=True, expression=rollup_select(plan), properties=props)


def rollup_backfill(plan: SessionPlan) -> exp.Insert:
    """The visits a store held before its rollup existed (run once, when the rollup is made, before the flow starts)."""
    return exp.insert(rollup_select(plan), plan.rollup)
