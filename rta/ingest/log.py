"""The durable local log: append-only segments per stream partition, with byte offsets.

A frame is ``length | crc32 | flags | arrival | payload`` (payload: JSON lines of accepted events).
Writers hand frames to one thread that appends everything waiting, fsyncs once (group
commit) and only then resolves their futures: an acknowledged event is on disk. The same
thread closes *groups*: the last frame of a group carries ``GROUP_END``, written when half a
second or 32 MB has gathered. Groups are the flow's flush units; they are stored, so a replay
re-forms exactly the same ones and its inserts deduplicate (docs/architecture.md, "Idempotent writes").

A torn frame at the end of the newest segment (a crash mid-write) was never acknowledged:
opening the partition cuts it off.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from rta.contract.log_format import GROUP_BYTES, GROUP_END, HEADER, frames, segments
from rta.errors import LogFull
from rta.ingest.dedup import Claim, InFlight, InsertIdFilter
from rta.ingest.handoff import run_on, running_loop

SEGMENT_BYTES = 64 * 1024 * 1024
GROUP_SECONDS = 0.5
MIN_FREE_BYTES = 256 * 1024 * 1024
IOV_MAX = 1024  # buffers one writev may take (Linux)
TORN = "torn"  # the folder a partition's unreadable end is moved to when the writer opens it


class PartitionLog:
    """One partition's segments: appends (one writer thread), reads from any offset."""

    def __init__(self, folder: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        folder.mkdir(parents=True, exist_ok=True)
        found = segments(folder)
        if not found:
            found = [(0, folder / f"{0:020d}.seg")]
            found[0][1].touch()
        base, path = found[-1]
        data = path.read_bytes()
        kept = list(frames(data, base))
        intact = (kept[-1].next_offset - base) if kept else 0
        if intact < len(data):  # a torn end, never acknowledged, or damage: moved aside, never fatal
            torn = folder / TORN
            torn.mkdir(exist_ok=True)
            (torn / f"{base + intact:020d}.bin").write_bytes(data[intact:])
            with path.open("r+b") as handle:
                handle.truncate(intact)
                os.fsync(handle.fileno())
        self._base = base
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.end = self._durable = base + intact
        self._unwritten: list[bytes] = []
        if kept and not kept[-1].flags & GROUP_END:
            # Acknowledged frames of a group the previous writer never closed: close it, or the flow waits forever.
            self.append(b"", GROUP_END)
            self.sync()

    def append(self, payload: bytes, flags: int = 0) -> int:
        """Append one frame (not yet written nor durable: call :meth:`sync`); returns its offset."""
        offset = self.end
        # binascii's crc32 keeps the GIL (zlib's lets it go for big buffers): the request thread would take it for ~5 ms.
        self._unwritten += (HEADER.pack(len(payload), binascii.crc32(payload), flags, int(time.time())), payload)
        self.end += HEADER.size + len(payload)
        return offset

    def sync(self) -> None:
        """Write and make durable every appended frame (one write, one fsync), then start a new segment if this one is full.

        If that fails, the segment is cut back to what was durable before and the error raised:
        none of those frames was acknowledged.
        """
        pieces, self._unwritten = self._unwritten, []
        try:
            for start in range(0, len(pieces), IOV_MAX):  # no copy into one buffer first
                chunk = pieces[start : start + IOV_MAX]
                written = os.writev(self._fd, chunk)
                if written < sum(map(len, chunk)):  # a short write: the rest the plain way
                    rest = memoryview(b"".join(chunk))[written:]
                    while rest:
                        rest = rest[os.write(self._fd, rest) :]
            os.fsync(self._fd)
        except BaseException:
            os.ftruncate(self._fd, self._durable - self._base)
            self.end = self._durable
            raise
        self._durable = self.end
        if self.end - self._base >= self.segment_bytes:
            # The old segment is synced before it is closed: an fd closed mid-fsync could ack lost data.
            os.close(self._fd)
            self._base = self.end
            self._fd = os.open(self.folder / f"{self._base:020d}.seg", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            directory = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def size(self) -> int:
        """Bytes held on disk."""
        return sum(p.stat().st_size for _, p in segments(self.folder))

    def close(self) -> None:
        """Sync and close."""
        self.sync()
        os.close(self._fd)


def new_lines(lines: Sequence[bytes | msgspec.Raw], fresh: Sequence[bool]) -> bytes:
    """The payload of the lines whose ids are new: one per line, each ended by a newline."""
    kept = lines if all(fresh) else [line for line, new in zip(lines, fresh, strict=True) if new]
    return b"\n".join(kept) + b"\n" if kept else b""


@dataclass
class _Append:
    partition: int
    payload: bytes
    future: Future[Any]  # of the offset, or for events of which were new
    lines: Sequence[bytes | msgspec.Raw] = ()
    insert_ids: Sequence[str] | None = None  # events: their ids, judged at commit
    fresh: list[bool] | None = None


class EventLog:
    """A stream's partitions (or those of them this process writes) and the thread that group-commits appends to them."""

    def __init__(
        self,
        folder: Path,
        partitions: int = 1,
        *,
        owned: Iterable[int] | None = None,
        max_bytes: int = 20 * 1024**3,
        min_free_bytes: int = MIN_FREE_BYTES,
        dedup: InsertIdFilter | None = None,
        group_seconds: float = GROUP_SECONDS,
        group_bytes: int = GROUP_BYTES,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.folder = folder
        mine = range(partitions) if owned is None else owned
        self.partitions = {i: PartitionLog(folder / f"p{i}", segment_bytes=segment_bytes) for i in mine}
        self.max_bytes = max_bytes
        self.dedup = dedup
        self.min_free_bytes = min_free_bytes
        self.group_seconds = group_seconds
        self.group_bytes = group_bytes
        self._queue: queue.Queue[_Append] = queue.Queue()
        self._open_since: dict[int, float | None] = dict.fromkeys(self.partitions)  # when each partition's open group began
        self._open_bytes = dict.fromkeys(self.partitions, 0)
        self._size = sum(p.size() for p in self.partitions.values())
        self._checked_disk = 0.0
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # of the latest submitter: ids are judged there (see handoff)
        self._thread = threading.Thread(target=self._run, name=f"rta-log-{folder.name}", daemon=True)
        self._thread.start()

    def submit(self, partition: int, payload: bytes) -> Future[int]:
        """Queue ``payload`` for ``partition``; the future resolves with its offset once durable."""
        if self._stop.is_set():
            msg = "the log is closed"
            raise LogFull(msg)
        self._check_room(len(payload))
        future: Future[int] = Future()
        self._queue.put(_Append(partition, payload, future))
        return future

    def submit_events(self, partition: int, lines: Sequence[bytes | msgspec.Raw], insert_ids: Sequence[str]) -> Future[list[bool]]:
        """Queue events (JSON documents, one per line) for ``partition``; the future resolves with which were new, once durable.

        The others repeat an insert id seen within the dedup window (or earlier in the batch)
        and are not written. Ids are judged for a whole group commit at once: one lookup for
        many requests, off the thread that serves them. Fails with
        :class:`~rta.ingest.dedup.InFlight` when another process is writing one of these ids.
        """
        if self._stop.is_set():
            msg = "the log is closed"
            raise LogFull(msg)
        self._check_room(sum(map(len, lines)) + len(lines))
        self._loop = running_loop()
        future: Future[list[bool]] = Future()
        self._queue.put(_Append(partition, b"", future, lines, insert_ids))
        return future

    def _check_room(self, incoming: int) -> None:
        now = time.monotonic()
        if now - self._checked_disk > 1.0:
            self._checked_disk = now
            self._size = sum(p.size() for p in self.partitions.values())  # the flow deletes segments it has written past
            free = shutil.disk_usage(self.folder).free
            if free < self.min_free_bytes:
                self._checked_disk = 0.0  # look again on the next request
                msg = f"the disk holding the event log has {free:,} bytes free, under the {self.min_free_bytes:,} kept in reserve"
                raise LogFull(msg)
        if self._size + incoming > self.max_bytes:
            msg = f"the event log holds {self._size:,} bytes, its limit is {self.max_bytes:,}; the flow is behind"
            raise LogFull(msg)

    def _run(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                first = self._queue.get(timeout=self.group_seconds / 2)
            except queue.Empty:
                self._close_idle_groups()
                continue
            pending = [first, *self._drain()]
            try:
                self._commit(pending)
            except BaseException as err:  # the writers learn it; nothing was acknowledged
                for item in pending:
                    if not item.future.done():
                        item.future.set_exception(err)

    def _drain(self) -> list[_Append]:
        items: list[_Append] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _admit(self, pending: list[_Append], claims: list[Claim]) -> list[_Append]:
        """Events keep only their new ids' lines (claims made go to ``claims``); those whose ids
        another process is writing fail with InFlight."""
        events = [item for item in pending if item.insert_ids is not None]
        if self.dedup is None or not events:
            for item in events:
                item.fresh = [True] * len(item.lines)
        elif (claim := self.dedup.claim([i for item in events for i in item.insert_ids or ()])) is not None:
            claims.append(claim)
            start = 0
            for item in events:
                item.fresh, start = claim.fresh[start : start + len(item.lines)], start + len(item.lines)
        else:  # some ids are being written by another process: judge the requests one by one
            for item in events:
                if (claim := self.dedup.claim(item.insert_ids or ())) is None:
                    item.future.set_exception(InFlight("events with these insert ids are being written by another request right now"))
                else:
                    claims.append(claim)
                    item.fresh = claim.fresh
        for item in events:
            if item.fresh is not None:
                item.payload = new_lines(item.lines, item.fresh)
        return [item for item in pending if not item.future.done()]

    def _commit(self, pending: list[_Append]) -> None:
        claims: list[Claim] = []
        loop = self._loop
        try:
            pending = run_on(loop, lambda: self._admit(pending, claims))
            self._write(pending)
        except BaseException:
            run_on(loop, lambda: self._settle(claims, pending, durable=False))  # nothing was written for them
            raise
        run_on(loop, lambda: self._settle(claims, pending, durable=True))

    def _settle(self, claims: list[Claim], pending: list[_Append], *, durable: bool) -> None:
        """Claimed ids are remembered once their events are durable (and their writers told), and may come again if the write failed."""
        if self.dedup is not None:
            for claim in claims:
                (self.dedup.confirm if durable else self.dedup.release)(claim)
        if durable:
            for item in pending:
                if item.fresh is not None:
                    item.future.set_result(item.fresh)

    def _write(self, pending: list[_Append]) -> None:
        now = time.monotonic()
        touched: dict[int, list[tuple[_Append, int]]] = {}
        writes = [item for item in pending if item.payload or item.insert_ids is None]  # events all repeated: nothing to write
        last_index = {item.partition: i for i, item in enumerate(writes)}
        for i, item in enumerate(writes):
            p = item.partition
            if self._open_since[p] is None:
                self._open_since[p] = now
            self._open_bytes[p] += len(item.payload)
            closes = i == last_index[p] and (
                now - (self._open_since[p] or now) >= self.group_seconds or self._open_bytes[p] >= self.group_bytes
            )
            offset = self.partitions[p].append(item.payload, GROUP_END if closes else 0)
            if closes:
                self._open_since[p], self._open_bytes[p] = None, 0
            touched.setdefault(p, []).append((item, offset))
            self._size += HEADER.size + len(item.payload)
        for p, items in touched.items():
            self.partitions[p].sync()
            for item, offset in items:
                if item.insert_ids is None:
                    item.future.set_result(offset)

    def _close_idle_groups(self) -> None:
        now = time.monotonic()
        for p, since in self._open_since.items():
            if since is not None and now - since >= self.group_seconds:
                self.partitions[p].append(b"", GROUP_END)  # an empty frame that only closes the group
                self.partitions[p].sync()
                self._open_since[p], self._open_bytes[p] = None, 0
                self._size += HEADER.size

    def close(self) -> None:
        """Commit what is queued, close open groups, sync and close the segments."""
        self._stop.set()
        self._thread.join()
        for p, since in self._open_since.items():
            if since is not None:
                self.partitions[p].append(b"", GROUP_END)
        for log in self.partitions.values():
            log.close()
