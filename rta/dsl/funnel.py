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

from rta.dsl.context import register
from rta.dsl.durations import parse_duration
from rta.dsl.expr import Expr
from rta.dsl.funnel_measure import FunnelMeasure, FunnelStep, funnel_step
from rta.dsl.names import check_name
from rta.dsl.person_fields import check_by, check_person_field, check_person_filter, person_stream
from rta.dsl.shown import CELL, LINE, card, code, cut, html_table, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

FunnelOrder = Literal["ordered", "strict", "any"]
ORDERS: tuple[FunnelOrder, ...] = ("ordered", "strict", "any")
MAX_STEPS = 20  # steps are bits of one mask per event, and a funnel of more is a typo


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

    # What alerts read (rta/dsl/funnel_measure.py): ``checkout.conversion.over("1h") < 0.02``.
    @property
    def conversion(self) -> FunnelMeasure:
        """People who reached the last step, of those who entered (0 to 1)."""
        return self.step(len(self.steps)).conversion

    @property
    def entered(self) -> FunnelMeasure:
        """People who did the first step."""
        return self.step(1).people

    @property
    def converted(self) -> FunnelMeasure:
        """People who reached the last step."""
        return self.step(len(self.steps)).people

    def step(self, step: int) -> FunnelStep:
        """Step ``step`` (1-based): ``.people``, ``.conversion`` (of step 1), ``.step_conversion`` (of the step before)."""
        return funnel_step(self, step)

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


# The checks every per-person definition shares (rta/dsl/person_fields.py), by the names the compiler and pages import.
check_funnel_field = check_person_field
check_funnel_filter = check_person_filter


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
    source = person_stream(stream, owner, "funnels are")
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
    split = check_by(source, by, owner)
    labels = tuple(s.code() for s in checked) if names is None else tuple(names)
    if len(labels) != len(checked) or not all(isinstance(n, str) and n for n in labels):
        msg = f"{owner}: names= takes one non-empty name per step ({len(checked)}), got {list(labels)!r}"
        raise DefinitionError(msg)
    result = Funnel(name, source, checked, labels, within, seconds, order, split, description)
    register(result)
    return result
