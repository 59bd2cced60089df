"""Aggregations a metric can apply: tiny nodes, each knowing which field types it accepts."""

from __future__ import annotations

from dataclasses import dataclass

from rta.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class Aggregation:
    """Base of aggregation nodes. ``field`` is None for ``count()``."""

    field: str | None = None

    #: Field kinds the aggregation accepts: "measure" (numbers), "any" (dimensions and ids too).
    accepts = "measure"
    #: The DSL function that builds the node, for error messages.
    fn = "count"


@dataclass(frozen=True, slots=True)
class Count(Aggregation):
    """Number of events."""


@dataclass(frozen=True, slots=True)
class Sum(Aggregation):
    """Sum of a measure."""

    fn = "total"


@dataclass(frozen=True, slots=True)
class Min(Aggregation):
    """Smallest value of a measure."""

    fn = "minimum"


@dataclass(frozen=True, slots=True)
class Max(Aggregation):
    """Largest value of a measure."""

    fn = "maximum"


@dataclass(frozen=True, slots=True)
class Avg(Aggregation):
    """Mean of a measure, stored as sum and count so it merges exactly."""

    fn = "average"


@dataclass(frozen=True, slots=True)
class Distinct(Aggregation):
    """Approximate number of distinct values (a mergeable uniqCombined64 sketch)."""

    fn = "distinct"

    accepts = "any"


@dataclass(frozen=True, slots=True)
class Quantile(Aggregation):
    """Approximate quantile of a measure (a mergeable t-digest)."""

    fn = "quantile"

    q: float = 0.5


def _field(name: object, fn: str) -> str:
    if not isinstance(name, str) or not name:
        msg = f"{fn}() takes a field name, got {name!r}"
        raise DefinitionError(msg)
    return name


def count() -> Count:
    """Count events.

    >>> count()
    Count(field=None)
    """
    return Count()


def total(field: str) -> Sum:
    """Sum a measure, e.g. revenue.

    >>> total("revenue")
    Sum(field='revenue')
    """
    return Sum(_field(field, "total"))


def minimum(field: str) -> Min:
    """Smallest value of a measure.

    >>> minimum("load_ms")
    Min(field='load_ms')
    """
    return Min(_field(field, "minimum"))


def maximum(field: str) -> Max:
    """Largest value of a measure.

    >>> maximum("load_ms")
    Max(field='load_ms')
    """
    return Max(_field(field, "maximum"))


def average(field: str) -> Avg:
    """Mean of a measure, merged exactly across buckets (sum / count).

    >>> average("load_ms")
    Avg(field='load_ms')
    """
    return Avg(_field(field, "average"))


def distinct(field: str) -> Distinct:
    """Approximate distinct count (about 1% error), mergeable from minutes to days.

    >>> distinct("user_id")
    Distinct(field='user_id')
    """
    return Distinct(_field(field, "distinct"))


def quantile(field: str, q: float) -> Quantile:
    """Approximate quantile ``q`` (0 < q < 1) of a measure, from a mergeable t-digest.

    >>> quantile("load_ms", 0.95)
    Quantile(field='load_ms', q=0.95)
    """
    if not isinstance(q, int | float) or isinstance(q, bool) or not 0 < q < 1:
        msg = f"quantile({field!r}, q) needs 0 < q < 1, got {q!r}; for the 95th percentile write 0.95"
        raise DefinitionError(msg)
    return Quantile(_field(field, "quantile"), float(q))
