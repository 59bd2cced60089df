"""The on-disk event log: segments of frames, as the collect API writes them and the flow reads them.

A frame is ``length | crc32 | flags | arrival | payload`` (payload: the canonical lines of
accepted events, :mod:`rta.contract.segment`). The last frame of a flush group carries
:data:`GROUP_END`. Segments are named by the offset of their first byte.

Reading never stops at a damaged frame: a frame whose checksum fails but which a sound frame
follows is returned with ``intact=False`` (the reader moves it aside, see
:mod:`rta.flows.quarantine`), and the unreadable rest of a segment that a later segment follows
comes back as one damaged frame, so the frames after it still flow. Only the end of the newest
segment may hold a frame being written; the writer moves a torn end aside when it opens the
partition (:class:`rta.ingest.log.PartitionLog`).
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER = struct.Struct("<IIBI")  # length, crc32 of the payload, flags, arrival (unix seconds)
GROUP_END = 1
GROUP_BYTES = 32 * 1024 * 1024  # under load groups close on time: each is one insert into every table, and a small insert costs ~50 ms
MAX_FRAME_BYTES = 8 * 1024 * 1024  # a frame holds one request's events, at most 5 MB of them


@dataclass(frozen=True, slots=True)
class Frame:
    """One stored frame: where it starts, its flags and payload, and where the next one starts.

    A damaged frame (``intact=False``) holds the bytes that could not be read, header included,
    and no flags.
    """

    offset: int
    flags: int
    arrival: int
    payload: bytes
    intact: bool = True

    @property
    def next_offset(self) -> int:
        """The offset just past this frame."""
        return self.offset + (HEADER.size if self.intact else 0) + len(self.payload)


def segments(folder: Path) -> list[tuple[int, Path]]:
    """A partition folder's segments, oldest first: (offset of the first byte, path); other files are not segments."""
    return sorted((int(p.stem), p) for p in folder.glob("*.seg") if p.stem.isdigit() and p.is_file())


def _sound(data: bytes, position: int) -> bool:
    """Whether a whole frame with a matching checksum starts at ``position``."""
    if position + HEADER.size > len(data):
        return False
    length, crc = HEADER.unpack_from(data, position)[:2]
    start = position + HEADER.size
    return length <= MAX_FRAME_BYTES and start + length <= len(data) and zlib.crc32(data[start : start + length]) == crc


def _next_sound(data: bytes, start: int) -> int | None:
    """The first position from ``start`` on where a sound frame starts: how reading resumes after damage.

    Candidates are found vectorized (a plausible length, flags and arrival time), then checked by
    their checksum, in order; empty frames (a group's end marker) are not resumed at. Canonical
    lines hold no NUL byte, and every header does (a length under 16 MB), so no sound frame is
    found inside the payload of an intact one.
    """
    chunk = 1 << 20  # positions looked at per step: a few MB of temporaries, however big the segment
    for first in range(start, len(data) - HEADER.size + 1, chunk):
        size = min(chunk, len(data) - HEADER.size + 1 - first)
        raw = np.frombuffer(data, np.uint8, count=size + HEADER.size - 1, offset=first).astype(np.uint32)

        def word(at: int, raw: np.ndarray = raw, size: int = size) -> np.ndarray:  # the little-endian u32 at each position + at
            return (
                raw[at : at + size]
                | (raw[at + 1 : at + 1 + size] << 8)
                | (raw[at + 2 : at + 2 + size] << 16)
                | (raw[at + 3 : at + 3 + size] << 24)
            )

        length = word(0)  # an empty frame's checksum is 0: zeros would pass for one, so resuming needs a payload
        plausible = (length > 0) & (length <= MAX_FRAME_BYTES) & (raw[8 : 8 + size] <= GROUP_END) & (word(9) >= _PLAUSIBLE)
        for offset in np.flatnonzero(plausible).tolist():
            if _sound(data, first + offset):
                return first + offset
    return None


_PLAUSIBLE = 1_000_000_000  # an arrival time after 2001: what a writer's clock gives


def frames(data: bytes, base: int) -> Iterator[Frame]:
    """The frames of a segment's bytes: sound ones, and damaged stretches that a sound frame follows.

    A damaged frame is skipped by its length when a sound frame follows it there, else reading
    resumes at the next sound frame found. Stops where nothing sound follows: the end of what
    was written, or a torn frame.
    """
    position = 0
    while position + HEADER.size <= len(data):
        length, crc, flags, arrival = HEADER.unpack_from(data, position)
        start = position + HEADER.size
        payload = data[start : start + length]
        if length <= MAX_FRAME_BYTES and len(payload) == length and zlib.crc32(payload) == crc:
            yield Frame(base + position, flags, arrival, payload)
            position = start + length
            continue
        resume = start + length if length <= MAX_FRAME_BYTES and _sound(data, start + length) else _next_sound(data, position + 1)
        if resume is None:
            return
        yield Frame(base + position, 0, arrival, data[position:resume], intact=False)
        position = resume


def read_frames(folder: Path, offset: int, max_bytes: int = GROUP_BYTES) -> list[Frame]:
    """Frames of a partition folder from ``offset`` on: about ``max_bytes``, at least one if any."""
    found: list[Frame] = []
    size = 0
    listed = segments(folder)
    for index, (base, path) in enumerate(listed):
        segment_end = base + path.stat().st_size
        if segment_end <= offset:
            continue
        start = max(offset - base, 0)
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(max_bytes - size + MAX_FRAME_BYTES)  # room for at least one whole frame
        for frame in frames(data, base + start):
            found.append(frame)
            size += len(frame.payload)
            if size >= max_bytes:
                return found
        reached = found[-1].next_offset if found and found[-1].offset >= base else base + start
        if reached < segment_end:
            buffered = base + start + len(data) - reached  # bytes past where reading stopped
            cut_short = buffered < segment_end - reached and buffered < HEADER.size + MAX_FRAME_BYTES
            if index + 1 == len(listed) or cut_short:
                return found  # the readable end (a frame being written), or a frame the buffer cut
            # A later segment exists, so nothing more will be written here: the rest cannot be read.
            with path.open("rb") as handle:
                handle.seek(reached - base)
                found.append(Frame(reached, 0, int(path.stat().st_mtime), handle.read(), intact=False))
            size += segment_end - reached
        offset = segment_end
    return found


def delete_before(folder: Path, offset: int, older_than: float) -> int:
    """Delete whole segments ending at or before ``offset``, last written ``older_than`` seconds ago.

    The newest segment (the one being written) is never deleted.
    """
    removed = 0
    found = segments(folder)
    now = time.time()
    for (_, path), (next_base, _) in zip(found, found[1:], strict=False):
        if next_base <= offset and now - path.stat().st_mtime >= older_than:
            path.unlink()
            removed += 1
    return removed
