"""The dataflow as frozen step configs: ``rta compile`` prints them, ``build_dataflow`` builds them.

Each config is one top-level Bytewax operator: its ``step_id``, the steps it reads from
(``ups``) and what the operator needs to build its logic. The compiler may not import Bytewax
(layers import downward), so the lookup table from config type to operator lives in
:mod:`rta.flows.dataflow`; the printed flow and the built one come from the same tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rta.compiler.aggregations import flow_op
from rta.compiler.ddl import STATS_TABLE
from rta.compiler.naming import step_id
from rta.compiler.people_ddl import ALIASES_TABLE, TRAITS_TABLE
from rta.compiler.plan import Part, RollupPlan, StreamPlan
from rta.compiler.sql_filter import show_filter
from rta.errors import CompilationError

Row = tuple[str, str, str]  # one printed line: step id, operator, detail
Merge = Literal["stack tallies", "stack events", "merge partials"]


@dataclass(frozen=True, slots=True)
class FlowStep:
    """One top-level operator of the dataflow (subclasses name it in ``op``)."""

    step_id: str
    op: ClassVar[str]

    @property
    def ups(self) -> tuple[str, ...]:
        """The step ids this step reads from."""
        return ()

    def detail(self) -> str:
        """What the step does, for ``rta compile``."""
        return ""

    def rows(self) -> tuple[Row, ...]:
        """The printed lines of this step (one, unless it lists more)."""
        return ((self.step_id, self.op, self.detail()),)


@dataclass(frozen=True, slots=True)
class _After(FlowStep):
    """A step that reads one upstream step."""

    up: str

    @property
    def ups(self) -> tuple[str, ...]:
        return (self.up,)


@dataclass(frozen=True, slots=True)
class Input(FlowStep):
    """The source batches (several sources side by side add ``input_2``… and merge them in ``inputs``)."""

    op: ClassVar[str] = "input"

    def detail(self) -> str:
        return "batches with deterministic keys (log | files | demo)"


@dataclass(frozen=True, slots=True)
class Parse(_After):
    """Each batch normalized by its stream's plan: one line per stream, one Bytewax step."""

    streams: tuple[StreamPlan, ...]
    op: ClassVar[str] = "map"

    def rows(self) -> tuple[Row, ...]:
        if not self.streams:
            return ((self.step_id, self.op, "no streams defined"),)
        rows = []
        for s in self.streams:
            fields = ", ".join((s.time, *s.dims, *s.measures, *(f for f in (s.user, s.insert_id) if f)))
            rejected = f"late > {s.max_lateness_seconds}s, future > {s.max_future_seconds}s or invalid are tallied, not counted"
            rows.append((self.step_id, self.op, f"{s.name}: -> Arrow [{fields}]; {rejected}"))
        return tuple(rows)


@dataclass(frozen=True, slots=True)
class Outcomes(_After):
    """The tally of outcomes of each parsed batch (the time field of its stream gives the watermark)."""

    streams: tuple[StreamPlan, ...]
    op: ClassVar[str] = "map"

    def detail(self) -> str:
        return "events per outcome"


@dataclass(frozen=True, slots=True)
class RawEvents(_After):
    """A kept stream's events as they are stored raw."""

    stream: StreamPlan
    op: ClassVar[str] = "filter_map"

    def detail(self) -> str:
        return "raw events"


@dataclass(frozen=True, slots=True)
class PeopleRows(_After):
    """A stream's rows for one people table: the traits events set, or the anonymous ids linked to users."""

    stream: StreamPlan
    table: str  # TRAITS_TABLE or ALIASES_TABLE
    op: ClassVar[str] = "filter_map"

    def detail(self) -> str:
        if self.table == TRAITS_TABLE:
            return f"person traits of identify/context.traits, latest per ({self.stream.user}, key) of the batch"
        return f"aliases: alias previousId, or anonymousId of a message with a userId -> {self.stream.user}"


@dataclass(frozen=True, slots=True)
class Partials(_After):
    """A rollup's partial aggregates of each batch of its stream: one line per part."""

    rollup: RollupPlan
    time: str  # the stream's time column: each batch's newest event, for the progress line's lag
    op: ClassVar[str] = "filter_map"

    def rows(self) -> tuple[Row, ...]:
        by = ", ".join(("minute", *self.rollup.dims))
        head = (self.step_id, self.op, f"per batch, group by {by}:")
        return (head, *(("", "", f"  {_describe_part(p)}") for p in self.rollup.parts))


@dataclass(frozen=True, slots=True)
class Sessionize(_After):
    """A stream's visits (rta/flows/sessions.py): every batch of it, in one keyed state (``Route`` to
    ``"one"`` before, ``Unkey`` after), joined to the open sessions; the changed visits go out as signed rows."""

    stream: StreamPlan
    op: ClassVar[str] = "stateful_flat_map"

    def detail(self) -> str:
        plan = self.stream.sessions
        assert plan is not None
        open_for = plan.gap_seconds + plan.lateness_seconds
        return f"{self.stream.name} visits: gap {plan.gap_seconds}s, max {plan.max_seconds}s, open {open_for}s past the watermark"


@dataclass(frozen=True, slots=True)
class Route(_After):
    """Key each item: by its source partition, or every insert to the one store partition."""

    to: Literal["partition", "store", "one"]
    op: ClassVar[str] = "key_on"

    def detail(self) -> str:
        if self.to == "partition":
            return "by source partition"
        if self.to == "one":
            return "every batch to one key (one state holds every person's open visits)"
        return "every insert to the one store partition (one process owns an embedded store)"


