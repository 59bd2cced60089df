"""``build_dataflow(plan, source, sink)``: translate a plan's flow steps to a Bytewax dataflow, nothing more.

Items are whole batches (docs/architecture.md, "Batches, never single events"); each flush group becomes one insert per table, tagged with
a token derived from its batches' keys, so replays add nothing (docs/architecture.md, "Idempotent writes").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import bytewax.operators as op
import polars as pl
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import KeyedStream

from rta.compiler import flow_steps as fs
from rta.compiler.people_ddl import TRAITS_TABLE
from rta.compiler.plan import Plan, RollupPlan, StreamPlan
from rta.errors import CompilationError
from rta.flows.events import Normalized, normalize, read_json_lines, read_lines
from rta.flows.flush import GroupFlush, TableBatch, concat
from rta.flows.partials import merge_partials, partials
from rta.flows.people import Erasures, alias_rows, drop_erased, trait_rows
from rta.flows.properties import raw_arrow, raw_frame
from rta.flows.quarantine import set_aside
from rta.flows.sessions import SessionState, advance, session_input, spec_of
from rta.flows.sink import StoreSink
from rta.flows.sources import SourceBatch
from rta.flows.stats import FlowStats
from rta.store.writer import Write

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A batch after parsing: its key, stream, partition, flush mark and normalized events."""

    key: str
    stream: str
    result: Normalized
    partition: str = ""
    flush: bool = True


def utcnow() -> datetime:
    """The wall clock, in UTC: decides which events are too late or too early."""
    return datetime.now(UTC)


def parse_batch(batch: SourceBatch, stream: StreamPlan, now: datetime) -> Normalized:
    """Normalize a source batch of JSON lines or a frame of events.

    Lines of the log that cannot be read are set aside (:mod:`rta.flows.quarantine`) and counted
    ``quarantined``; other sources count them ``invalid``.
    """
    quarantined = batch.quarantined
    if isinstance(batch.payload, bytes) and batch.quarantine:
        frame, bad_lines = read_lines(batch.payload, stream)
        quarantined += set_aside(Path(batch.quarantine), batch.key, 0, bad_lines)
        bad, errors = 0, tuple(f"quarantined line {i + 1} of {batch.key}: {reason}" for i, _, reason in bad_lines[:5])
    elif isinstance(batch.payload, bytes):
        frame, bad, errors = read_json_lines(batch.payload, stream)
    else:
        frame, bad, errors = batch.payload, batch.invalid, batch.errors
    result = normalize(frame, stream, now, invalid=bad)
    outcomes = {**result.outcomes, "quarantined": result.outcomes.get("quarantined", 0) + quarantined}
    return Normalized(result.events, outcomes, errors)


def _newest_ms(events: pl.DataFrame, time: str) -> int | None:
    if events.is_empty():
        return None
    newest = events[time].max()
    return int(newest.timestamp() * 1000) if isinstance(newest, datetime) else None


def rollup_rows(rollup: RollupPlan, time: str, parsed: Parsed) -> TableBatch | None:
    """One batch's partials for ``rollup`` (empty ones too: they may carry the flush mark), with its newest event's time."""
    if parsed.stream != rollup.stream:
        return None
    events = parsed.result.events
    return TableBatch(parsed.key, parsed.partition, partials(rollup, events), parsed.flush, 0, _newest_ms(events, time))


def raw_rows(stream: StreamPlan, parsed: Parsed) -> TableBatch | None:
    """One batch's raw events."""
    if parsed.stream != stream.name:
        return None
    return TableBatch(parsed.key, parsed.partition, raw_frame(parsed.result.events, stream), parsed.flush)


def people_rows(stream: StreamPlan, table: str, parsed: Parsed) -> TableBatch | None:
    """One batch's rows for a people table (empty ones too: they may carry the flush mark)."""
    if parsed.stream != stream.name:
        return None
    rows = (trait_rows if table == TRAITS_TABLE else alias_rows)(parsed.result.events, stream)
    return TableBatch(parsed.key, parsed.partition, rows, parsed.flush)


