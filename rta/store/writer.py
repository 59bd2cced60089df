"""Idempotent inserts: every insert carries a deduplication token derived from source offsets."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from rta.store.properties import materialize_new

_SETTINGS = {
    # Dependent views must deduplicate too: the input tables are Null tables, views do the writing.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # Run a rollup's per-grain views side by side, and skip merging at insert (partials of one
    # insert never share a key at the minute grain; background merges and queries aggregate).
    # Together 35% faster inserts, measured on bench data.
    "parallel_view_processing": 1,
    "optimize_on_insert": 0,
}


@dataclass(frozen=True, slots=True)
class Write:
    """One insert: rows for ``table`` and the token that makes repeating it a no-op."""

    table: str
    rows: pa.Table
    token: str
    events: int = 0  # events this write completes, for progress only
    newest_ms: int | None = None  # newest event written, for the progress line's lag only


_done = 0  # inserts this process finished
_done_lock = threading.Lock()


def insert(client: Client, write: Write) -> None:
    """Insert ``write`` once; the same token again adds nothing."""
    global _done
    settings = {**_SETTINGS, "insert_deduplication_token": write.token}
    client.insert_arrow(write.table, write.rows, settings=settings)
    materialize_new(client, write.table, write.rows)  # raw events: columns for the properties it brought
    with _done_lock:
        _done += 1


def inserts_done() -> int:
    """How many inserts this process has finished: part of the query cache's data version, since the
    tally of a flush (what the version reads from the store) can land before its rollups' rows do."""
    return _done
