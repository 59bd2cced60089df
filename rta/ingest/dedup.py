"""Insert ids seen in the last hour (configurable), in bounded memory, rebuilt from the log at start.

Ids are kept as 63-bit hashes in two hash tables (arrays of buckets, probed for a whole
request at once): the current generation and the one before. The current one retires
after the window, and the previous one is dropped then, so an id is remembered for at least
the window and at most twice that. A lookup costs one bucket read per id, whatever the number of
ids held; expiry drops a whole table. A table grows by doubling; past ``max_ids`` the
current generation retires early, so memory stays bounded and the window shrinks under
extreme load rather than memory growing.

An id being written is held with its sign bit set (pending) until its write is durable;
a failed write leaves a tombstone. The tables live in this process's memory, or in files
that several collect API processes map and share (:class:`SharedTables`, under a file
lock): then every process must hash alike (the same ``PYTHONHASHSEED``).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rta.errors import LogFull, RtaError

INITIAL_SLOTS = 1 << 20  # 8 MB: half a million ids before the first doubling
WIDTH = 8  # keys per bucket
DOUBLING_ROWS = 1 << 15  # rows a doubling moves per step (2 MB of keys)
KEY_BITS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
PENDING = np.int64(-(2**63))  # the sign bit
TOMBSTONE = np.int64(-1)  # a released pending id: matches no key (keys never have all 63 bits set)
# The header: where the two generations are and what they hold.
CURRENT, CURRENT_SLOTS, CURRENT_COUNT, CURRENT_STARTED, PREVIOUS, PREVIOUS_SLOTS, PREVIOUS_COUNT, PREVIOUS_STARTED, NEXT_ID = range(9)
HEADER_FIELDS = 9
MAX_IDS = 50_000_000


def max_slots(max_ids: int) -> int:
    """Slots of the biggest table: tables are kept under half full, so two of them hold at most ``max_ids``."""
    return max(1 << 12, 1 << (max_ids.bit_length() - 1))


def memory_bound(max_ids: int = MAX_IDS) -> int:
    """Bytes the tables may take at once: two generations, and a third while one doubles."""
    return 3 * 8 * max_slots(max_ids)


class InFlight(RtaError):
    """Another request is writing events with some of these insert ids right now: its write may still fail; retry."""


def hashes_of(insert_ids: Iterable[str]) -> np.ndarray:
    """63-bit keys, never 0 (an empty slot) nor all ones (a tombstone's key bits).

    Python's str hash is fast and stable within a process (and across processes started with
    the same ``PYTHONHASHSEED``); the memory is rebuilt from the log whenever that changes.
    """
    keys = np.fromiter(map(hash, insert_ids), dtype=np.int64) & KEY_BITS
    keys[(keys == 0) | (keys == KEY_BITS)] = 1
    return keys


def _first(keys: np.ndarray) -> np.ndarray:
    """Where each key occurs first."""
    return np.sort(np.unique(keys, return_index=True)[1])


def _rows(flags: np.ndarray) -> np.ndarray:
    """Each row of an (n, 8) bool array as one integer: non-zero where any is set, ``ALL`` where all are."""
    return flags.view(np.uint64).reshape(-1)  # numpy's any/all along a short axis cost several times this


ALL = np.uint64(0x0101010101010101)


def find(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Flat slot of each key in ``table`` (pending or not), -1 where absent.

    A key lives in bucket ``key & mask``, or in a following one when that is full: at the
    load kept here (under half), nearly every key is settled in one vectorized step.
    """
    where = np.full(len(keys), -1, dtype=np.int64)
    mask = len(table) - 1
    rows = keys & mask
    todo = np.arange(len(keys))
    while todo.size:
        bucket = table.take(rows, axis=0)
        match = (bucket & KEY_BITS) == keys[todo, None]
        hit = _rows(match) != 0
        where[todo[hit]] = rows[hit] * WIDTH + match[hit].argmax(axis=1)
        more = ~hit & (_rows(bucket != 0) == ALL)  # a full bucket: the key may have moved on
        todo, rows = todo[more], (rows[more] + 1) & mask
    return where


