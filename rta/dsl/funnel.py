"""Funnels: the steps people take in order, within a time, counted exactly per person.

``funnel("checkout", [col("event") == "page_view", col("event") == "add_to_cart", col("event") == "purchase"],
within="1h")`` declares one; ``ws.funnel("checkout", last="7d", by="device")`` answers it from raw
events (``rta/query/funnels.py``; docs/architecture.md, "Funnels"). The orders are PostHog's:

- ``"ordered"`` (the default, PostHog's *sequential*): each step after the one before, other events between allowed;
- ``"strict"``: each step the person's very next event after the one before (nothing else between);
- ``"any"``: the steps in any order; step *k* is reached by doing any *k* of them within the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rta.dsl.context import latest, register
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.dsl.filter_kinds import check_filter_kinds
from rta.dsl.names import check_name
from rta.dsl.shown import CELL, LINE, card, code, cut, html_table, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

FunnelOrder = Literal["ordered", "strict", "any"]
ORDERS: tuple[FunnelOrder, ...] = ("ordered", "strict", "any")
MAX_STEPS = 20  # steps are bits of one mask per event, and a funnel of more is a typo
#: Names a funnel may filter and split by besides the stream's fields: any property, any trait of the person.
RAW_PREFIXES = ("prop.", "person.")


@dataclass(frozen=True, slots=True)
class Funnel:
    """A declared funnel. Build it with :func:`funnel`."""

    name: str
    stream: Stream
    steps: tuple[Expr, ...]
    names: tuple[str, ...]  # one label per step: given, or the step's filter as code
    within: str
    within_seconds: int
    order: FunnelOrder
    by: tuple[str, ...]
    description: str | None = None

    def __repr__(self) -> str:
        """For example ``Funnel('checkout': 3 steps within 1h, ordered; by device)``."""
        split = f"; by {listed(self.by)}" if self.by else ""
        start = f"Funnel({self.name!r}: "
        return start + cut(f"{len(self.steps)} steps within {self.within}, {self.order}{split}", LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        steps = html_table(
            ["step", "name", "filter"], [(i + 1, n, code(s.code(20))) for i, (n, s) in enumerate(zip(self.names, self.steps, strict=True))]
        )
        rows = [
            ("stream", self.stream.name),
            ("within", self.within),
            ("order", self.order),
            ("by", listed(self.by, 30) or None),
            ("description", cut(self.description, CELL) if self.description else None),
            ("steps", steps),
        ]
        return card("Funnel", self.name, rows)


def _raw_name(name: str) -> bool:
    return any(name.startswith(p) and len(name) > len(p) for p in RAW_PREFIXES)


def check_funnel_field(stream: Stream, name: object, owner: str) -> str:
    """``name`` if a funnel over ``stream`` can read it (a field, ``prop.<key>``, ``person.<trait>``), else raise."""
    if not isinstance(name, str):
        msg = f"{owner}: expected a field name, got {name!r}"
        raise DefinitionError(msg)
    if _raw_name(name) or name in stream.fields:
        return name
    msg = (
        f"{owner}: stream {stream.name!r} has no field {name!r}; {did_you_mean(name, list(stream.fields))}; "
        "undeclared properties are prop.<key> and people's traits person.<trait>"
    )
    raise DefinitionError(msg)


def check_funnel_filter(stream: Stream, node: object, owner: str) -> Expr:
    """A filter a funnel can use: an expression over known fields whose values suit their kinds."""
    if not isinstance(node, Expr):
        msg = f"{owner}: expected a filter such as col('event') == 'purchase', got {node!r}"
        raise DefinitionError(msg)
    for name in sorted(node.fields()):
        check_funnel_field(stream, name, owner)
    check_filter_kinds(node, stream.fields, owner)
    return node


def funnel(
    name: str,
    steps: Sequence[Expr],
    *,
    within: str = "1d",
    order: FunnelOrder = "ordered",
    by: Sequence[str] | str = (),
    names: Sequence[str] | None = None,
    description: str | None = None,
    stream: Stream | None = None,
) -> Funnel:
    """Declare a funnel: people who did ``steps[0]``, then ``steps[1]``, ..., all within ``within`` of the first.

    ``order``: ``"ordered"`` (default; other events may come between steps), ``"strict"`` (each
    step is the person's next event), ``"any"`` (the steps in any order). ``by`` is the default
    breakdown (declared dimensions, ``prop.<key>``, ``person.<trait>``), read at the first step.
    The stream defaults to the most recently declared one in the same metrics file.

    >>> from rta import stream, col
    >>> events = stream("events", dimensions={"event": str, "device": str}, keep_raw="30d")
    >>> funnel("signup", [col("event") == "visit", col("event") == "signup"], within="1h", stream=events)
    Funnel('signup': 2 steps within 1h, ordered)
    """
    check_name(name, what="funnel")
    owner = f"funnel {name!r}"
    source = stream if stream is not None else latest(Stream)
    if not isinstance(source, Stream):
        msg = f"{owner}: no stream to read from; declare a stream first in the same file or pass stream=<your stream>"
        raise DefinitionError(msg)
    if source.keep_raw is None or source.user is None:
        missing = (
            "keeps no raw events (declare it with keep_raw='30d')" if source.keep_raw is None else "declares no user field (user='user_id')"
        )
        msg = f"{owner}: funnels are counted per person from raw events, but stream {source.name!r} {missing}"
        raise DefinitionError(msg)
    if isinstance(steps, Expr) or not isinstance(steps, Sequence) or len(steps) < 2:
        got = f"{len(steps)} step" if isinstance(steps, Sequence) and not isinstance(steps, Expr) else repr(steps)
        msg = f"{owner}: a funnel needs a list of at least 2 steps, got {got}; for example [col('event') == 'view', col('event') == 'buy']"
        raise DefinitionError(msg)
    if len(steps) > MAX_STEPS:
        msg = f"{owner}: at most {MAX_STEPS} steps, got {len(steps)}"
        raise DefinitionError(msg)
    checked = tuple(check_funnel_filter(source, s, f"{owner} step {i + 1}") for i, s in enumerate(steps))
    if order not in ORDERS:
        msg = f"{owner}: order={order!r} is not one of {', '.join(repr(o) for o in ORDERS)}; {did_you_mean(str(order), list(ORDERS))}"
        raise DefinitionError(msg)
    seconds = parse_duration(within, what=f"within= of {owner}")
    split = (by,) if isinstance(by, str) else tuple(by)
    for field in split:
        check_funnel_field(source, field, f"{owner} by=")
    if len(set(split)) != len(split):
        msg = f"{owner}: by= repeats a field: {list(split)!r}"
        raise DefinitionError(msg)
    labels = tuple(s.code() for s in checked) if names is None else tuple(names)
    if len(labels) != len(checked) or not all(isinstance(n, str) and n for n in labels):
        msg = f"{owner}: names= takes one non-empty name per step ({len(checked)}), got {list(labels)!r}"
        raise DefinitionError(msg)
    result = Funnel(name, source, checked, labels, within, seconds, order, split, description)
    register(result)
    return result
