"""Filter expressions over event fields: small immutable nodes and the ``col`` builder.

Nodes hold field *names*, never ``Col`` objects: ``Col`` overloads ``==`` to build
expressions, so it cannot take part in dataclass equality.

A node's ``repr`` is its dataclass repr and must stay so: a rollup's version hashes the reprs of
its parts, filters included (``rta/compiler/naming.py``), so another repr would rename every
table of a filtered metric. How a filter *shows* is :meth:`Expr.code`, the ``col(...)`` code
that builds it, which ``str()``, Jupyter and the reprs of metrics and alerts use.

Missing values follow SQL's three-valued logic, in ClickHouse and in Polars alike: a comparison,
``isin``, ``between`` or text match on a missing value is *unknown*, ``~unknown`` is unknown, and a
filter keeps a row only when it is true. So ``~(col("revenue") > 10)`` keeps neither events with
revenue above 10 nor events without revenue; ``col("revenue").is_null()`` asks for those.
Dimensions are text and a missing one is ``""`` (never null): compare them with strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, TypeAlias

from rta.dsl.shown import ELLIPSIS, code, quoted
from rta.errors import DefinitionError

Scalar: TypeAlias = str | int | float | bool
CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
TextOp = Literal["contains", "startswith", "endswith"]


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
class Between(Expr):
    """``low <= field <= high`` (both ends included, as SQL ``BETWEEN``)."""

    field: str
    low: Scalar
    high: Scalar

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    """The field has no value (measures only: a missing dimension is ``""``)."""

    field: str

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})


@dataclass(frozen=True, slots=True)
class TextMatch(Expr):
    """The field's text contains, starts with or ends with ``text``: literal and case-sensitive."""

    field: str
    op: TextOp
    text: str

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
    return 3 if isinstance(expr, Not) and not isinstance(expr.operand, IsNull) else 4  # is_not_null() is a call


def _code(expr: Expr, values: int | None) -> str:
    def operand(node: Expr, above: int) -> str:
        text = _code(node, values)
        return f"({text})" if _level(node) < above else text

    match expr:
        case Compare(field=f, op=op, value=v):
            return f"col({quoted(f)}) {op} {quoted(v)}"
        case Between(field=f, low=lo, high=hi):
            return f"col({quoted(f)}).between({quoted(lo)}, {quoted(hi)})"
        case IsNull(field=f):
            return f"col({quoted(f)}).is_null()"
        case Not(operand=IsNull(field=f)):
            return f"col({quoted(f)}).is_not_null()"
        case TextMatch(field=f, op=op, text=t):
            return f"col({quoted(f)}).{op}({quoted(t)})"
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

    def between(self, low: Scalar, high: Scalar) -> Between:
        """``low <= field <= high``, both ends included; both strings or both numbers, ``low <= high``."""
        lo, hi = _check_scalar(low, self.name), _check_scalar(high, self.name)
        if isinstance(lo, bool) or isinstance(hi, bool) or isinstance(lo, str) != isinstance(hi, str):
            msg = f"col({self.name!r}).between({lo!r}, {hi!r}) takes two numbers or two strings; e.g. col('revenue').between(10, 50)"
            raise DefinitionError(msg)
        if lo > hi:  # type: ignore[operator]  # same kind, checked above
            msg = f"col({self.name!r}).between({lo!r}, {hi!r}) matches nothing: low is above high; swap them"
            raise DefinitionError(msg)
        return Between(self.name, lo, hi)

    def is_null(self) -> IsNull:
        """The field has no value (a measure the event did not carry)."""
        return IsNull(self.name)

    def is_not_null(self) -> Not:
        """The field has a value: ``~col(x).is_null()``."""
        return Not(IsNull(self.name))

    def _text(self, op: TextOp, text: object) -> TextMatch:
        if not isinstance(text, str) or not text:
            msg = (
                f"col({self.name!r}).{op}() takes non-empty literal text (not a pattern), got {text!r}; "
                f"e.g. col({self.name!r}).{op}('/blog')"
            )
            raise DefinitionError(msg)
        return TextMatch(self.name, op, text)

    def contains(self, text: str) -> TextMatch:
        """The field's text contains ``text`` (literal, case-sensitive; never a pattern)."""
        return self._text("contains", text)

    def startswith(self, text: str) -> TextMatch:
        """The field's text starts with ``text`` (literal, case-sensitive)."""
        return self._text("startswith", text)

    def endswith(self, text: str) -> TextMatch:
        """The field's text ends with ``text`` (literal, case-sensitive)."""
        return self._text("endswith", text)


def col(name: str) -> Col:
    """Refer to an event field in a filter.

    >>> col("country") == "US"
    Compare(field='country', op='==', value='US')
    """
    return Col(name)