def insert(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Put distinct keys (marked as they should be stored) that are not in ``table`` yet; returns their flat slots.

    The caller keeps the load under a half.
    """
    where = np.empty(len(keys), dtype=np.int64)
    flat = table.reshape(-1)
    mask = len(table) - 1
    rows = (keys & KEY_BITS) & mask
    todo = np.arange(len(keys))
    while todo.size:
        free = table.take(rows, axis=0) == 0
        room = _rows(free) != 0
        slot = rows * WIDTH + free.argmax(axis=1)
        flat[slot[room]] = keys[todo[room]]  # two keys after one slot: one write wins, the other tries again
        won = room & (flat.take(slot) == keys[todo])
        where[todo[won]] = slot[won]
        todo, rows = todo[~won], np.where(room, rows, (rows + 1) & mask)[~won]
    return where


def doubled(old: np.ndarray, bigger: np.ndarray, step: int = DOUBLING_ROWS) -> int:
    """Copy ``old``'s keys (tombstones left out) into an empty table of twice its rows; returns how many.

    A key in its home row r of ``old`` has home r or r + rows in ``bigger``, where the same
    column is free: every such key moves in one step, in row order. Only keys that had
    moved on from a full bucket are inserted again. (Inserting all of them anew took 0.7 s
    at 2M ids, the request threads waiting.) Rows go ``step`` at a time: whole-table
    temporaries cost more in page faults than in work (2M ids: 350 -> 50 ms).
    """
    moved, spilled = 0, []
    for start in range(0, len(old), step):
        flat = old[start : start + step].reshape(-1)
        where = np.flatnonzero((flat != 0) & (flat != TOMBSTONE))
        keys = flat[where]
        rows, columns = np.divmod(where, WIDTH)
        rows += start
        home = ((keys & KEY_BITS) & (len(old) - 1)) == rows
        bigger[(keys[home] & KEY_BITS) & (len(bigger) - 1), columns[home]] = keys[home]
        spilled.append(keys[~home])
        moved += len(keys)
    insert(bigger, np.concatenate(spilled))
    return moved


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`InsertIdFilter.claim` found: which ids are new, and where it holds them as pending."""

    fresh: list[bool]
    keys: np.ndarray
    slots: np.ndarray
    version: int  # the tables' layout then: while it stands, ``slots`` are where the keys are


class LocalTables:
    """Tables in this process's memory, behind a thread lock."""

    def __init__(self) -> None:
        self.header = np.zeros(HEADER_FIELDS, dtype=np.int64)
        self._lock = threading.Lock()

    def lock(self) -> AbstractContextManager[object]:
        """Held around every read and change."""
        return self._lock

    def create(self, ident: int, slots: int) -> np.ndarray:  # noqa: ARG002 (the shared kind names its files by it)
        """A new empty table."""
        return np.zeros((slots // WIDTH, WIDTH), dtype=np.int64)

    def attach(self, ident: int, slots: int) -> np.ndarray:
        """Local tables are never attached: this process made them all."""
        msg = f"table {ident} of {slots} slots is not in this process"
        raise LookupError(msg)

    def drop(self, ident: int) -> None:
        """Nothing to free beyond the array."""


class SharedTables:
    """Tables in files under ``folder`` (best on tmpfs), mapped by every collect API process, behind a file lock.

    A process that replaces a table writes a new file, updates the header and deletes the
    old file; the others map the new one the next time they take the lock.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.header = self._map(folder / "header", HEADER_FIELDS * 8)

    @staticmethod
    def _map(path: Path, size: int) -> np.ndarray:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                try:  # reserved now: a full tmpfs would otherwise kill the process (SIGBUS) at first write
                    os.posix_fallocate(fd, 0, size)
                except OSError as err:
                    path.unlink(missing_ok=True)
                    msg = f"no room for the insert-id memory ({size:,} bytes) in {path.parent}: {err.strerror}"
                    raise LogFull(msg) from None
            return np.frombuffer(mmap.mmap(fd, size), dtype=np.int64)
        finally:
            os.close(fd)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held around every read and change, by one thread of one process at a time."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def starting(self) -> Iterator[bool]:
        """Held by a process while it starts; yields whether the memory still has to be rebuilt from the log.

        The first process to start rebuilds it while the others wait, so none answers before
        the ids already acknowledged are known.
        """
        fd = os.open(self.folder / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            built = self.folder / "built"
            yield not built.exists()
            built.touch()
        finally:
            os.close(fd)  # and the lock with it

    def create(self, ident: int, slots: int) -> np.ndarray:
        """A new empty table (its file)."""
        return self._map(self.folder / f"t{ident}", slots * 8).reshape(-1, WIDTH)

    def attach(self, ident: int, slots: int) -> np.ndarray:
        """A table another process made."""
        return self._map(self.folder / f"t{ident}", slots * 8).reshape(-1, WIDTH)

    def drop(self, ident: int) -> None:
        """Delete a table's file (processes that map it keep it until they let go)."""
        (self.folder / f"t{ident}").unlink(missing_ok=True)


class InsertIdFilter:
    """``claim(ids)`` -> which ids are new; ``confirm``/``release`` once their write is durable or failed."""

    def __init__(self, window_seconds: int = 3600, *, max_ids: int = MAX_IDS, tables: LocalTables | SharedTables | None = None) -> None:
        self.window = window_seconds
        self.max_ids = max_ids
        self._max_slots = max_slots(max_ids)
        self._tables = tables if tables is not None else LocalTables()
        self._mapped: dict[int, np.ndarray] = {}
        with self._tables.lock():
            header = self._tables.header
            if not header[NEXT_ID]:  # the first process here sets up the generations
                minute = int(time.time()) // 60
                self._new(CURRENT, min(INITIAL_SLOTS, self._max_slots), minute)
                self._new(PREVIOUS, WIDTH, minute)

    def __len__(self) -> int:
        with self._tables.lock():
            return int(self._tables.header[CURRENT_COUNT] + self._tables.header[PREVIOUS_COUNT])

    # -- the generations, as the header describes them

    def _new(self, which: int, slots: int, started: int) -> np.ndarray:
        header = self._tables.header
        ident = int(header[NEXT_ID]) + 1
        header[NEXT_ID] = ident
        table = self._mapped[ident] = self._tables.create(ident, slots)
        header[which : which + 4] = (ident, slots, 0, started)
        return table

    def _table(self, which: int) -> np.ndarray:
        header = self._tables.header
        ident = int(header[which])
        if ident not in self._mapped:
            self._mapped[ident] = self._tables.attach(ident, int(header[which + 1]))
            for old in set(self._mapped) - {ident, int(header[CURRENT]), int(header[PREVIOUS])}:
                del self._mapped[old]  # replaced by another process
        return self._mapped[ident]

    def _retire(self, minute: int) -> None:
        """The current generation becomes the previous one; the previous is dropped."""
        header = self._tables.header
        gone = int(header[PREVIOUS])
        header[PREVIOUS : PREVIOUS + 4] = header[CURRENT : CURRENT + 4]
        # Sized for as many ids as the retiring generation held, at a quarter load.
        slots = min(self._max_slots, max(INITIAL_SLOTS, 1 << (4 * int(header[PREVIOUS_COUNT])).bit_length()))
        self._new(CURRENT, slots, minute)
        self._mapped.pop(gone, None)
        self._tables.drop(gone)

    def _roll(self, now: float) -> None:
        header = self._tables.header
        window = max(1, self.window // 60)
        passed = (int(now) // 60 - int(header[CURRENT_STARTED])) // window  # generations start whole windows apart
        if passed >= 1:
            self._retire(int(header[CURRENT_STARTED]) + passed * window)
        if passed >= 2:  # the retired generation is over a window old too
            self._retire(int(header[CURRENT_STARTED]))

    def _grow(self) -> None:
        header = self._tables.header
        old, ident = self._table(CURRENT), int(header[CURRENT])
        bigger = self._new(CURRENT, 2 * old.size, int(header[CURRENT_STARTED]))
        header[CURRENT_COUNT] = doubled(old, bigger)
        self._mapped.pop(ident, None)
        self._tables.drop(ident)

    def _room(self, count: int, now: float) -> None:
        """Make room in the current generation for ``count`` new keys, and count them in."""
        header = self._tables.header
        while 2 * (int(header[CURRENT_COUNT]) + count) > int(header[CURRENT_SLOTS]):
            if int(header[CURRENT_SLOTS]) < self._max_slots or not header[CURRENT_COUNT]:  # (one batch over the bound: it grows)
                self._grow()
            else:  # at the memory bound: the window shrinks instead
                self._retire(int(now) // 60)
        header[CURRENT_COUNT] += count

    def _held(self, which: int, where: np.ndarray) -> np.ndarray:
        """What the found slots hold: negative for ids being written."""
        return self._table(which).reshape(-1)[where[where >= 0]]

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each key is held (-1: nowhere), in the current and previous generation."""
        previous = find(self._table(PREVIOUS), keys) if self._tables.header[PREVIOUS_COUNT] else np.full(len(keys), -1)
        return find(self._table(CURRENT), keys), previous

    # -- what the collect API calls

    def claim(self, insert_ids: Sequence[str], now: float | None = None) -> Claim | None:
        """Which ids are new (repeats inside ``insert_ids`` count once); the new ones are held as pending.

        None when another request is writing one of these ids right now: its write may still
        fail, so calling these duplicates could lose them; the caller asks the client to retry.
        """
        keys = hashes_of(insert_ids)
        now = now if now is not None else time.time()
        with self._tables.lock():
            self._roll(now)
            current, previous = self._slots(keys)
            if (self._held(CURRENT, current) < 0).any() or (self._held(PREVIOUS, previous) < 0).any():
                return None
            fresh = (current < 0) & (previous < 0)
            ordered = np.sort(keys)
            if (ordered[1:] == ordered[:-1]).any():  # an id repeated within the batch: its first time counts
                first = np.zeros(len(keys), dtype=bool)
                first[_first(keys)] = True
                fresh &= first
            self._room(int(fresh.sum()), now)
            slots = insert(self._table(CURRENT), keys[fresh] | PENDING)
            return Claim(fresh.tolist(), keys[fresh], slots, int(self._tables.header[NEXT_ID]))

    def _settle(self, claim: Claim, value: np.int64 | None) -> None:
        """Pending ids become held (``value`` None) or tombstones."""
        with self._tables.lock():
            if int(self._tables.header[NEXT_ID]) == claim.version:
                table = self._table(CURRENT).reshape(-1)
                table[claim.slots] = claim.keys if value is None else value
                return
            for which in (CURRENT, PREVIOUS):  # tables were replaced meanwhile: look the ids up again
                table = self._table(which).reshape(-1)
                where = find(self._table(which), claim.keys)
                where = where[where >= 0]
                where = where[table[where] < 0]
                table[where] = (table[where] & KEY_BITS) if value is None else value

    def confirm(self, claim: Claim) -> None:
        """The claimed ids' events are durable: remember them for the window."""
        self._settle(claim, None)

    def release(self, claim: Claim) -> None:
        """The write failed: the ids may come again."""
        self._settle(claim, TOMBSTONE)

    def remember(self, arrivals: dict[int, list[str]], now: float | None = None) -> None:
        """Add ids read back from the log (at start), by the minute they arrived."""
        now = now if now is not None else time.time()
        with self._tables.lock():
            header = self._tables.header
            for minute, insert_ids in sorted(arrivals.items()):
                keys = hashes_of(insert_ids)
                keys = keys[_first(keys)]
                current, previous = self._slots(keys)
                new = keys[(current < 0) & (previous < 0)][-(self._max_slots // 2) :]  # more than a generation holds: the newest
                self._room(len(new), now)
                insert(self._table(CURRENT), new)
                header[CURRENT_STARTED] = min(int(header[CURRENT_STARTED]), minute)  # retires a window after the oldest
