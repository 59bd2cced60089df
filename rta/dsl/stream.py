"""Event streams: where events come from and which fields they carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from rta.dsl.context import register
from rta.dsl.durations import parse_duration
from rta.dsl.names import check_field_name, check_name
from rta.dsl.sessions import Sessions
from rta.dsl.shown import LINE, card, cut, listed
from rta.errors import DefinitionError, did_you_mean

FieldKind = Literal["dimension", "measure", "user", "insert_id"]
_MEASURE_TYPES = {int: "int", float: "float"}


@dataclass(frozen=True, slots=True)
class Stream:
    """A declared event stream. Build it with :func:`stream`."""

    name: str
    time: str
    dimensions: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # (name, "int" | "float")
    user: str | None
    insert_id: str | None
    keep_raw: str | None
    max_lateness: str
    session: Sessions | None = None  # visits, cut in the flow (rta/flows/sessions.py)
    _kinds: MappingProxyType[str, FieldKind] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kinds: dict[str, FieldKind] = {}
        named = [(d, "dimension") for d in self.dimensions] + [(m, "measure") for m, _ in self.measures]
        named += [(f, k) for f, k in ((self.user, "user"), (self.insert_id, "insert_id")) if f]
        for name, kind in named:
            check_field_name(name, stream=self.name)
            if name in kinds or name == self.time:
                msg = f"stream {self.name!r}: field {name!r} is declared twice; each field needs one role"
                raise DefinitionError(msg)
            kinds[name] = kind  # type: ignore[assignment]
        object.__setattr__(self, "_kinds", MappingProxyType(kinds))

    @property
    def fields(self) -> MappingProxyType[str, FieldKind]:
        """Every field an aggregation or filter may use, with its role."""
        return self._kinds

    def measure_names(self) -> tuple[str, ...]:
        """Names of the numeric fields."""
        return tuple(m for m, _ in self.measures)

    def kind_of(self, name: str, *, owner: str) -> FieldKind:
        """The role of field ``name``; raise naming ``owner`` when it does not exist."""
        try:
            return self._kinds[name]
        except KeyError:
            msg = f"{owner}: stream {self.name!r} has no field {name!r}; {did_you_mean(name, list(self._kinds))}"
            raise DefinitionError(msg) from None

    def __repr__(self) -> str:
        """For example ``Stream('events': dimensions event, country; measures revenue; keep raw 30d)``."""
        parts = [f"dimensions {listed(self.dimensions)}" if self.dimensions else "no dimensions"]
        if self.measures:
            parts.append(f"measures {listed(self.measure_names())}")
        if self.keep_raw:
            parts.append(f"keep raw {self.keep_raw}")
        if self.session:
            parts.append(f"sessions {self.session.gap}")
        start = f"Stream({self.name!r}: "
        return start + cut("; ".join(parts), LINE - len(start) - 1) + ")"

    def _repr_html_(self) -> str:
        rows = [
            ("time", self.time),
            ("dimensions", listed(self.dimensions, 30) or "none"),
            ("measures", listed((f"{m} ({t})" for m, t in self.measures), 30) or "none"),
            ("user", self.user),
            ("insert id", self.insert_id),
            ("raw events", f"kept {self.keep_raw}" if self.keep_raw else "not kept"),
            ("max lateness", self.max_lateness),
            ("sessions", repr(self.session) if self.session else "none"),
        ]
        return card("Stream", self.name, rows)


def stream(
    name: str,
    *,
    time: str = "timestamp",
    dimensions: dict[str, type] | list[str] | tuple[str, ...] = (),
    measures: dict[str, type] | None = None,
    user: str | None = "user_id",
    insert_id: str | None = "insert_id",
    keep_raw: str | None = None,
    max_lateness: str | None = None,
    session: Sessions | bool | None = None,
) -> Stream:
    """Declare an event stream: its time field, dimensions (strings) and measures (numbers).

    Fields are read from the top level of each JSON event or from its ``properties`` object.
    ``keep_raw`` keeps raw events for that long; ``max_lateness`` (default: ``keep_raw``, else
    ``"30d"``) is how late an event may arrive and still be counted in its own bucket.
    ``session`` cuts the events into visits in the flow (``True``: :func:`rta.sessions` defaults,
    30 minutes of gap, at most 24 hours); session metrics (``visits``, ``bounce_rate``, ...) read them.

    >>> events = stream("events", dimensions={"event": str, "country": str}, measures={"revenue": float})
    >>> events.fields["revenue"], events.fields["user_id"]
    ('measure', 'user')
    """
    check_name(name, what="stream")
    if isinstance(dimensions, dict):
        for dim, typ in dimensions.items():
            if typ is not str:
                msg = f"stream {name!r}: dimension {dim!r} has type {typ!r}; dimensions are strings (str), numbers go in measures"
                raise DefinitionError(msg)
        dims = tuple(dimensions)
    else:
        dims = tuple(dimensions)
    pairs: list[tuple[str, str]] = []
    for measure, typ in (measures or {}).items():
        if typ not in _MEASURE_TYPES:
            msg = f"stream {name!r}: measure {measure!r} has type {typ!r}; measures are int or float"
            raise DefinitionError(msg)
        pairs.append((measure, _MEASURE_TYPES[typ]))
    if keep_raw is not None:
        parse_duration(keep_raw, what=f"keep_raw of stream {name!r}")
    lateness = max_lateness or keep_raw or "30d"
    parse_duration(lateness, what=f"max_lateness of stream {name!r}")
    check_name(time, what=f"time field of stream {name!r}")
    visits = Sessions() if session is True else session or None
    if visits is not None and not isinstance(visits, Sessions):
        msg = f"stream {name!r}: session= takes sessions(gap=..., max=...) or True, got {session!r}"
        raise DefinitionError(msg)
    if visits is not None and not user:
        msg = f"stream {name!r}: sessions are per person, so the stream needs a user field (user='user_id')"
        raise DefinitionError(msg)
    result = Stream(name, time, dims, tuple(pairs), user, insert_id, keep_raw, lateness, visits)
    register(result)
    return result
