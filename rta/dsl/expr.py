"""Filter expressions over event fields: small immutable nodes and the ``col`` builder.

Nodes hold field *names*, never ``Col`` objects: ``Col`` overloads ``==`` to build
expressions, so it cannot take part in dataclass equality.

A node's ``repr`` is its dataclass repr and must stay so: a rollup's version hashes the reprs of
its parts, filters included (``rta/compiler/naming.py``), so another repr would rename every
table of a filtered metric. How a filter *shows* is :meth:`Expr.code`, the ``col(...)`` code
that builds it, which ``str()``, Jupyter and the reprs of metrics and alerts use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, TypeAlias

from rta.dsl.shown import ELLIPSIS, code, quoted
from rta.errors import DefinitionError

Scalar: TypeAlias = str | int | float | bool
CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]


class Expr(ABC):
    """Base of filter expressions; combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Expr) -> Expr:
        return And(self, _expect_expr(other, "&"))

    def __or__(self, other: Expr) -> Expr:
        return Or(self, _expect_expr(other, "|"))

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        msg = (
            "a filter expression has no truth value; combine filters with & | ~ "
            "instead of and/or/not, and use col(x).isin([...]) instead of `in`"
        )
        raise DefinitionError(msg)

    @abstractmethod
    def fields(self) -> frozenset[str]:
        """Names of the event fields this expression reads."""

    def code(self, values: int | None = None) -> str:
        """The ``col(...)`` code that builds this filter; ``values`` cuts each ``isin`` list to that many.

        >>> ((col("event") == "purchase") & ~col("country").isin(["US", "DE", "FR"])).code(values=2)
        '(col("event") == "purchase") & ~col("country").isin(["US", "DE", … 1 more])'
        """
        return _code(self, values)

    def __str__(self) -> str:
        return self.code()

    def _repr_html_(self) -> str:
        return code(self.code(values=20))


def _expect_expr(value: object, op: str) -> Expr:
    if not isinstance(value, Expr):
        msg = f"cannot combine a filter with {value!r} using {op!r}; both sides must be filters such as col('country') == 'US'"
        raise DefinitionError(msg)
    return value


def _check_scalar(value: object, field: str) -> Scalar:
    if isinstance(value, bool | str | int | float):
        return value
    msg = f"filter on {field!r} compares with {value!r} of type {type(value).__name__}; use a str, int, float or bool"
    raise DefinitionError(msg)


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    """``field <op> value``."""

    field: str
    op: CompareOp
    value: Scalar

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})


@dataclass(frozen=True, slots=True)
class IsIn(Expr):
    """``field IN values``."""

    field: str
    values: tuple[Scalar, ...]

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})


@dataclass(frozen=True, slots=True)
class _Connective(Expr):
    """Two operands joined (:class:`And`, :class:`Or`)."""

    left: Expr
    right: Expr

    def fields(self) -> frozenset[str]:
        return self.left.fields() | self.right.fields()


@dataclass(frozen=True, slots=True)
class And(_Connective):
    """Both operands hold."""


@dataclass(frozen=True, slots=True)
class Or(_Connective):
    """Either operand holds."""


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """The operand does not hold."""

    operand: Expr

    def fields(self) -> frozenset[str]:
        return self.operand.fields()


def _level(expr: Expr) -> int:
    """How tightly the node's code binds, by Python's precedence: inside a tighter node it is parenthesized."""
    if isinstance(expr, Or):
        return 1
    if isinstance(expr, And):
        return 2
    if isinstance(expr, Compare):
        return 0  # `a == 1 & b` would read as `a == (1 & b)`: comparisons are always parenthesized as operands
    return 3 if isinstance(expr, Not) else 4


def _code(expr: Expr, values: int | None) -> str:
    def operand(node: Expr, above: int) -> str:
        text = _code(node, values)
        return f"({text})" if _level(node) < above else text

    match expr:
        case Compare(field=f, op=op, value=v):
            return f"col({quoted(f)}) {op} {quoted(v)}"
        case IsIn(field=f, values=vs):
            shown = [quoted(v) for v in (vs if values is None else vs[:values])]
            if len(shown) < len(vs):
                shown.append(f"{ELLIPSIS} {len(vs) - len(shown):,} more")
            return f"col({quoted(f)}).isin([{', '.join(shown)}])"
        case Not(operand=o):
            return "~" + operand(o, 3)
        case _Connective(left=a, right=b):
            level, sign = (2, "&") if isinstance(expr, And) else (1, "|")
            # Left-associative: a right operand of the same kind keeps its parentheses.
            return f"{operand(a, level)} {sign} {operand(b, level + 1)}"
    return repr(expr)


class Col:
    """A reference to an event field, used to write filters.

    >>> col("event") == "purchase"
    Compare(field='event', op='==', value='purchase')
    >>> col("country").isin(["US", "DE"]) & ~(col("device") == "bot")
    And(left=IsIn(field='country', values=('US', 'DE')), right=Not(operand=Compare(field='device', op='==', value='bot')))
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            msg = f"col() takes a field name, got {name!r}"
            raise DefinitionError(msg)
        self.name = name

    def __repr__(self) -> str:
        return f"col({quoted(self.name)})"

    def _cmp(self, op: CompareOp, value: object) -> Compare:
        return Compare(self.name, op, _check_scalar(value, self.name))

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return self._cmp("==", value)

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return self._cmp("!=", value)

    def __lt__(self, value: object) -> Compare:
        return self._cmp("<", value)

    def __le__(self, value: object) -> Compare:
        return self._cmp("<=", value)

    def __gt__(self, value: object) -> Compare:
        return self._cmp(">", value)

    def __ge__(self, value: object) -> Compare:
        return self._cmp(">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: list[Scalar] | tuple[Scalar, ...] | set[Scalar]) -> IsIn:
        """``field IN values``: the field equals one of ``values``."""
        if isinstance(values, str) or not hasattr(values, "__iter__"):
            msg = f"col({self.name!r}).isin() takes a list of values, got {values!r}"
            raise DefinitionError(msg)
        items = tuple(_check_scalar(v, self.name) for v in values)
        if not items:
            msg = f"col({self.name!r}).isin() got an empty list; a filter that matches nothing is almost surely a mistake"
            raise DefinitionError(msg)
        return IsIn(self.name, items)


def col(name: str) -> Col:
    """Refer to an event field in a filter.

    >>> col("country") == "US"
    Compare(field='country', op='==', value='US')
    """
    return Col(name)
