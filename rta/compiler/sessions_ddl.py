"""The sessions table of a stream: the flow's signed visit rows (rta/flows/sessions.py).

A plain MergeTree, not a CollapsingMergeTree: readers sum ``sign`` per visit (all its columns) and
keep those summing to one, which is exact whatever ClickHouse has merged, so nothing depends on
``FINAL`` or on when merges run (docs/architecture.md, "Sessions").
"""

from __future__ import annotations

import sqlglot.expressions as exp

from rta.compiler.ddl import _column, _create_table, _ttl
from rta.compiler.plan import SessionPlan

_TIME = "DateTime64(3, 'UTC')"
# Each visit's own columns, in the order the flow writes them; the stream's dimensions follow, then sign.
SESSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "String"), ("person", "String"), ("sid", "String"),
    ("start", _TIME), ("start_id", "String"), ("end", _TIME), ("end_id", "String"),
    ("events", "UInt32"), ("pages", "UInt32"), ("interactions", "UInt32"),
    ("entry", "Nullable(String)"), ("entry_ts", f"Nullable({_TIME})"), ("entry_id", "Nullable(String)"),
    ("exit", "Nullable(String)"), ("exit_ts", f"Nullable({_TIME})"), ("exit_id", "Nullable(String)"),
)  # fmt: skip


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
