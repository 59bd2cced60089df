"""The flow's source over the durable log: one Bytewax partition per log partition.

Each batch is one stored group of frames, keyed by the stream, partition and the group's
first offset; resuming from a recovery snapshot re-reads whole groups, so replayed inserts
carry the same tokens and add nothing. Snapshots also let the log drop segments the flow
has durably written past (one snapshot behind, and only after ``retention`` seconds).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from typing_extensions import override

from rta.contract.log_format import GROUP_BYTES, GROUP_END, delete_before, read_frames
from rta.flows.quarantine import FILE as QUARANTINE
from rta.flows.quarantine import set_aside
from rta.flows.sources import SourceBatch
from rta.flows.stored_groups import GroupAssembler, PolledGroups, StoredPartitions

RETENTION_SECONDS = 24 * 3600
COMMITTED = "committed.json"


def committed_offset(folder: Path) -> int:
    """The offset the flow has durably written up to in a partition folder (0 if unknown)."""
    try:
        return int(json.loads((folder / COMMITTED).read_text())["offset"])
    except (OSError, ValueError, KeyError):
        return 0


class _LogPartition(PolledGroups):
    def __init__(self, source: LogSource, folder: Path, offset: int) -> None:
        groups = GroupAssembler(source.stream, f"log:{source.stream}:{folder.name}", f"log-{folder.name}", offset,
                                quarantine=str(folder / QUARANTINE))  # fmt: skip
        super().__init__(source.stop, groups)
        self._src = source
        self._folder = folder
        self._read_from = offset  # past the frames already taken (a group may still be open)
        self._previous_snapshot = offset

    @override
    def _read(self) -> list[SourceBatch | None]:
        added = []
        for frame in read_frames(self._folder, self._read_from, GROUP_BYTES * 2):
            if frame.intact:
                batch = self._groups.add(frame.offset, frame.payload, ends_group=bool(frame.flags & GROUP_END), after=frame.next_offset)
            else:  # damaged on disk: set aside with what it held, and read on
                damaged = [(-1, frame.payload, "the frame's checksum does not match its bytes")]
                held = set_aside(self._folder / QUARANTINE, self._groups.key_prefix, frame.offset, damaged, frame.payload.count(b"\n"))
                batch = self._groups.add(frame.offset, b"", ends_group=False, after=frame.next_offset, quarantined=held)
            self._read_from = frame.next_offset
            added.append(batch)
        return added

    @override
    def snapshot(self) -> int:
        # The previous snapshot's epoch is complete (its writes drained into the store): safe to commit.
        durable, self._previous_snapshot = self._previous_snapshot, self._groups.next_offset
        tmp = self._folder / (COMMITTED + ".tmp")
        tmp.write_text(json.dumps({"offset": durable}))
        os.replace(tmp, self._folder / COMMITTED)
        delete_before(self._folder, durable, self._src.retention)
        return self._groups.next_offset


class LogSource(StoredPartitions):
    """Read ``stream``'s log partitions under ``folder`` from their recovery offsets, until ``stop``."""

    def __init__(self, folder: Path, stream: str, partitions: int, *, retention: float = RETENTION_SECONDS,
                 stop: threading.Event | None = None) -> None:  # fmt: skip
        super().__init__(stream, partitions, stop)
        self.folder = folder
        self.retention = retention

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _LogPartition:
        folder = self.folder / for_part
        folder.mkdir(parents=True, exist_ok=True)
        return _LogPartition(self, folder, resume_state or 0)
