"""Paths from raw events, in one ClickHouse statement: the most common sequences after an anchor event, people counted.

The statement's levels (docs/architecture.md, "Retention and paths"):

1. the events of the range (and ``where=``), one row each: the person (aliases merged), the time, the
   insert id, whether it matches ``after``, its label, the breakdown values;
2. per person, those events sorted by (time, insert id); people with no anchor are dropped;
3. the labels from the first anchor on, consecutive repeats merged, cut to the anchor and ``steps``
   after it; the breakdown values of the anchor;
4. per group and path: people; ranked in the group (most people first, then the path's order) with
   the group's total for the share, and the first ``top`` kept.

Values are bound parameters; the shape (``steps``) is the definition's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.dsl.expr import Expr
from rta.dsl.paths import Paths
from rta.query.person_events import EventRows, at, call, column, if_, lam, quoted

E = "_e"  # the person's sorted events


def paths_sql(
    paths: Paths,
    stream: StreamPlan,
    start: datetime,
    end: datetime,
    *,
    top: int,
    by: Sequence[str] = (),
    where: Expr | None = None,
    materialized: frozenset[str] = frozenset(),
) -> tuple[exp.Select, dict[str, object]]:
    """Rows ``(by..., path, people, total)``, ``path`` an array of labels, ``total`` the group's people with an anchor."""
    rows = EventRows(stream, materialized)
    one = exp.Literal.number(1)
    anchor = exp.alias_(call("toUInt8", if_(rows.condition(paths.after), one, exp.Literal.number(0))), "_a")
    label = exp.alias_(call("ifNull", call("toString", rows.columns.column(paths.label)), exp.Literal.string("")), "_l")
    events = rows.select(start, end, [anchor, label], by=by, where=where)
    params = rows.params
    row = exp.Tuple(expressions=[column("_ts"), column("_tie"), column("_a"), column("_l"), *(column(f"_b{j}") for j in range(len(by)))])
    people = (
        exp.select(exp.alias_(call("arraySort", call("groupArray", row)), E))
        .from_(events.subquery("_events"))
        .group_by(column("_person"))
        .having(exp.EQ(this=call("max", column("_a")), expression=one.copy()))
    )
    first = call("arrayFirstIndex", lam(exp.EQ(this=call("tupleElement", column("x"), 3), expression=one.copy()), "x"), column(E))
    labels = call("arrayMap", lam(call("tupleElement", column("x"), 4), "x"), call("arraySlice", column(E), column("_i")))
    groups = [exp.alias_(call("tupleElement", at(column(E), column("_i")), 5 + j), name, quoted=True) for j, name in enumerate(by)]
    anchored = exp.select(
        *groups, exp.alias_(labels, "_labels")
    ).from_(exp.select(exp.alias_(first, "_i"), column(E)).from_(people.subquery("_people")).subquery("_first"))  # fmt: skip
    j, x = column("j"), column("x")
    fresh = exp.or_(
        exp.EQ(this=j, expression=one.copy()),
        exp.NEQ(this=x, expression=at(column("_labels"), exp.Sub(this=j.copy(), expression=one.copy()))),
    )
    merged = call("arrayFilter", lam(fresh, "x", "j"), column("_labels"), call("arrayEnumerate", column("_labels")))
    path = exp.alias_(call("arraySlice", merged, 1, params.add(paths.steps + 1, "Int64")), "path")
    keys = [*(quoted(n) for n in by), column("path")]
    counted = exp.select(*(quoted(n) for n in by), path).from_(anchored.subquery("_anchored")).subquery("_paths")
    per_path = exp.select(*keys, exp.alias_(call("count"), "people")).from_(counted).group_by(*(k.copy() for k in keys))
    group = [quoted(n) for n in by]
    order = exp.Order(expressions=[exp.Ordered(this=column("people"), desc=True), exp.Ordered(this=column("path"))])
    ranked = exp.select(
        *keys,
        column("people"),
        exp.alias_(exp.Window(this=call("row_number"), partition_by=group, order=order), "_rank"),
        exp.alias_(exp.Window(this=call("sum", column("people")), partition_by=[g.copy() for g in group]), "total"),
    ).from_(per_path.subquery("_counts"))
    final = (
        exp.select(*(k.copy() for k in keys), column("people"), column("total"))
        .from_(ranked.subquery("_ranked"))
        .where(exp.LTE(this=column("_rank"), expression=params.add(top, "Int64")))
        .order_by(*(g.copy() for g in group), exp.Ordered(this=column("people"), desc=True), column("path"))
    )
    return final, params.values
