"""``ws.properties()``: every property a stream's raw events carry, with its type and how often it occurs.

Built from the workspace's ``read`` primitive, so the embedded store and a remote one answer alike.
Undeclared properties are read from the raw table's maps (``rta/compiler/properties.py``); the
declared dimensions and measures are listed first, as columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import polars as pl
import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.compiler.properties import PROP_PREFIX, PROPS, PROPS_NUM
from rta.compiler.sql_filter import Params
from rta.errors import QueryError

Read = Callable[[str, Mapping[str, object]], pl.DataFrame]
WINDOW = timedelta(days=7)
MAX_LISTED = 1_000
EXAMPLES = 3
COLUMNS: dict[str, pl.DataType] = {"name": pl.String(), "type": pl.String(), "declared": pl.Boolean(), "events": pl.Int64(),
                                   "share": pl.Float64(), "examples": pl.List(pl.String())}  # fmt: skip


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name))


def _since(stream: StreamPlan, params: Params, now: datetime) -> exp.Expr:
    window = min(WINDOW, timedelta(seconds=stream.raw_ttl_seconds or WINDOW.total_seconds()))
    start = (now - window).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return exp.GTE(this=_col(stream.time), expression=params.add(start, "DateTime64(3, 'UTC')"))


def declared_sql(stream: StreamPlan, now: datetime) -> tuple[str, dict[str, object]]:
    """How many events of the window there are, and how many carry each declared dimension and measure."""
    params = Params()
    assert stream.raw_table is not None
    counts: list[exp.Expr] = [exp.alias_(exp.func("count"), "_events")]
    stated = [exp.func("countIf", exp.NEQ(this=_col(d), expression=exp.Literal.string(""))) for d in stream.dims]
    counts += [exp.alias_(count, f"d{i}") for i, count in enumerate(stated)]
    counts += [exp.alias_(exp.func("count", _col(m)), f"m{i}") for i, m in enumerate(stream.measures)]
    select = exp.select(*counts).from_(exp.to_table(stream.raw_table)).where(_since(stream, params, now))
    return select.sql(dialect="clickhouse"), params.values


def undeclared_sql(stream: StreamPlan, now: datetime) -> tuple[str, dict[str, object]]:
    """Per undeclared property key of the window: events carrying it, as a number, as true/false, and examples."""
    params = Params()
    assert stream.raw_table is not None
    key = _col("_key")
    text = exp.Bracket(this=_col(PROPS), expressions=[key.copy()])
    booleans = exp.In(this=text.copy(), expressions=[exp.Literal.string("true"), exp.Literal.string("false")])
    examples = exp.ParameterizedAgg(this="groupUniqArray", expressions=[exp.Literal.number(EXAMPLES)], params=[text.copy()])
    select = (
        exp.select(
            key,
            exp.alias_(exp.func("count"), "events"),
            exp.alias_(exp.func("countIf", exp.func("mapContains", _col(PROPS_NUM), key.copy())), "numbers"),
            exp.alias_(exp.func("countIf", booleans), "booleans"),
            exp.alias_(examples, "examples"),
        )
        .from_(exp.to_table(stream.raw_table))
        .join(exp.Join(this=exp.alias_(exp.Anonymous(this="mapKeys", expressions=[_col(PROPS)]), "_key"), kind="ARRAY"))
        .where(_since(stream, params, now))
        .group_by(key.copy())
        .order_by(exp.Ordered(this=_col("events"), desc=True), key.copy())
        .limit(MAX_LISTED)
    )
    return select.sql(dialect="clickhouse"), params.values


def _kind(events: int, numbers: int, booleans: int) -> str:
    if numbers == events:
        return "number"
    if booleans == events:
        return "boolean"
    return "mixed" if numbers else "string"


def properties(stream: StreamPlan, read: Read, now: datetime) -> pl.DataFrame:
    """One row per property: ``name`` (``prop.<key>`` when undeclared), ``type``, ``declared``, ``events``, ``share``, ``examples``."""
    if stream.raw_table is None:
        msg = f"stream {stream.name!r} keeps no raw events, so no properties beyond its declared ones; declare it with keep_raw='30d'"
        raise QueryError(msg)
    totals = read(*declared_sql(stream, now)).row(0, named=True)
    total = int(totals["_events"])
    rows: list[dict[str, object]] = []
    for i, dim in enumerate(stream.dims):
        rows.append({"name": dim, "type": "string", "declared": True, "events": int(totals[f"d{i}"])})
    for i, measure in enumerate(stream.measures):
        rows.append({"name": measure, "type": "number", "declared": True, "events": int(totals[f"m{i}"])})
    for found in read(*undeclared_sql(stream, now)).iter_rows(named=True):
        events = int(found["events"])
        kind = _kind(events, int(found["numbers"]), int(found["booleans"]))
        rows.append({"name": PROP_PREFIX + str(found["_key"]), "type": kind, "declared": False, "events": events,
                     "examples": sorted(str(e) for e in found["examples"])})  # fmt: skip
    frame = pl.DataFrame(rows, schema={k: v for k, v in COLUMNS.items() if k != "share"})
    share = (pl.col("events") / total) if total else pl.lit(0.0)
    return frame.with_columns(share.alias("share")).select(list(COLUMNS))
