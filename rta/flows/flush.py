"""Flush groups: one partition's frames for one table accumulate until the source marks a flush.

A group's insert token is a function of its batches' keys, and sources mark flushes from
offsets, so a replay re-forms the same groups and the store drops the repeats (docs/architecture.md, "Idempotent writes").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from bytewax.operators import StatefulLogic
from typing_extensions import override

from rta.store.writer import Write

Merge = Callable[[list[pl.DataFrame]], pl.DataFrame]
ToArrow = Callable[[pl.DataFrame], pa.Table]
State = tuple[list[str], list[pl.DataFrame], int, int | None]


@dataclass(frozen=True, slots=True)
class TableBatch:
    """One source batch's rows for one table, on their way to a flush group."""

    key: str
    partition: str
    frame: pl.DataFrame
    flush: bool
    events: int = 0  # accepted events the rows stand for, for progress
    newest_ms: int | None = None  # newest event of the rows, for the progress line's lag


def group_token(keys: list[str], table: str) -> str:
    """The insert token of a group of batches for ``table``.

    >>> group_token(["jsonl:ab"], "t")
    'jsonl:ab|t'
    >>> group_token(["a", "b"], "t") == group_token(["a", "b"], "t") != group_token(["a"], "t")
    True
    """
    key = keys[0] if len(keys) == 1 else "group:" + hashlib.blake2b("\n".join(keys).encode(), digest_size=16).hexdigest()
    return f"{key}|{table}"


def concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Merge rows by stacking them (raw events, outcome tallies)."""
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


class GroupFlush(StatefulLogic[TableBatch, Write, State]):
    """Accumulate a partition's frames for ``table``; emit one insert per group and at the end of input."""

    def __init__(self, table: str, merge: Merge, state: State | None, *, to_arrow: ToArrow = pl.DataFrame.to_arrow) -> None:
        self._table = table
        self._merge = merge
        self._to_arrow = to_arrow
        self._keys, self._frames, self._events, self._newest = state or ([], [], 0, None)

    def _flush(self) -> list[Write]:
        frames = [f for f in self._frames if not f.is_empty()]
        out = []
        if frames:
            rows = self._to_arrow(self._merge(frames))
            out.append(Write(self._table, rows, group_token(self._keys, self._table), self._events, self._newest))
        self._keys, self._frames, self._events, self._newest = [], [], 0, None
        return out

    @override
    def on_item(self, value: TableBatch) -> tuple[list[Write], bool]:
        self._keys.append(value.key)
        self._frames.append(value.frame)
        self._events += value.events
        if value.newest_ms is not None:
            self._newest = max(self._newest or 0, value.newest_ms)
        return (self._flush() if value.flush else []), StatefulLogic.RETAIN

    @override
    def on_eof(self) -> tuple[list[Write], bool]:
        return (self._flush() if self._keys else []), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> State:
        return list(self._keys), list(self._frames), self._events, self._newest
