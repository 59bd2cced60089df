"""Idempotent inserts: every insert carries a deduplication token derived from source offsets."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from clickhouse_connect.driver.client import Client

# Dependent views must deduplicate too, or a retried insert would be dropped by the (Null)
# input table's targets only by luck.
_DEDUP = {"deduplicate_blocks_in_dependent_materialized_views": 1}


@dataclass(frozen=True, slots=True)
class Write:
    """One insert: rows for ``table`` and the token that makes repeating it a no-op."""

    table: str
    rows: pa.Table
    token: str
    events: int = 0  # events this write completes, for progress only
    newest_ms: int | None = None  # newest bucket written, for freshness only


def insert(client: Client, write: Write) -> None:
    """Insert ``write`` once; the same token again adds nothing."""
    settings = {**_DEDUP, "insert_deduplication_token": write.token}
    client.insert_arrow(write.table, write.rows, settings=settings)
