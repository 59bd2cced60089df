"""Materialized property columns: which a raw table has, and adding them as new properties arrive.

The first :data:`~rta.compiler.properties.MAX_MATERIALIZED` property keys a raw table receives
(of each kind: texts, numbers) get their own columns, added before the insert that brings them
(``ADD COLUMN`` is a metadata change: no part is rewritten). Later keys stay in the maps, where
queries read them more slowly but with the same answers.
"""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from rta.compiler.properties import MAX_MATERIALIZED, PROPS, PROPS_NUM, add_materialized, number_column, text_column

_TEXT, _NUMBER = text_column(""), number_column("")  # the prefixes: "prop.", "num."
_known: dict[tuple[int, str], tuple[set[str], set[str]]] = {}
_lock = threading.Lock()


def materialized(client: Client, table: str) -> frozenset[str]:
    """The names of ``table``'s materialized property columns (``prop.<key>``, ``num.<key>``)."""
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String} AND default_kind = 'MATERIALIZED'",
        parameters={"table": table},
    ).result_rows
    return frozenset(str(name) for (name,) in rows if str(name).startswith((_TEXT, _NUMBER)))


def materialize(client: Client, table: str, text_keys: list[str], number_keys: list[str]) -> int:
    """Add the columns of the keys given (each ``IF NOT EXISTS``); returns how many statements ran."""
    statements = [add_materialized(table, k, number=False) for k in text_keys]
    statements += [add_materialized(table, k, number=True) for k in number_keys]
    for statement in statements:
        client.command(statement.sql(dialect="clickhouse"))
    return len(statements)


def materialize_new(client: Client, table: str, rows: pa.Table) -> int:
    """Before ``rows`` are inserted into ``table``: columns for the keys it brings that have none, within the limit."""
    if PROPS not in rows.column_names:
        return 0
    with _lock:
        key = (id(client), table)
        if key not in _known:
            names = materialized(client, table)
            texts = {n.removeprefix(_TEXT) for n in names if n.startswith(_TEXT)}
            _known[key] = (texts, {n.removeprefix(_NUMBER) for n in names if n.startswith(_NUMBER)})
        texts, numbers = _known[key]
        new_texts = _new(rows[PROPS], texts)
        new_numbers = _new(rows[PROPS_NUM], numbers) if PROPS_NUM in rows.column_names else []
        if not new_texts and not new_numbers:
            return 0
        ran = materialize(client, table, new_texts, new_numbers)
        texts.update(new_texts)
        numbers.update(new_numbers)
        return ran


def forget() -> None:
    """Drop what is remembered of tables' columns (a table may have been dropped and made again)."""
    with _lock:
        _known.clear()


def _new(column: pa.ChunkedArray, have: set[str]) -> list[str]:
    room = MAX_MATERIALIZED - len(have)
    if room <= 0 or not len(column):
        return []
    keys = pc.unique(pa.chunked_array([chunk.keys for chunk in column.chunks]))
    return [k for k in keys.to_pylist() if k not in have][:room]