def outcome_rows(parsed: Parsed, stream: StreamPlan, now: datetime) -> TableBatch:
    """The tally of outcomes (accepted, late, future, invalid) of one batch, in the minute it was seen.

    ``newest_event`` is the event-time watermark's input: the newest accepted event, never
    ahead of the wall clock (a client with a fast clock must not close buckets early).
    """
    minute = now.replace(second=0, microsecond=0)
    outcomes = {k: v for k, v in parsed.result.outcomes.items() if v}
    events = parsed.result.events
    newest = events[stream.time].max() if not events.is_empty() else None
    newest_event = min(newest, now) if isinstance(newest, datetime) else datetime(1970, 1, 1, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "minute": [minute] * len(outcomes),
            "stream": [parsed.stream] * len(outcomes),
            "outcome": list(outcomes),
            "events": pl.Series(list(outcomes.values()), dtype=pl.UInt64),
            "last_seen": [now] * len(outcomes),
            "newest_event": [newest_event] * len(outcomes),
        },
        schema_overrides={
            "minute": pl.Datetime("ms", "UTC"),
            "last_seen": pl.Datetime("ms", "UTC"),
            "newest_event": pl.Datetime("ms", "UTC"),
        },
    )
    return TableBatch(parsed.key, parsed.partition, rows, parsed.flush, parsed.result.outcomes.get("accepted", 0))


@dataclass(frozen=True, slots=True)
class _Runtime:
    """What the plan cannot hold: the flow being built, its sources, sink, stats and clock."""

    flow: Dataflow
    sources: list[Source[SourceBatch]]
    sink: StoreSink
    stats: FlowStats
    clock: Clock
    erasures: Erasures


def _input(step: fs.Input, *, rt: _Runtime) -> Stream[SourceBatch]:
    batches = op.input(step.step_id, rt.flow, rt.sources[0])
    if len(rt.sources) > 1:  # e.g. the event log and the demo generator, side by side
        extra = [op.input(f"{step.step_id}_{i}", rt.flow, s) for i, s in enumerate(rt.sources[1:], start=2)]
        batches = op.merge(f"{step.step_id}s", batches, *extra)
    return batches


def _parse(step: fs.Parse, up: Stream[SourceBatch], *, rt: _Runtime) -> Stream[Parsed]:
    streams = {s.name: s for s in step.streams}

    def parse(batch: SourceBatch) -> Parsed:
        stream = streams[batch.stream]
        result = parse_batch(batch, stream, rt.clock())
        rt.stats.parsed(sum(result.outcomes.values()), result.outcomes, result.errors)
        if erased := rt.erasures.current():  # a replay of erased people's events (rta/flows/people.py)
            result = Normalized(drop_erased(result.events, stream, erased), result.outcomes, result.errors)
        return Parsed(batch.key, batch.stream, result, batch.partition, batch.flush)

    return op.map(step.step_id, up, parse)


def _outcomes(step: fs.Outcomes, up: Stream[Parsed], *, rt: _Runtime) -> Stream[TableBatch]:
    streams = {s.name: s for s in step.streams}
    return op.map(step.step_id, up, lambda p: outcome_rows(p, streams[p.stream], rt.clock()))


def _raw(step: fs.RawEvents, up: Stream[Parsed], *, rt: _Runtime) -> Stream[TableBatch]:
    return op.filter_map(step.step_id, up, partial(raw_rows, step.stream))


def _people(step: fs.PeopleRows, up: Stream[Parsed], *, rt: _Runtime) -> Stream[TableBatch]:
    return op.filter_map(step.step_id, up, partial(people_rows, step.stream, step.table))


