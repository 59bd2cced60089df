"""``build_dataflow(plan, source, sink)``: translate a plan to a Bytewax dataflow, nothing more.

Items are whole batches (DESIGN §2); each flush group becomes one insert per table, tagged with
a token derived from its batches' keys, so replays add nothing (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import bytewax.operators as op
import polars as pl
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source

from rta.compiler.ddl import STATS_TABLE
from rta.compiler.naming import step_id
from rta.compiler.plan import Plan, RollupPlan, StreamPlan
from rta.flows.events import Normalized, normalize, read_json_lines, read_lines
from rta.flows.flush import GroupFlush, Merge, TableBatch, concat
from rta.flows.partials import MINUTE, merge_partials, partials
from rta.flows.quarantine import set_aside
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


def _newest_ms(events: pl.DataFrame) -> int | None:
    if events.is_empty():
        return None
    newest = events[MINUTE].max()
    return int(newest.timestamp() * 1000) if isinstance(newest, datetime) else None


def rollup_rows(rollup: RollupPlan, parsed: Parsed) -> TableBatch | None:
    """One batch's partials for ``rollup`` (empty ones too: they may carry the flush mark)."""
    if parsed.stream != rollup.stream:
        return None
    events = parsed.result.events
    return TableBatch(parsed.key, parsed.partition, partials(rollup, events), parsed.flush, 0, _newest_ms(events))


def raw_rows(stream: StreamPlan, parsed: Parsed) -> TableBatch | None:
    """One batch's raw events."""
    if parsed.stream != stream.name:
        return None
    return TableBatch(parsed.key, parsed.partition, parsed.result.events.drop(MINUTE), parsed.flush)


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


def _flushed(name: str, rows: Stream[TableBatch], table: str, merge: Merge) -> Stream[Write]:
    """Route a table's rows by source partition and flush them in groups."""
    keyed = op.key_on(step_id(name, "route"), rows, lambda b: b.partition)
    return op.key_rm(step_id(name, "unkey"), op.stateful(step_id(name, "flush"), keyed, partial(GroupFlush, table, merge)))


def build_dataflow(
    plan: Plan,
    source: Source[SourceBatch] | Sequence[Source[SourceBatch]],
    sink: StoreSink,
    stats: FlowStats,
    *,
    clock: Clock = utcnow,
) -> Dataflow:
    """The dataflow of ``plan``: input, parse, raw and per-rollup partials, one store output."""
    flow = Dataflow("rta")
    streams = {s.name: s for s in plan.streams}
    sources = [source] if isinstance(source, Source) else list(source)
    batches = op.input("input", flow, sources[0])
    if len(sources) > 1:  # e.g. the event log and the demo generator, side by side
        extra = [op.input(f"input_{i}", flow, s) for i, s in enumerate(sources[1:], start=2)]
        batches = op.merge("inputs", batches, *extra)

    def parse(batch: SourceBatch) -> Parsed:
        result = parse_batch(batch, streams[batch.stream], clock())
        stats.parsed(sum(result.outcomes.values()), result.outcomes, result.errors)
        return Parsed(batch.key, batch.stream, result, batch.partition, batch.flush)

    parsed = op.map("parse", batches, parse)
    outputs = [_flushed("outcomes", op.map("outcomes", parsed, lambda p: outcome_rows(p, streams[p.stream], clock())), STATS_TABLE, concat)]
    for s in plan.streams:
        if s.raw_table:
            name = step_id(s.name, "raw", s.version)
            outputs.append(_flushed(name, op.filter_map(name, parsed, partial(raw_rows, s)), s.raw_table, concat))
    for r in plan.rollups:
        name = step_id(r.name, r.version)
        rows = op.filter_map(step_id(name, "partials"), parsed, partial(rollup_rows, r))
        outputs.append(_flushed(name, rows, r.input_table, partial(merge_partials, r)))
    writes = op.merge("writes", *outputs)
    op.output("store__write", op.key_on("route", writes, lambda _: "store"), sink)
    return flow
