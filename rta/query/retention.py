"""Retention from raw events, in one ClickHouse statement: cohorts and who of them came back, counted exactly.

The statement's levels (docs/architecture.md, "Retention and paths"):

1. the events of the range (widened back to the start of its first period) that match ``start`` or
   ``back`` (and ``where=``), one row each: the person (aliases merged), the time, the insert id, two flags;
2. per person and period (``intDiv(ms - origin, every)``): whether they did ``start`` there, whether
   ``back``, and the breakdown values of their first ``start`` event there (by time, then insert id);
3. per person: the periods they started in (their cohorts) and the periods they came back in;
4. per cohort of theirs, period 0 and every later period ``k < periods`` they came back in;
5. per breakdown group, cohort and period: people (each counts once per cell).

This is PostHog's *recurring* retention (``rta/dsl/retention.py``). With ``cohort="first_time"`` the
start events are read from all the raw events kept (the back events still from the range), and each
person keeps only their earliest cohort, if it lies in the range. Values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.dsl.expr import Expr
from rta.dsl.retention import PERIOD_ORIGIN, Retention, period_of
from rta.query.person_events import EventRows, call, column, if_, lam, quoted


def _flag(cond: exp.Expr) -> exp.Expr:
    return call("toUInt8", if_(cond, exp.Literal.number(1), exp.Literal.number(0)))  # an unknown (NULL) filter counts as not


def retention_sql(
    retention: Retention,
    stream: StreamPlan,
    start: datetime,
    end: datetime,
    *,
    by: Sequence[str] = (),
    where: Expr | None = None,
    materialized: frozenset[str] = frozenset(),
) -> tuple[exp.Select, dict[str, object]]:
    """Rows ``(by..., cohort, period, people)``: ``cohort`` is the number of the cohort's period (``rta.dsl.retention.period_of``)."""
    rows = EventRows(stream, materialized)
    began, came = rows.condition(retention.start), rows.condition(retention.back)
    flags = [exp.alias_(_flag(began), "_s"), exp.alias_(_flag(came), "_r")]
    first_time = retention.cohort == "first_time"
    back = came.copy()  # the same filters, bound once (a node may stand in one place of the tree only)
    # First time: a person's first start may lie before the range; their back events there count for no cohort.
    either = exp.or_(began.copy(), exp.and_(back, rows.since(start)) if first_time else back)
    read_from = datetime.fromtimestamp(PERIOD_ORIGIN, UTC) if first_time else start
    events = rows.select(read_from, end, flags, by=by, where=where, only=either)
    params = rows.params
    origin, every = params.add(PERIOD_ORIGIN * 1000, "Int64"), params.add(retention.every_seconds * 1000, "Int64")
    one = exp.Literal.number(1)
    period = exp.alias_(call("intDiv", exp.Sub(this=column("_ts"), expression=origin), every), "_p")
    groups = call("tuple", *(column(f"_b{j}") for j in range(len(by))))  # a tuple even of one: argMin skips a NULL argument
    first = call("argMinIf", groups, exp.Tuple(expressions=[column("_ts"), column("_tie")]), exp.EQ(this=column("_s"), expression=one))
    cells = exp.select(
        column("_person"), period, exp.alias_(call("max", column("_s")), "_started"), exp.alias_(call("max", column("_r")), "_came"),
        *([exp.alias_(first, "_g")] if by else []),
    ).from_(events.subquery("_events")).group_by(column("_person"), column("_p"))  # fmt: skip
    cohort = exp.Tuple(expressions=[column("_p"), column("_g")]) if by else column("_p")
    started, back = exp.EQ(this=column("_started"), expression=one), exp.EQ(this=column("_came"), expression=one)
    lists = [exp.alias_(call("groupArrayIf", cohort, started), "_starts"), exp.alias_(call("groupArrayIf", column("_p"), back), "_backs")]
    person = exp.select(*lists).from_(cells.subquery("_cells")).group_by(column("_person")).having(call("notEmpty", column("_starts")))
    joined = column("_one")
    starts: exp.Expr = column("_starts")
    if first_time:  # the earliest cohort only, and only if it lies in the range
        earliest = call("arraySlice", call("arraySort", starts), 1, 1)
        c = column("c")
        number = call("tupleElement", c, 1) if by else c
        in_range = exp.GTE(this=number, expression=params.add(period_of(start.timestamp(), retention.every_seconds), "Int64"))
        starts = call("arrayFilter", lam(in_range, "c"), earliest)
    unnested = exp.select(exp.alias_(call("arrayJoin", starts), "_one"), column("_backs")).from_(person.subquery("_person"))
    cohorts = exp.select(
        exp.alias_(call("tupleElement", joined, 1) if by else joined.copy(), "cohort"),
        *(exp.alias_(call("tupleElement", call("tupleElement", joined.copy(), 2), j + 1), name, quoted=True) for j, name in enumerate(by)),
        column("_backs"),
    ).from_(unnested.subquery("_joined"))
    k, periods = column("k"), params.add(retention.periods, "Int64")
    later = call(
        "arrayFilter",
        lam(exp.and_(exp.GT(this=k, expression=exp.Literal.number(0)), exp.LT(this=k.copy(), expression=periods)), "k"),
        call("arrayMap", lam(exp.Sub(this=column("b"), expression=column("cohort")), "b"), column("_backs")),
    )
    each = call("arrayJoin", call("arrayConcat", exp.Array(expressions=[exp.Literal.number(0)]), later))
    cells_of = exp.select(column("cohort"), *(quoted(n) for n in by), exp.alias_(each, "period")).from_(cohorts.subquery("_cohorts"))
    keys = [*(quoted(n) for n in by), column("cohort"), column("period")]
    final = (
        exp.select(*keys, exp.alias_(call("count"), "people"))
        .from_(cells_of.subquery("_periods"))
        .group_by(*(c.copy() for c in keys))
        .order_by(*(c.copy() for c in keys))
    )
    return final, params.values
