"""Paths: where people go after a moment, as the most common sequences of their next events.

``paths("after_signup", after=col("event") == "signup", steps=4)`` declares one;
``ws.paths("after_signup", last="7d")`` answers it from raw events (``rta/query/paths.py``;
docs/architecture.md, "Retention and paths"). Per person:

- the *anchor* is their first event (by time, then insert id) that matches ``after``;
- the path is the ``label`` of the anchor and of the events after it, consecutive repeats merged into one
  (a page viewed twice in a row is one step), cut to the anchor and ``steps`` steps after it;
- a path ends early when the person did nothing more (in the range and the filter).

The label is the event's name (the field ``event``) unless ``label=`` names another text field, such as ``"path"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rta.dsl.context import register
from rta.dsl.expr import Expr
from rta.dsl.names import check_name
from rta.dsl.person_fields import check_by, check_person_field, check_person_filter, person_stream
from rta.dsl.shown import CELL, LINE, card, code, cut, listed
from rta.dsl.stream import Stream
from rta.errors import DefinitionError

MAX_STEPS = 10  # every step is a column; longer paths are almost all unique
DEFAULT_LABEL = "event"


@dataclass(frozen=True, slots=True)
class Paths:
    """Declared paths. Build them with :func:`paths`."""

    name: str
    stream: Stream
    after: Expr
    steps: int
    label: str
    by: tuple[str, ...]
    description: str | None = None

    def __repr__(self) -> str:
        """For example ``Paths('after_signup': 4 steps of event; by device)``."""
        split = f"; by {listed(self.by)}" if self.by else ""
        head = f"Paths({self.name!r}: "
        return head + cut(f"{self.steps} steps of {self.label}{split}", LINE - len(head) - 1) + ")"

    def _repr_html_(self) -> str:
        rows = [
            ("stream", self.stream.name),
            ("after", code(self.after.code(20))),
            ("steps", f"{self.steps}, labelled by {self.label}"),
            ("by", listed(self.by, 30) or None),
            ("description", cut(self.description, CELL) if self.description else None),
        ]
        return card("Paths", self.name, rows)


def paths(
    name: str,
    *,
    after: Expr,
    steps: int = 4,
    label: str = DEFAULT_LABEL,
    by: Sequence[str] | str = (),
    description: str | None = None,
    stream: Stream | None = None,
) -> Paths:
    """Declare paths: the most common sequences of the ``steps`` events people do after their first ``after`` event.

    ``label`` is the text field a step is named by: the event's name by default, or a dimension
    such as ``"path"`` (or ``prop.<key>``). ``by`` is the default breakdown, read at the anchor event.

    >>> from rta import stream, col
    >>> events = stream("events", dimensions={"event": str, "path": str}, user="user_id", keep_raw="30d")
    >>> paths("after_signup", after=col("event") == "signup", steps=3, label="path", stream=events)
    Paths('after_signup': 3 steps of path)
    """
    check_name(name, what="paths")
    owner = f"paths {name!r}"
    source = person_stream(stream, owner, "paths are")
    anchor = check_person_filter(source, after, f"{owner} after=")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        msg = f"{owner}: steps= takes a whole number from 1 to {MAX_STEPS}, got {steps!r}"
        raise DefinitionError(msg)
    check_person_field(source, label, f"{owner} label=")
    if label.startswith("person.") or (label in source.fields and label not in source.dimensions):
        msg = (
            f"{owner}: label={label!r} is not a text field of the events; name steps by a dimension "
            f"({', '.join(source.dimensions)}) or a property prop.<key>"
        )
        raise DefinitionError(msg)
    result = Paths(name, source, anchor, steps, label, check_by(source, by, owner), description)
    register(result)
    return result
