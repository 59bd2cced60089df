"""Metrics: an aggregation over a stream with an optional filter, or a formula of metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from rta.dsl.aggregates import Aggregation, Count
from rta.dsl.context import latest, register
from rta.dsl.expr import Expr
from rta.dsl.filter_kinds import check_filter_kinds
from rta.dsl.names import check_name
from rta.dsl.shown import CELL, ITEMS, LINE, card, code, cut, listed, quoted
from rta.dsl.stream import Stream
from rta.errors import DefinitionError

if TYPE_CHECKING:
    from rta.dsl.alert import Window

ArithOp = Literal["+", "-", "*", "/"]
Operand: TypeAlias = "Metric | Arith | float"


class _Arithmetic:
    """Operators that build formulas; shared by metrics and formulas."""

    __slots__ = ()

    def __add__(self, other: Operand) -> Arith:
        return Arith("+", self, _operand(other))  # type: ignore[arg-type]

    def __sub__(self, other: Operand) -> Arith:
        return Arith("-", self, _operand(other))  # type: ignore[arg-type]

    def __mul__(self, other: Operand) -> Arith:
        return Arith("*", self, _operand(other))  # type: ignore[arg-type]

    def __truediv__(self, other: Operand) -> Arith:
        return Arith("/", self, _operand(other))  # type: ignore[arg-type]

    def __radd__(self, other: Operand) -> Arith:
        return Arith("+", _operand(other), self)  # type: ignore[arg-type]

    def __rsub__(self, other: Operand) -> Arith:
        return Arith("-", _operand(other), self)  # type: ignore[arg-type]

    def __rmul__(self, other: Operand) -> Arith:
        return Arith("*", _operand(other), self)  # type: ignore[arg-type]

    def __rtruediv__(self, other: Operand) -> Arith:
        return Arith("/", _operand(other), self)  # type: ignore[arg-type]


def _operand(value: object) -> Metric | Arith | float:
    if isinstance(value, Metric | Arith):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    msg = f"a metric formula can combine metrics and numbers, got {value!r}"
    raise DefinitionError(msg)


@dataclass(frozen=True, slots=True)
class Arith(_Arithmetic):
    """``left <op> right`` over metrics and numbers, evaluated at query time."""

    op: ArithOp
    left: Metric | Arith | float
    right: Metric | Arith | float

    def metrics(self) -> tuple[Metric, ...]:
        """Metrics the formula reads, in order, without repeats."""
        found: list[Metric] = []
        for side in (self.left, self.right):
            if isinstance(side, Metric):
                found.extend(side.base_metrics())
            elif isinstance(side, Arith):
                found.extend(side.metrics())
        return tuple(dict.fromkeys(found))

    def __repr__(self) -> str:
        def show(side: object) -> str:
            return side.name if isinstance(side, Metric) else f"({side!r})" if isinstance(side, Arith) else repr(side)

        return f"{show(self.left)} {self.op} {show(self.right)}"


@dataclass(frozen=True, slots=True)
class Metric(_Arithmetic):
    """A named metric. Build it with :func:`metric`."""

    name: str
    stream: Stream | None
    aggregation: Aggregation | None
    formula: Arith | None = None
    where: Expr | None = None
    unit: str | None = None
    description: str | None = None

    @property
    def is_derived(self) -> bool:
        """True when the metric is a formula computed at query time."""
        return self.formula is not None

    def base_metrics(self) -> tuple[Metric, ...]:
        """The stored metrics this one is computed from (itself when it is stored)."""
        return self.formula.metrics() if self.formula is not None else (self,)

    def _no_window(self, other: object) -> bool:
        msg = f"compare a window of metric {self.name!r}, not the metric: for example {self.name}.over('5m') > {other!r}"
        raise DefinitionError(msg)

    __gt__ = __ge__ = __lt__ = __le__ = _no_window

    def over(self, window: str) -> Window:
        """This metric over the last ``window``, to compare in an alert: ``errors.over("5m") > 100``."""
        from rta.dsl.alert import over

        return over(self, window)

    def definition(self, values: int | None = None) -> str:
        """The metric as written: its formula, or its aggregation and filter (``values`` cuts ``isin`` lists).

        >>> from rta import stream, count, col
        >>> events = stream("events", dimensions={"event": str})
        >>> metric("purchases", count(), where=col("event") == "purchase", stream=events).definition()
        'count() where col("event") == "purchase"'
        """
        if self.formula is not None:
            return repr(self.formula)
        where = f" where {self.where.code(values)}" if self.where is not None else ""
        return _show_aggregation(self.aggregation) + where

    def __repr__(self) -> str:
        start = f"Metric({self.name!r}: "
        return start + cut(self.definition(values=ITEMS), LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        reads = listed((m.name for m in self.base_metrics()), 20) if self.formula is not None else None
        rows = [
            ("definition", code(self.definition(values=20), CELL)),
            ("stream", self.stream.name if self.stream is not None else None),
            ("reads", reads),
            ("unit", self.unit),
            ("description", self.description),
        ]
        return card("Metric", self.name, rows)


def _show_aggregation(agg: Aggregation | None) -> str:
    if agg is None or isinstance(agg, Count):
        return "count()"
    args = [quoted(agg.field)] + ([repr(agg.q)] if hasattr(agg, "q") else [])
    return f"{agg.fn}({', '.join(args)})"


def metric(
    name: str,
    what: Aggregation | Arith | Metric,
    *,
    where: Expr | None = None,
    unit: str | None = None,
    description: str | None = None,
    stream: Stream | None = None,
) -> Metric:
    """Declare a metric: an aggregation (optionally filtered) or a formula of other metrics.

    The stream defaults to the most recently declared one in the same metrics file.

    >>> from rta import stream, count, distinct, col
    >>> events = stream("events", dimensions={"event": str})
    >>> purchases = metric("purchases", count(), where=col("event") == "purchase", stream=events)
    >>> visitors = metric("visitors", distinct("user_id"), stream=events)
    >>> metric("conversion", purchases / visitors, unit="%")
    Metric('conversion': purchases / visitors)
    """
    check_name(name, what="metric")
    owner = f"metric {name!r}"
    if isinstance(what, Metric):
        msg = f"{owner}: got the metric {what.name!r} itself; give an aggregation such as count() or a formula such as {what.name} / other"
        raise DefinitionError(msg)
    if isinstance(what, Arith):
        if where is not None:
            parts = ", ".join(m.name for m in what.metrics())
            msg = f"{owner}: a formula cannot take where=; put the filter on the metrics it combines ({parts})"
            raise DefinitionError(msg)
        result = Metric(name, None, None, what, None, unit, description)
        register(result)
        return result
    if not isinstance(what, Aggregation):
        msg = (
            f"{owner}: expected an aggregation such as count(), total('revenue'), distinct('user_id') or a formula of metrics, got {what!r}"
        )
        raise DefinitionError(msg)
    source = stream if stream is not None else latest(Stream)
    if not isinstance(source, Stream):
        msg = (
            f"{owner}: no stream to read from; declare a stream first in the same file or pass stream=<your stream> "
            "(metric files load in alphabetical order, so a stream declared in another file is seen only by later files)"
        )
        raise DefinitionError(msg)
    if what.field is not None:
        kind = source.kind_of(what.field, owner=owner)
        if what.accepts == "measure" and kind != "measure":
            valid = ", ".join(repr(m) for m in source.measure_names()) or "none declared"
            msg = (
                f"{owner}: {what.fn}() needs a numeric measure, but {what.field!r} is a {kind}; measures of stream {source.name!r}: {valid}"
            )
            raise DefinitionError(msg)
    if where is not None:
        if not isinstance(where, Expr):
            msg = f"{owner}: where= takes a filter such as col('event') == 'purchase', got {where!r}"
            raise DefinitionError(msg)
        for field_name in sorted(where.fields()):
            source.kind_of(field_name, owner=f"{owner} where=")
        check_filter_kinds(where, source.fields, f"{owner} where=")
    result = Metric(name, source, what, None, where, unit, description)
    register(result)
    return result