def _sessionize(step: fs.Sessionize, up: KeyedStream[Parsed], *, rt: _Runtime) -> KeyedStream[TableBatch]:
    # One key holds every person's open visits: a person's events may come from any source partition.
    stream, spec = step.stream, spec_of(step.stream)

    def visit(state: SessionState | None, parsed: Parsed) -> tuple[SessionState | None, list[TableBatch]]:
        if parsed.stream != stream.name:
            return state, []
        events = session_input(parsed.result.events, stream)
        state, changes = advance(state or SessionState.empty(spec), events, spec, int(rt.clock().timestamp() * 1000))
        return state, [TableBatch(parsed.key, parsed.partition, changes, parsed.flush)]

    return op.stateful_flat_map(step.step_id, up, visit)


def _partials(step: fs.Partials, up: Stream[Parsed], *, rt: _Runtime) -> Stream[TableBatch]:
    return op.filter_map(step.step_id, up, partial(rollup_rows, step.rollup, step.time))


def _route(step: fs.Route, up: Stream[Any], *, rt: _Runtime) -> KeyedStream[Any]:
    if step.to == "store":  # one process owns an embedded store
        return op.key_on(step.step_id, up, lambda _: "store")
    if step.to == "one":  # the sessions' one state
        return op.key_on(step.step_id, up, lambda _: "sessions")
    return op.key_on(step.step_id, up, lambda b: b.partition)


def _flush(step: fs.Flush, up: KeyedStream[TableBatch], *, rt: _Runtime) -> KeyedStream[Write]:
    if step.rollup is None:  # raw events (their property texts go to the maps' EPHEMERAL sources) and outcome tallies
        return op.stateful(step.step_id, up, partial(GroupFlush, step.table, concat, to_arrow=raw_arrow))
    return op.stateful(step.step_id, up, partial(GroupFlush, step.table, partial(merge_partials, step.rollup)))


def _unkey(step: fs.Unkey, up: KeyedStream[Write], *, rt: _Runtime) -> Stream[Write]:
    return op.key_rm(step.step_id, up)


def _writes(step: fs.Writes, *ups: Stream[Write], rt: _Runtime) -> Stream[Write]:
    return op.merge(step.step_id, *ups)


def _store(step: fs.StoreOutput, up: KeyedStream[Write], *, rt: _Runtime) -> None:
    op.output(step.step_id, up, rt.sink)


# Each plan step's Bytewax operator; the compiler may not import Bytewax, so the table lives here.
BUILDERS: dict[type[fs.FlowStep], Callable[..., Stream[Any] | None]] = {
    fs.Input: _input,
    fs.Parse: _parse,
    fs.Outcomes: _outcomes,
    fs.RawEvents: _raw,
    fs.PeopleRows: _people,
    fs.Partials: _partials,
    fs.Sessionize: _sessionize,
    fs.Route: _route,
    fs.Flush: _flush,
    fs.Unkey: _unkey,
    fs.Writes: _writes,
    fs.StoreOutput: _store,
}


def build_dataflow(
    plan: Plan,
    source: Source[SourceBatch] | Sequence[Source[SourceBatch]],
    sink: StoreSink,
    stats: FlowStats,
    *,
    clock: Clock = utcnow,
    erasures: Erasures | None = None,
) -> Dataflow:
    """The dataflow of ``plan``: each of ``plan.flow``'s steps, built by its entry in :data:`BUILDERS`.

    ``erasures``: the erased ids whose replayed events are dropped (none without it).
    """
    flow = Dataflow("rta")
    rt = _Runtime(flow, [source] if isinstance(source, Source) else list(source), sink, stats, clock, erasures or Erasures(None))
    built: dict[str, Stream[Any] | None] = {}
    for step in plan.flow:
        build = BUILDERS.get(type(step))
        if build is None:
            known = ", ".join(t.__name__ for t in BUILDERS)
            msg = f"no Bytewax translation for flow step {type(step).__name__!r} ({step.step_id!r}); translated steps are: {known}"
            raise CompilationError(msg)
        built[step.step_id] = build(step, *(built[u] for u in step.ups), rt=rt)
    return flow
