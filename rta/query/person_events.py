"""The first level of every per-person statement (funnels, retention, paths): the range's events, one row each.

Each row has the event's person (its user, or the user its anonymous id was aliased to:
``rta/contract/people.py``), its time in milliseconds (``_ts``) and insert id (``_tie``: it orders
events of the same millisecond, so answers do not depend on arrival), then what the kind asks for:
masks of its filters, labels, the breakdown values (``_b0``, ``_b1``, ...). Values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl.expr import Expr
from rta.query.raw_columns import RawColumns

RAW_TIME = "DateTime64(3, 'UTC')"


def call(name: str, *args: exp.Expr | int) -> exp.Expr:
    """``name(args...)``, whole numbers as literals."""
    return exp.Anonymous(this=name, expressions=[exp.Literal.number(a) if isinstance(a, int) else a for a in args])


def column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name))


def at(array: exp.Expr, index: exp.Expr | int) -> exp.Expr:
    """``array[index]``, 1-based (``arrayElement``: sqlglot would shift a bracket's literal index)."""
    return call("arrayElement", array, index)


def lam(body: exp.Expr, *names: str) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(n) for n in names])


def if_(cond: exp.Expr, yes: exp.Expr, no: exp.Expr) -> exp.Expr:
    return call("if", cond, yes, no)


def quoted(name: str) -> exp.Column:
    """A breakdown's output column, named as asked (``prop.plan``)."""
    return exp.column(exp.to_identifier(name, quoted=True))


class EventRows:
    """Builds one per-person statement's event rows; collects its bound values (``params``) as it goes."""

    def __init__(self, stream: StreamPlan, materialized: frozenset[str] = frozenset()) -> None:
        self.stream = stream
        self.params = Params()
        self.columns = RawColumns(stream, self.params, materialized)

    def condition(self, node: Expr) -> exp.Expr:
        """A filter of the definition or the request, in SQL."""
        c = self.columns
        return filter_sql(node, self.params, as_string=c.text_fields, table=c.table, resolve=c.resolve)

    def since(self, when: datetime) -> exp.Expr:
        """The event is at or after ``when``."""
        time = self.columns.column(self.stream.time)
        return exp.GTE(this=time, expression=self.params.add(when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], RAW_TIME))

    def select(
        self,
        start: datetime,
        end: datetime,
        outputs: Sequence[exp.Expr],
        *,
        by: Sequence[str] = (),
        where: Expr | None = None,
        only: exp.Expr | None = None,
    ) -> exp.Select:
        """Rows ``(_person, _ts, _tie, *outputs, _b0, ...)`` of the events in ``[start, end)`` where ``where`` (and ``only``) holds."""
        c = self.columns
        time = c.column(self.stream.time)
        keep: list[exp.Expr] = [
            exp.GTE(this=time, expression=self.params.add(start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], RAW_TIME)),
            exp.LT(this=time.copy(), expression=self.params.add(end.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], RAW_TIME)),
        ]
        if where is not None:
            keep.append(self.condition(where))
        if only is not None:
            keep.append(only)
        tie = c.column(self.stream.insert_id) if self.stream.insert_id else exp.Literal.string("")
        rows = [
            exp.alias_(c.person(), "_person"),
            exp.alias_(call("toUnixTimestamp64Milli", time.copy()), "_ts"),
            exp.alias_(tie, "_tie"),
            *outputs,
            *(exp.alias_(c.column(name), f"_b{j}") for j, name in enumerate(by)),
        ]
        return c.join(exp.select(*rows).from_(exp.to_table(c.table)).where(exp.and_(*keep)))
