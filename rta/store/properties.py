"""Materialized property columns: which a raw table has, and adding them as new properties arrive.

The first :data:`~rta.compiler.properties.MAX_MATERIALIZED` property keys a raw table receives
(of each kind: texts, numbers) get their own columns (``ADD COLUMN`` is a metadata change: no part
is rewritten). Later keys stay in the maps, where queries read them more slowly but with the same
answers.

The flow hands over properties as the line's JSON texts, which ClickHouse parses into the maps at
insert, so the keys are found after each insert, by ClickHouse, in the parts made since the last
look: it reads only the maps' keys and skips at once every row whose keys all have columns
(measured: 0.1 us per event of 8 properties, against 1.5-2 us to search the texts in Polars
beside the flow, where the search also queued behind the flow's own Polars work). A part is looked at when
it is made and again when merges make it part of a larger one, so a key a crash kept from being
looked at is found at the next merge. The parts written before a key got its column compute it
from the map when read, as any part older than a column does.
"""

from __future__ import annotations

import threading
import time
import weakref

import pyarrow as pa
import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.properties import MAX_MATERIALIZED, PROPS, PROPS_JSON, PROPS_NUM, add_materialized, number_column, text_column
from rta.compiler.sql_filter import Params

_TEXT, _NUMBER = text_column(""), number_column("")  # the prefixes: "prop.", "num."
# A first look (a new process) takes the parts of the last minute: the insert just made, and some slack for clocks.
FIRST_LOOK_SECONDS = 60
# Per client, held weakly (an id() could be a new client's once this one is collected), then per table:
# the table's materialized property keys (texts, numbers)...
_known: weakref.WeakKeyDictionary[Client, dict[str, tuple[set[str], set[str]]]] = weakref.WeakKeyDictionary()
# ...and the store's clock (unix seconds) at the last look at the table, and the parts it read (parts never change).
_looked: weakref.WeakKeyDictionary[Client, dict[str, tuple[int, frozenset[str]]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_PARTS = (
    "SELECT groupArray(name), toUnixTimestamp(now()) FROM system.parts WHERE database = currentDatabase() "
    "AND table = {table:String} AND active AND toUnixTimestamp(modification_time) >= {since:UInt32}"
)


def materialized(client: Client, table: str) -> frozenset[str]:
    """The names of ``table``'s materialized property columns (``prop.<key>``, ``num.<key>``)."""
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String} AND default_kind = 'MATERIALIZED'",
        parameters={"table": table},
    ).result_rows
    return frozenset(str(name) for (name,) in rows if str(name).startswith((_TEXT, _NUMBER)))


def materialize(client: Client, table: str, text_keys: list[str], number_keys: list[str]) -> int:
    """Add the columns of the keys given (each ``IF NOT EXISTS``), in one ``ALTER``; returns how many were asked for.

    One statement for all of them: ten ``ADD COLUMN``s took 227 ms one by one, 24 ms together.
    """
    alters = [add_materialized(table, k, number=False) for k in text_keys]
    alters += [add_materialized(table, k, number=True) for k in number_keys]
    if alters:
        actions = [action for alter in alters for action in alter.args["actions"]]
        client.command(exp.Alter(this=exp.to_table(table), kind="TABLE", actions=actions).sql(dialect="clickhouse"))
    return len(alters)


def materialize_new(client: Client, table: str, rows: pa.Table) -> int:
    """After ``rows`` were inserted into ``table``: columns for the keys its new parts brought that have none, within the limit.

    Returns how many columns were added. Rows without properties (no ``_p``, no ``props``, or
    only nulls there) look at nothing.
    """
    column = PROPS_JSON if PROPS_JSON in rows.column_names else PROPS if PROPS in rows.column_names else None
    if column is None or rows[column].null_count == rows.num_rows:
        return 0
    with _lock:  # one look at a time: two writers never add the same columns
        known, looked = _known.setdefault(client, {}), _looked.setdefault(client, {})
        if table not in known:
            names = materialized(client, table)
            texts = {n.removeprefix(_TEXT) for n in names if n.startswith(_TEXT)}
            known[table] = (texts, {n.removeprefix(_NUMBER) for n in names if n.startswith(_NUMBER)})
        texts, numbers = known[table]
        if len(texts) >= MAX_MATERIALIZED and len(numbers) >= MAX_MATERIALIZED:
            return 0
        last, read = looked.get(table, (int(time.time()) - FIRST_LOOK_SECONDS, frozenset()))
        parts, now = client.query(_PARTS, parameters={"table": table, "since": max(last - 1, 0)}).result_rows[0]
        unread = [p for p in parts if p not in read]  # a second's overlap: parts of the last look's second come again
        wanted = [have if len(have) < MAX_MATERIALIZED else None for have in (texts, numbers)]  # a kind with no room is not looked for
        new_texts, new_numbers = new_keys(client, table, unread, *wanted) if unread else ([], [])
        looked[table] = (int(now), frozenset(parts))
        new_texts = new_texts[: max(MAX_MATERIALIZED - len(texts), 0)]
        new_numbers = new_numbers[: max(MAX_MATERIALIZED - len(numbers), 0)]
        ran = materialize(client, table, new_texts, new_numbers)
        texts.update(new_texts)
        numbers.update(new_numbers)
        return ran


def new_keys(client: Client, table: str, parts: list[str], texts: set[str] | None, numbers: set[str] | None) -> tuple[list[str], list[str]]:
    """The text and number keys in ``parts`` of ``table`` not among ``texts``/``numbers`` (None: not looked for), each in name order.

    One scan of the maps' keys alone (``mapKeys`` reads a subcolumn); a row whose keys are all
    known is dropped before anything is collected (measured: 52 ms for 500K events of 8
    properties, against 70 ms with a query per map and 73 ms for ``hasAll`` alone).
    """
    params = Params()
    key = exp.to_identifier("_key")
    collected, unknown = [], []
    for name, have in ((PROPS, texts), (PROPS_NUM, numbers)):
        keys = exp.func("mapKeys", exp.column(exp.to_identifier(name)))
        if have is None:
            collected.append(exp.func("emptyArrayString"))
            continue
        missing = exp.not_(exp.func("has", params.add(sorted(have), "Array(String)"), exp.column(key.copy())))
        found = exp.func("arrayExists", exp.Lambda(this=missing, expressions=[key.copy()]), keys)
        collected.append(exp.func("groupUniqArrayArrayIf", keys.copy(), found))
        unknown.append(found.copy())
    if not unknown:
        return [], []
    in_parts = exp.func("has", params.add(parts, "Array(String)"), exp.column("_part"))
    select = exp.select(*collected).from_(exp.to_table(table)).where(exp.and_(in_parts, exp.or_(*unknown)))
    row = client.query(select.sql(dialect="clickhouse"), parameters=params.values).result_rows[0]
    return sorted(set(row[0]) - (texts or set())), sorted(set(row[1]) - (numbers or set()))


def forget() -> None:
    """Drop what is remembered of tables' columns (a table may have been dropped and made again)."""
    with _lock:
        _known.clear()
        _looked.clear()