@dataclass(frozen=True, slots=True)
class Flush(_After):
    """Hold a table's rows per partition until the source marks a flush, then emit one insert."""

    table: str
    merge: Merge
    rollup: RollupPlan | None = None  # "merge partials" merges by this rollup's parts
    op: ClassVar[str] = "stateful"

    def __post_init__(self) -> None:
        if (self.merge == "merge partials") != (self.rollup is not None):
            msg = f"flush step {self.step_id!r}: {self.merge!r} needs a rollup exactly when it merges partials; got {self.rollup!r}"
            raise CompilationError(msg)

    def detail(self) -> str:
        return f"{self.merge} until the source marks a flush or input ends -> {self.table}"


@dataclass(frozen=True, slots=True)
class Unkey(_After):
    """Drop the routing key again."""

    op: ClassVar[str] = "key_rm"


@dataclass(frozen=True, slots=True)
class Writes(FlowStep):
    """Every table's inserts in one stream."""

    inputs: tuple[str, ...]
    op: ClassVar[str] = "merge"

    @property
    def ups(self) -> tuple[str, ...]:
        return self.inputs

    def detail(self) -> str:
        return "all inserts"


@dataclass(frozen=True, slots=True)
class StoreOutput(_After):
    """The store sink: one insert per table per flush group; the views fill ``tables``."""

    tables: tuple[str, ...]
    op: ClassVar[str] = "output"

    def detail(self) -> str:
        return f"one insert per table per flush group, token from its batch keys; views fill {', '.join(self.tables)}"


def _describe_part(part: Part) -> str:
    what = flow_op(part.flow_op).show(part.field)
    where = f" where {show_filter(part.where)}" if part.where is not None else ""
    return f"{part.column} = {what}{where}"


def _flushed(name: str, up: str, table: str, merge: Merge, rollup: RollupPlan | None = None) -> tuple[FlowStep, ...]:
    """Route a table's rows by source partition, flush them in groups, drop the key."""
    route, flush = step_id(name, "route"), step_id(name, "flush")
    return (
        Route(route, up, "partition"),
        Flush(flush, route, table, merge, rollup),
        Unkey(step_id(name, "unkey"), flush),
    )


def flow_of(streams: tuple[StreamPlan, ...], rollups: tuple[RollupPlan, ...]) -> tuple[FlowStep, ...]:
    """The dataflow of these streams and rollups, in the order Bytewax adds the steps.

    >>> from rta import stream, metric, rollup, count
    >>> from rta.compiler import compile
    >>> from rta.dsl import definitions
    >>> events = stream("events", dimensions={"country": str})
    >>> plan = compile(definitions([rollup("traffic", [metric("views", count(), stream=events)], by=["country"])]))
    >>> for s in flow_of(plan.streams, plan.rollups):
    ...     print(f"{s.step_id:<28} {s.op:<10} <- {', '.join(s.ups)}")
    input                        input      <-
    parse                        map        <- input
    outcomes                     map        <- parse
    outcomes__route              key_on     <- outcomes
    outcomes__flush              stateful   <- outcomes__route
    outcomes__unkey              key_rm     <- outcomes__flush
    events__traits__... filter_map <- parse
    events__traits__...__route key_on <- events__traits__...
    events__traits__...__flush stateful <- events__traits__...__route
    events__traits__...__unkey key_rm <- events__traits__...__flush
    events__aliases__... filter_map <- parse
    events__aliases__...__route key_on <- events__aliases__...
    events__aliases__...__flush stateful <- events__aliases__...__route
    events__aliases__...__unkey key_rm <- events__aliases__...__flush
    traffic__...__partials       filter_map <- parse
    traffic__...__route          key_on     <- traffic__...__partials
    traffic__...__flush          stateful   <- traffic__...__route
    traffic__...__unkey          key_rm     <- traffic__...__flush
    writes                       merge      <- outcomes__unkey, events__traits__...__unkey, events__aliases__...__unkey, traffic__...__unkey
    route                        key_on     <- writes
    store__write                 output     <- route
    """
    steps: list[FlowStep] = [Input("input"), Parse("parse", "input", streams), Outcomes("outcomes", "parse", streams)]
    steps += _flushed("outcomes", "outcomes", STATS_TABLE, "stack tallies")
    for s in streams:
        if s.raw_table:
            name = step_id(s.name, "raw", s.version)
            steps += (RawEvents(name, "parse", s), *_flushed(name, name, s.raw_table, "stack events"))
        if s.user:  # people are keyed by the user column (rta/compiler/people_ddl.py)
            for kind, table in (("traits", TRAITS_TABLE), ("aliases", ALIASES_TABLE)):
                name = step_id(s.name, kind, s.version)
                steps += (PeopleRows(name, "parse", s, table), *_flushed(name, name, table, "stack events"))
        if s.sessions:
            name = step_id(s.name, s.sessions.table.removeprefix("rta_"))
            one, unkeyed = step_id(name, "one_key"), step_id(name, "no_key")
            steps += (Route(one, "parse", "one"), Sessionize(name, one, s), Unkey(unkeyed, name))
            steps += _flushed(name, unkeyed, s.sessions.table, "stack events")
    for r in rollups:
        name = step_id(r.name, r.version)
        partials = step_id(name, "partials")
        time = next(s.time for s in streams if s.name == r.stream)
        steps += (Partials(partials, "parse", r, time), *_flushed(name, partials, r.input_table, "merge partials", r))
    flushed = {s.step_id for s in steps if isinstance(s, Flush)}
    inserts = tuple(s.step_id for s in steps if isinstance(s, Unkey) and s.up in flushed)  # the tables' inserts, not the visits' state
    steps += (Writes("writes", inserts), Route("route", "writes", "store"))
    steps.append(StoreOutput("store__write", "route", tuple(t.table for r in rollups for t in r.tables)))
    return tuple(steps)
