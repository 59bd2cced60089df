"""Sources of frames already in memory: what ``ws.load(frame)`` runs through the flow, and tests too."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from rta.flows.sources import SourceBatch


class _ListPartition(StatefulSourcePartition[SourceBatch, int]):
    def __init__(self, batches: Sequence[SourceBatch], start: int) -> None:
        self._batches = batches
        self._next = start

    @override
    def next_batch(self) -> list[SourceBatch]:
        if self._next >= len(self._batches):
            raise StopIteration
        self._next += 1
        return [self._batches[self._next - 1]]

    @override
    def snapshot(self) -> int:
        return self._next


class BatchSource(FixedPartitionedSource[SourceBatch, int]):
    """Emit the given batches in order, one partition; a repeated key replays a batch."""

    def __init__(self, batches: Sequence[SourceBatch]) -> None:
        self._batches = list(batches)

    @override
    def list_parts(self) -> list[str]:
        return ["batches"]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _ListPartition:
        return _ListPartition(self._batches, resume_state or 0)


def frame_batches(stream: str, frames: Sequence[pl.DataFrame], key_prefix: str = "test") -> list[SourceBatch]:
    """One batch per frame, keyed by position."""
    return [SourceBatch(f"{key_prefix}:{i}", stream, f) for i, f in enumerate(frames)]
