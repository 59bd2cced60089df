"""Bytewax sources that emit whole batches with deterministic identities.

A batch is the flush unit: its ``key`` derives from the source's content or offsets, so a
replay produces the same keys, hence the same insert tokens, and adds nothing. File loads
also skip events whose insert id was loaded before (:class:`LoadedIds`), so the same events
in another order or split into other files count once.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from clickhouse_connect.driver.client import Client
from typing_extensions import override

from rta.compiler.plan import StreamPlan
from rta.errors import ConfigError
from rta.flows.events import normalize, read_json_lines

CHUNK_BYTES = 16 * 1024 * 1024  # ~80K typical events per batch
GROUP_BYTES = 64 * 1024 * 1024  # rollups flush when a multiple of this is crossed: ~0.5-1 s of work
PARQUET_ROWS = 100_000
PARQUET_GROUP = 4  # row batches per rollup flush
PARSE_AHEAD = 2  # parsed chunks a JSON-lines reader keeps ready


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Events for one stream, as JSON lines or a frame, and the batch's deterministic key.

    Rollup partials accumulate per ``partition`` until a batch with ``flush`` (or the end of
    input): sources set ``flush`` from offsets, so a replay re-forms the same flush groups.
    """

    key: str
    stream: str
    payload: bytes | pl.DataFrame
    partition: str = ""
    flush: bool = True
    invalid: int = 0  # lines a source already parsed and found bad
    errors: tuple[str, ...] = ()  # a few of their errors
    quarantine: str = ""  # where lines that cannot be read are set aside (the log's sources), instead of counted invalid
    quarantined: int = 0  # events the source already set aside (damaged frames)


def awake_at(deadline: float) -> datetime | None:
    """A polling partition's ``next_awake``: at ``deadline`` (a ``time.monotonic()`` value), or now if it passed."""
    delay = deadline - time.monotonic()
    return datetime.now(UTC) + timedelta(seconds=delay) if delay > 0 else None


def _newlines(handle: BinaryIO, end: int) -> int:
    """The lines before byte ``end`` of a file (a resumed load's first line number; 0 from the start)."""
    handle.seek(0)
    count, left = 0, end
    while left > 0:
        block = handle.read(min(left, 1 << 22))
        if not block:
            break
        count, left = count + block.count(b"\n"), left - len(block)
    return count


class _JsonLinesPartition(StatefulSourcePartition[SourceBatch, int]):
    """Reads and parses chunks ahead on a thread (Polars releases the GIL), so parsing overlaps
    the rest of the flow; snapshots report the offset after the last batch *emitted*."""

    def __init__(
        self, path: Path, stream: StreamPlan, offset: int, chunk: int, group: int, loaded: LoadedIds | None, properties: bool
    ) -> None:
        self._offset = offset  # of the first byte not yet emitted
        self._properties = properties
        self._queue: queue.Queue[tuple[SourceBatch, int] | BaseException | None] = queue.Queue(maxsize=PARSE_AHEAD)
        self._stop = threading.Event()
        self._loaded = loaded
        args = (path, stream, offset, chunk, group)
        self._thread = threading.Thread(target=self._read, args=args, name=f"rta-read-{path.name}", daemon=True)
        self._thread.start()

    def _read(self, path: Path, stream: StreamPlan, offset: int, chunk: int, group: int) -> None:
        try:
            with path.open("rb") as handle:
                line = 1 + _newlines(handle, offset)  # the number of the next line read, for errors that name it
                handle.seek(offset)
                carry = b""
                while not self._stop.is_set():
                    data = carry + handle.read(chunk)
                    if not data:
                        break
                    cut = data.rfind(b"\n") + 1
                    if cut == 0 or not handle.peek(1):
                        cut = len(data)  # at the end the last line may lack its newline
                    body, carry = data[:cut], data[cut:]
                    flush = (offset + len(body)) // group > offset // group
                    offset += len(body)
                    # Content-addressed: the same lines loaded again, from any file, are the same batch.
                    key = content_key(body)
                    frame, bad, errors = read_json_lines(body, stream, properties=self._properties, origin=path.name, first_line=line)
                    line += body.count(b"\n")
                    if self._loaded is not None:
                        frame, key = self._loaded.admit(frame, key)
                    self._put((SourceBatch(key, stream.name, frame, str(path), flush, bad, errors), offset))
            self._put(None)
        except BaseException as err:  # handed to the flow, which raises it
            self._put(err)

    def _put(self, item: tuple[SourceBatch, int] | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @override
    def next_batch(self) -> list[SourceBatch]:
        item = self._queue.get()
        if item is None:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        batch, self._offset = item
        return [batch]

    @override
    def snapshot(self) -> int:
        return self._offset

    @override
    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _ParquetPartition(StatefulSourcePartition[SourceBatch, int]):
    def __init__(self, path: Path, stream: StreamPlan, offset: int, rows: int, loaded: LoadedIds | None) -> None:
        self._path = str(path)
        self._loaded = loaded
        self._digest = _file_digest(path)
        self._batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
        self._stream = stream
        self._index = 0
        for _ in range(offset):
            next(self._batches)
            self._index += 1

    @override
    def next_batch(self) -> list[SourceBatch]:
        batch = next(self._batches)  # StopIteration ends the partition
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        key = f"parquet:{self._digest}:{self._index}"
        if self._loaded is not None:
            frame, key = self._loaded.admit(frame, key)
        self._index += 1
        return [SourceBatch(key, self._stream.name, frame, self._path, self._index % PARQUET_GROUP == 0)]

    @override
    def snapshot(self) -> int:
        return self._index


def content_key(body: bytes) -> str:
    """The key of a batch of JSON lines: the same lines, from any file or folder, are the same batch.

    SHA-256 because CPUs hash it in hardware (SHA-NI): 1.4 GB/s here against 0.6 for BLAKE2b,
    on the path every loaded byte takes.

    >>> content_key(b'{"event":"click"}\\n')
    'jsonl:cd32505c302255d3b1c23b7e51b59ec3'
    """
    return "jsonl:" + hashlib.sha256(body).hexdigest()[:32]


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:32]


