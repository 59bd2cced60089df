"""``build_dataflow(plan, source, sink)``: translate a plan to a Bytewax dataflow, nothing more.

Items are whole batches (DESIGN §2); each batch becomes one insert per table, tagged with
a token derived from the batch key, so replays add nothing (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import bytewax.operators as op
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from clickhouse_connect.driver.client import Client
from typing_extensions import override

from rta.compiler.ddl import STATS_TABLE
from rta.compiler.naming import step_id
from rta.compiler.plan import Plan, RollupPlan, StreamPlan
from rta.flows.events import Normalized, normalize, read_json_lines
from rta.flows.partials import MINUTE, partials
from rta.flows.sources import SourceBatch
from rta.flows.stats import FlowStats
from rta.store.writer import Write, insert

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A batch after parsing: its key, stream and normalized events."""

    key: str
    stream: str
    result: Normalized


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


def rollup_write(rollup: RollupPlan, parsed: Parsed) -> Write | None:
    """The insert of one batch's partials for ``rollup``."""
    if parsed.stream != rollup.stream or parsed.result.events.is_empty():
        return None
    rows = partials(rollup, parsed.result.events).to_arrow()
    return Write(rollup.input_table, rows, _token(parsed.key, rollup.input_table), 0, _newest_ms(parsed.result.events))


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
        return Parsed(batch.key, batch.stream, result)

    parsed = op.map("parse", batches, parse)
    outputs = [op.map("outcomes", parsed, lambda p: stats_write(p, clock()))]
    for s in plan.streams:
        if s.raw_table:
            outputs.append(op.filter_map(step_id(s.name, "raw", s.version), parsed, partial(raw_write, s)))
    for r in plan.rollups:
        outputs.append(op.filter_map(step_id(r.name, r.version, "partials"), parsed, partial(rollup_write, r)))
    writes = op.merge("writes", *outputs)
    op.output("store__write", op.key_on("route", writes, lambda _: "store"), sink)
    return flow
