"""Reading the groups a writer stored, as the log's source and the Kafka source both do.

The writer marks where each group ends (a frame flag, a message header); a reader collects
frames until one ends a group and makes the group one batch (:class:`GroupAssembler`). A
partition of either source polls (:class:`PolledGroups`): it reads what is new, waits
``POLL_SECONDS`` when nothing was, and snapshots where the next group starts. Both sources
list the writer's partitions the same way (:class:`StoredPartitions`).
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from rta.flows.sources import SourceBatch, awake_at

POLL_SECONDS = 0.05


@dataclass
class GroupAssembler:
    """Collects stored frames (or messages) until one ends a group, then makes the group one batch.

    Groups are stored by the writer, so whoever reads them, and however often, forms the same
    batches with the same keys: replays deduplicate (docs/architecture.md, "Idempotent writes"). ``next_offset`` is where the
    next group starts: what a recovery snapshot records.
    """

    stream: str
    key_prefix: str  # e.g. "log:events:p0"
    partition: str  # the flush partition the batches belong to
    next_offset: int = 0
    quarantine: str = ""  # the file unreadable lines of these groups go to
    _first: int | None = None
    _parts: list[bytes] = field(default_factory=list)
    _quarantined: int = 0

    def add(self, offset: int, payload: bytes, *, ends_group: bool, after: int, quarantined: int = 0) -> SourceBatch | None:
        """Take the frame at ``offset`` (the next one starts at ``after``); a batch when it ends a group with events.

        ``quarantined`` counts the events of a damaged frame, set aside in the assembler's ``quarantine`` file.
        """
        if self._first is None:
            self._first = offset
        if payload:
            self._parts.append(payload)
        self._quarantined += quarantined
        if not ends_group:
            return None
        first, parts, held = self._first, self._parts, self._quarantined
        self._first, self._parts, self._quarantined, self.next_offset = None, [], 0, after
        if not parts and not held:
            return None
        return SourceBatch(f"{self.key_prefix}:{first}", self.stream, b"".join(parts), self.partition, True,
                           quarantine=self.quarantine, quarantined=held)  # fmt: skip


class PolledGroups(StatefulSourcePartition[SourceBatch, int]):
    """A source partition over stored groups that polls; subclasses read in :meth:`_read`."""

    def __init__(self, stop: threading.Event, groups: GroupAssembler) -> None:
        self._stop = stop
        self._groups = groups
        self._next_poll = 0.0

    @abstractmethod
    def _read(self) -> list[SourceBatch | None]:
        """What ``self._groups.add`` made of each frame or message stored since the last read; empty when nothing was."""

    @override
    def next_batch(self) -> list[SourceBatch]:
        if self._stop.is_set():
            raise StopIteration
        if time.monotonic() < self._next_poll:
            return []
        added = self._read()
        if not added:
            self._next_poll = time.monotonic() + POLL_SECONDS
        return [batch for batch in added if batch is not None]

    @override
    def next_awake(self) -> datetime | None:
        return awake_at(self._next_poll)

    @override
    def snapshot(self) -> int:
        return self._groups.next_offset


class StoredPartitions(FixedPartitionedSource[SourceBatch, int]):
    """A source over the ``partitions`` partitions a writer stored ``stream``'s groups in (``p0``, ``p1``…), read until ``stop``."""

    def __init__(self, stream: str, partitions: int, stop: threading.Event | None) -> None:
        self.stream = stream
        self.partitions = partitions
        self.stop = stop or threading.Event()

    @override
    def list_parts(self) -> list[str]:
        return [f"p{i}" for i in range(self.partitions)]
