"""``build_dataflow(plan, source, sink)``: translate a plan to a Bytewax dataflow, nothing more.

Items are whole batches (DESIGN §2); each batch becomes one insert per table, tagged with
a token derived from the batch key, so replays add nothing (DESIGN §5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import bytewax.operators as op
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from clickhouse_connect.driver.client import Client
from typing_extensions import override

from rta.compiler.ddl import STATS_TABLE
from rta.compiler.naming import step_id
from rta.compiler.plan import Plan, RollupPlan, StreamPlan
from rta.flows.events import Normalized, normalize, read_json_lines
from rta.flows.partials import MINUTE, merge_partials, partials
from rta.flows.sources import SourceBatch
from rta.flows.stats import FlowStats
from rta.store.writer import Write, insert

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A batch after parsing: its key, stream, partition, flush mark and normalized events."""

    key: str
    stream: str
    result: Normalized
    partition: str = ""
    flush: bool = True


@dataclass(frozen=True, slots=True)
class PartialBatch:
    """One batch's partials for one rollup, waiting to be merged with the rest of its flush group."""

    key: str
    partition: str
    frame: pl.DataFrame
    flush: bool
    newest_ms: int | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_batch(batch: SourceBatch, stream: StreamPlan, now: datetime) -> Normalized:
    """Normalize a source batch of JSON lines or a frame of events."""
    if isinstance(batch.payload, bytes):
        frame, bad, errors = read_json_lines(batch.payload, stream)
        result = normalize(frame, stream, now, invalid=bad)
        return Normalized(result.events, result.outcomes, errors)
    return normalize(batch.payload, stream, now)


def _token(key: str, table: str) -> str:
    return f"{key}|{table}"


def _newest_ms(events: pl.DataFrame) -> int | None:
    if events.is_empty():
        return None
    newest = events[MINUTE].max()
    return int(newest.timestamp() * 1000) if isinstance(newest, datetime) else None


def rollup_partials(rollup: RollupPlan, parsed: Parsed) -> PartialBatch | None:
    """One batch's partials for ``rollup`` (empty ones too: they may carry the flush mark)."""
    if parsed.stream != rollup.stream:
        return None
    events = parsed.result.events
    frame = partials(rollup, events)
    return PartialBatch(parsed.key, parsed.partition, frame, parsed.flush, _newest_ms(events))


def group_token(keys: list[str], table: str) -> str:
    """The insert token of a flush group: a function of its batches' keys only."""
    if len(keys) == 1:
        return _token(keys[0], table)
    return _token("group:" + hashlib.blake2b("\n".join(keys).encode(), digest_size=16).hexdigest(), table)


class RollupFlush(StatefulLogic[PartialBatch, Write, tuple[list[str], list[pl.DataFrame], int | None]]):
    """Accumulate one partition's partials; emit one merged insert per flush group and at the end."""

    def __init__(self, rollup: RollupPlan, state: tuple[list[str], list[pl.DataFrame], int | None] | None) -> None:
        self._rollup = rollup
        self._keys, self._frames, self._newest = state or ([], [], None)

    def _flush(self) -> list[Write]:
        frames = [f for f in self._frames if not f.is_empty()]
        out = []
        if frames:
            rows = merge_partials(self._rollup, frames).to_arrow()
            out.append(Write(self._rollup.input_table, rows, group_token(self._keys, self._rollup.input_table), 0, self._newest))
        self._keys, self._frames, self._newest = [], [], None
        return out

    @override
    def on_item(self, value: PartialBatch) -> tuple[list[Write], bool]:
        self._keys.append(value.key)
        self._frames.append(value.frame)
        if value.newest_ms is not None:
            self._newest = max(self._newest or 0, value.newest_ms)
        return (self._flush() if value.flush else []), StatefulLogic.RETAIN

    @override
    def on_eof(self) -> tuple[list[Write], bool]:
        return (self._flush() if self._keys else []), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> tuple[list[str], list[pl.DataFrame], int | None]:
        return list(self._keys), list(self._frames), self._newest


def raw_write(stream: StreamPlan, parsed: Parsed) -> Write | None:
    """The insert of one batch's raw events."""
    if parsed.stream != stream.name or stream.raw_table is None or parsed.result.events.is_empty():
        return None
    rows = parsed.result.events.drop(MINUTE).to_arrow()
    return Write(stream.raw_table, rows, _token(parsed.key, stream.raw_table))


def stats_write(parsed: Parsed, now: datetime) -> Write:
    """The tally of outcomes (accepted, late, future, invalid) of one batch."""
    minute = now.replace(second=0, microsecond=0)
    outcomes = {k: v for k, v in parsed.result.outcomes.items() if v}
    rows = pl.DataFrame(
        {
            "minute": [minute] * len(outcomes),
            "stream": [parsed.stream] * len(outcomes),
            "outcome": list(outcomes),
            "events": pl.Series(list(outcomes.values()), dtype=pl.UInt64),
        },
        schema_overrides={"minute": pl.Datetime("ms", "UTC")},
    ).to_arrow()
    return Write(STATS_TABLE, rows, _token(parsed.key, STATS_TABLE), parsed.result.outcomes.get("accepted", 0))


class _StorePartition(StatefulSinkPartition[Write, None]):
    def __init__(self, client: Client, stats: FlowStats) -> None:
        self._client = client
        self._stats = stats

    @override
    def write_batch(self, items: list[Write]) -> None:
        for item in items:
            insert(self._client, item)
            self._stats.written(item.rows.num_rows, item.events, item.newest_ms)

    @override
    def snapshot(self) -> None:
        return None


class StoreSink(FixedPartitionedSink[Write, None]):
    """Every write goes through one partition: only one process may open an embedded store."""

    def __init__(self, client_factory: Callable[[], Client], stats: FlowStats) -> None:
        self._factory = client_factory
        self._stats = stats

    @override
    def list_parts(self) -> list[str]:
        return ["store"]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _StorePartition:
        return _StorePartition(self._factory(), self._stats)


def build_dataflow(
    plan: Plan,
    source: Source[SourceBatch],
    sink: StoreSink,
    stats: FlowStats,
    *,
    clock: Clock = _utcnow,
) -> Dataflow:
    """The dataflow of ``plan``: input, parse, raw and per-rollup partials, one store output."""
    flow = Dataflow("rta")
    streams = {s.name: s for s in plan.streams}
    batches = op.input("input", flow, source)

    def parse(batch: SourceBatch) -> Parsed:
        result = parse_batch(batch, streams[batch.stream], clock())
        stats.parsed(sum(result.outcomes.values()), result.outcomes, result.errors)
        return Parsed(batch.key, batch.stream, result, batch.partition, batch.flush)

    parsed = op.map("parse", batches, parse)
    outputs = [op.map("outcomes", parsed, lambda p: stats_write(p, clock()))]
    for s in plan.streams:
        if s.raw_table:
            outputs.append(op.filter_map(step_id(s.name, "raw", s.version), parsed, partial(raw_write, s)))
    for r in plan.rollups:
        batch_partials = op.filter_map(step_id(r.name, r.version, "partials"), parsed, partial(rollup_partials, r))
        by_partition = op.key_on(step_id(r.name, r.version, "route"), batch_partials, lambda b: b.partition)
        flushed = op.stateful(step_id(r.name, r.version, "flush"), by_partition, partial(RollupFlush, r))
        outputs.append(op.key_rm(step_id(r.name, r.version, "unkey"), flushed))
    writes = op.merge("writes", *outputs)
    op.output("store__write", op.key_on("route", writes, lambda _: "store"), sink)
    return flow
