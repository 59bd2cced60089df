"""Erasure is final: rows of an erased person never land after the erasure, wherever they were parsed.

Every insert into a table that holds people's ids (raw events, traits, aliases) passes one check
right before it is written: its rows of an erased id at or before the erasure are dropped. The check
and the insert hold :data:`GATE` shared; an erasure (:func:`rta.store.people.erase`) holds it
alone while it deletes and records. So an insert either lands before the erasure's delete (which
removes its rows) or reads the erasure's record before it writes (and drops them): events that were
in flight when the person was erased cannot land afterwards. In a cluster every write goes through
the sink of the process owning the store (:mod:`rta.flows.sink`), so this one check covers events
every process parsed.

The gate is this process's; an erasure run by another process against a ClickHouse server (not
through the running process's API) is seen by the next insert's read, not serialized with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan
from rta.contract.people import ALIASES_TABLE, ERASURES_TABLE, TRAITS_TABLE, erased_ids, id_hash


class _Gate:
    """Inserts share it; an erasure has it alone. A waiting erasure holds back new inserts (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inserting = 0
        self._erasing = False
        self._waiting = 0

    @contextmanager
    def inserting(self) -> Iterator[None]:
        with self._cond:
            while self._erasing or self._waiting:
                self._cond.wait()
            self._inserting += 1
        try:
            yield
        finally:
            with self._cond:
                self._inserting -= 1
                self._cond.notify_all()

    @contextmanager
    def erasing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._erasing or self._inserting:
                self._cond.wait()
            self._waiting -= 1
            self._erasing = True
        try:
            yield
        finally:
            with self._cond:
                self._erasing = False
                self._cond.notify_all()


GATE = _Gate()


@dataclass(frozen=True, slots=True)
class IdColumns:
    """A table that holds people's ids: the columns holding them, and the time a row is of."""

    table: str
    ids: tuple[str, ...]
    time: str


def id_tables(plan: Plan) -> tuple[IdColumns, ...]:
    """Every table holding people's ids (what erasure deletes from and inserts are checked for)."""
    tables = [IdColumns(TRAITS_TABLE, ("person",), "updated"), IdColumns(ALIASES_TABLE, ("anonymous", "person"), "at")]
    return (*tables, *(IdColumns(s.raw_table, (s.user,), s.time) for s in plan.streams if s.raw_table and s.user))


def erased_mask(frame: pl.DataFrame, ids: tuple[str, ...], time: str, erased: dict[str, datetime]) -> pl.Series | None:
    """Which rows of ``frame`` to keep: not those of an erased id (hashed) at or before its erasure; None keeps all.

    Only rows at or before the latest erasure can be dropped, so live rows hash nothing; older
    ones hash their distinct ids (measured: 75 ms for 20K ids of 100K events).
    """
    if not erased or frame.is_empty():
        return None
    at = pl.col(time)
    old = frame.filter(at <= max(erased.values()))
    if old.is_empty():
        return None
    drop = pl.lit(False)
    for column in ids:
        if column not in frame.columns:
            continue
        hit = [(i, erased[h]) for i in old[column].drop_nulls().unique().to_list() if (h := id_hash(i)) in erased]
        if hit:
            until = pl.col(column).replace_strict([i for i, _ in hit], [t for _, t in hit], default=None, return_dtype=frame.schema[time])
            drop = drop | (until.is_not_null() & (at <= until)).fill_null(False)
    keep = frame.select((~drop).alias("keep")).to_series()
    return None if keep.all() else keep


def kept_rows(rows: pa.Table, table: IdColumns, erased: dict[str, datetime]) -> pa.Table:
    """``rows`` for ``table`` without those of erased ids at or before their erasure."""
    if not erased or rows.num_rows == 0 or table.time not in rows.column_names:
        return rows
    oldest = pc.min(rows.column(table.time)).as_py()  # live rows are all after the latest erasure: nothing to convert
    if oldest is None or oldest > max(erased.values()):
        return rows
    columns = [c for c in (*table.ids, table.time) if c in rows.column_names]
    keep = erased_mask(pl.DataFrame(pl.from_arrow(rows.select(columns))), table.ids, table.time, erased)
    return rows if keep is None else rows.filter(keep.to_arrow())


class ErasedIds:
    """The erased id hashes and times, as the store has them now; read again only when the erasures changed.

    One cheap statement per call (the number of erasure records and the latest, from a small
    table): the check must see an erasure recorded a moment ago.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[int, object] | None = None
        self._erased: dict[str, datetime] = {}

    def current(self, client: Client) -> dict[str, datetime]:
        """Erased id hash -> latest erasure time."""
        with self._lock:
            version = _version(client)
            if version != self._version:
                rows = client.query(erased_ids().sql(dialect="clickhouse")).result_rows if version[0] else []
                self._erased = {str(h): (at if at.tzinfo else at.replace(tzinfo=UTC)) for h, at in rows}
                self._version = version
            return self._erased


def _version(client: Client) -> tuple[int, object]:
    # Records are only appended; their number and the latest tell a new one (the table exists once the schema is applied).
    count, latest = client.query(f"SELECT count(), max(at) FROM {ERASURES_TABLE}").result_rows[0]
    return int(count), latest


class InsertCheck:
    """The sink's check before an insert (see the module): drop erased people's rows, holding the gate."""

    def __init__(self, plan: Plan) -> None:
        self._tables = {t.table: t for t in id_tables(plan)}
        self._erased = ErasedIds()

    def holds_ids(self, table: str) -> bool:
        """Whether inserts into ``table`` are checked."""
        return table in self._tables

    def rows(self, client: Client, table: str, rows: pa.Table) -> pa.Table:
        """``rows`` without erased people's; call it holding ``GATE.inserting()``, with the insert."""
        return kept_rows(rows, self._tables[table], self._erased.current(client))