class FileSource(FixedPartitionedSource[SourceBatch, int]):
    """JSON-lines (``.jsonl``, ``.ndjson``, ``.json``) and Parquet files, one partition each.

    With ``properties``, JSON lines keep their undeclared properties (slower: see
    :func:`rta.flows.events.read_json_lines`); Parquet files always keep their extra columns.
    With ``loaded``, events loaded before are skipped; then give one file per source (`rta load`
    runs a flow per file), so what a batch keeps depends on the record and the file alone, not
    on how the reading of two files interleaved: a load run again keeps the same events, forms
    the same batches, and the store drops their repeated inserts.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        stream: StreamPlan,
        *,
        loaded: LoadedIds | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        group_bytes: int = GROUP_BYTES,
        properties: bool = False,
    ) -> None:
        if loaded is not None and len(paths) != 1:
            msg = f"a file source that skips loaded events reads one file, got {len(paths)}; make one source per file"
            raise ValueError(msg)
        for path in paths:
            if not path.is_file():
                msg = f"cannot load {str(path)!r}: no such file"
                raise ConfigError(msg)
            if path.suffix.lower() not in {".jsonl", ".ndjson", ".json", ".parquet"}:
                msg = f"cannot load {str(path)!r}: unknown format {path.suffix!r}; use JSON lines (.jsonl, .ndjson) or .parquet"
                raise ConfigError(msg)
        self._paths = {str(p): p for p in paths}
        self._stream = stream
        self._chunk = chunk_bytes
        self._group = max(group_bytes, chunk_bytes)
        self._loaded = loaded
        self._properties = properties

    @override
    def list_parts(self) -> list[str]:
        return list(self._paths)

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> StatefulSourcePartition[SourceBatch, int]:
        path = self._paths[for_part]
        if path.suffix.lower() == ".parquet":
            return _ParquetPartition(path, self._stream, resume_state or 0, PARQUET_ROWS, self._loaded)
        return _JsonLinesPartition(path, self._stream, resume_state or 0, self._chunk, self._group, self._loaded, self._properties)


LOADED_TABLE = "rta_loaded_ids"
# Kept until the event would be too late to accept again (its time plus the stream's max_lateness).
_LOADED_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LOADED_TABLE} (stream LowCardinality(String), insert_id String, expires DateTime64(3, 'UTC')) "
    "ENGINE = MergeTree PARTITION BY toYYYYMMDD(expires) ORDER BY (stream, insert_id) TTL toDateTime(expires)"
)
_ROW = "_rta_row"


class LoadedIds:
    """Insert ids of the events file loads stored, so that loading them again adds nothing.

    Events without an id are known by their batch's key and row: loading the same file again
    repeats them, but not the same events in another order (nothing tells they are the same).
    The record is a table in the store (a store wiped is a record wiped). A load reads it once
    at its start, skips events whose id it holds or that the load already took (within a
    batch, the first), and adds the ids it took with :meth:`commit`, only once every insert
    of the file landed: a record written ahead could claim events whose rollup insert never
    happened, and a load that failed and runs again, finding the record as it was, keeps the
    same events and forms the same batches, whose repeated inserts the store drops. Only
    events the flow will accept count: ``now`` must be the flow's clock, so that what is late,
    ahead or invalid now is judged alike and not recorded (fixed, it may be loaded later).
    """

    def __init__(self, stream: StreamPlan, now: datetime, known: pl.Series) -> None:
        if stream.insert_id is None:
            msg = f"stream {stream.name!r} has no insert_id, so loads cannot tell repeated events; declare stream(..., insert_id=...)"
            raise ConfigError(msg)
        self.stream = stream
        self.now = now
        self.repeats = 0  # events skipped: loaded before, or twice in this load
        self._id = stream.insert_id
        # Judging only times and ids: the row index rides along as a measure to map events back to rows.
        self._judge = replace(stream, dims=(), measures=(_ROW,), user=None)
        self._seen = _Hashes()
        self._seen.add(known.hash().to_numpy())
        self._taken: list[pl.DataFrame] = []
        self._lock = threading.Lock()  # readers of several files at once (other callers of FileSource)

    @classmethod
    def read(cls, client: Client, stream: StreamPlan, now: datetime) -> LoadedIds:
        """The record of ``stream`` as it is in the store now (the table is made when missing)."""
        client.command(_LOADED_DDL)
        sql = f"SELECT insert_id FROM {LOADED_TABLE} WHERE stream = {{s:String}} AND expires > {{now:DateTime64(3, 'UTC')}}"
        params = {"s": stream.name, "now": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
        known = pl.from_arrow(client.query_arrow(sql, parameters=params))
        assert isinstance(known, pl.DataFrame)
        return cls(stream, now, known["insert_id"].cast(pl.String))

    def admit(self, frame: pl.DataFrame, key: str) -> tuple[pl.DataFrame, str]:
        """``frame`` without the events loaded before, and the batch key for what is left.

        Skipping events makes another batch of the same lines, so the key changes with the
        rows skipped (and only then): its inserts are new to the store.
        """
        if frame.is_empty():
            return frame, key
        events = normalize(frame.with_row_index(_ROW), self._judge, self.now).events
        if events.is_empty():
            return frame, key
        # An event without an id is known by its place in these lines: the same file loaded again repeats it.
        derived = pl.lit(f"{key}#") + pl.col(_ROW).cast(pl.Int64).cast(pl.String)
        named = events.with_columns(pl.when(pl.col(self._id) != "").then(pl.col(self._id)).otherwise(derived).alias(self._id))
        hashes = named[self._id].hash().to_numpy()
        first = np.zeros(len(hashes), dtype=bool)
        first[np.unique(hashes, return_index=True)[1]] = True
        with self._lock:
            repeat = ~first | self._seen.contains(hashes)
            self._seen.add(hashes[~repeat])
            self.repeats += int(repeat.sum())
            lateness = pl.duration(seconds=self.stream.max_lateness_seconds)
            expires = (pl.col(self.stream.time) + lateness).dt.cast_time_unit("ms").alias("expires")
            self._taken.append(named.filter(~repeat).select(pl.col(self._id).alias("insert_id"), expires))
        if not repeat.any():
            return frame, key
        keep = np.ones(frame.height, dtype=bool)
        keep[named[_ROW].to_numpy()[repeat].astype(np.int64)] = False
        skipped = hashlib.sha256(np.packbits(keep).tobytes()).hexdigest()[:16]
        return frame.filter(pl.Series(keep)), f"{key}:without:{skipped}"

    def commit(self, client: Client) -> int:
        """Record the ids taken since the last commit (call it once their inserts landed); returns how many."""
        with self._lock:
            taken, self._taken = self._taken, []
        rows = pl.concat(taken) if taken else pl.DataFrame()
        if rows.is_empty():
            return 0
        client.insert_arrow(LOADED_TABLE, rows.select(pl.lit(self.stream.name).alias("stream"), "insert_id", "expires").to_arrow())
        return rows.height


class _Hashes:
    """A growing set of 64-bit hashes: sorted runs merged like a binary counter (few runs, each hash moved O(log n) times).

    >>> seen = _Hashes()
    >>> seen.add(np.array([5, 3], dtype=np.uint64)); seen.add(np.array([9], dtype=np.uint64))
    >>> seen.contains(np.array([3, 4, 9], dtype=np.uint64)).tolist()
    [True, False, True]
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            found |= run[np.minimum(np.searchsorted(run, keys), len(run) - 1)] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        run = np.unique(keys)
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.union1d(self._runs.pop(), run)
        if len(run):
            self._runs.append(run)
