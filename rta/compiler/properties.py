"""How undeclared properties are stored in a raw-events table, and how a query reads one.

Every raw-events table keeps the properties a stream does not declare in two maps: ``props``
(every property's text) and ``props_num`` (the numeric ones, as numbers), parsed by ClickHouse at
insert from the JSON texts the flow passes along (``_p``, ``_n``). Properties the flow sees
often get *materialized* columns, ``prop.<key>`` and ``num.<key>``, computed by ClickHouse from the
maps at insert. A materialized column is always right: for parts written before it existed,
ClickHouse computes it from the map when it is read; it is only faster (docs/architecture.md,
"Schema-free properties": ``props['plan']`` by 10M events 1,035 ms, its column 35 ms).

Names only the compiler may know live here (the raw table's DDL is the compiler's); the contract
(:mod:`rta.contract.properties`) owns how the API flattens and writes them.
"""

from __future__ import annotations

import sqlglot.expressions as exp

PROPS = "props"
PROPS_NUM = "props_num"
# What the flow inserts instead: the line's JSON objects as text, in EPHEMERAL columns the maps'
# DEFAULTs parse (ClickHouse's JSONExtract, at insert): the flow never reads a property.
PROPS_JSON = "_p"
PROPS_NUM_JSON = "_n"
PROPS_TYPE = "Map(LowCardinality(String), String)"
PROPS_NUM_TYPE = "Map(LowCardinality(String), Float64)"
PROP_PREFIX = "prop."  # how queries name an undeclared property: prop.plan
PERSON_PREFIX = "person."  # how queries name a person's trait: person.plan
TEXT_COLUMN_TYPE = "LowCardinality(Nullable(String))"
NUMBER_COLUMN_TYPE = "Nullable(Float64)"
# Materialized columns per raw table and kind: each costs a map lookup per event at insert.
MAX_MATERIALIZED = 64


def text_column(key: str) -> str:
    """The materialized column of a property's text."""
    return f"prop.{key}"


def number_column(key: str) -> str:
    """The materialized column of a property's number."""
    return f"num.{key}"


def _column(name: str, table: str | None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=exp.to_identifier(table) if table else None)


def _lookup(map_name: str, key: str, table: str | None) -> exp.Expr:
    """``if(mapContains(m, 'k'), m['k'], NULL)``: a missing key is NULL, not the map's default ('' or 0)."""
    column = _column(map_name, table)
    literal = exp.Literal.string(key)
    found = exp.Bracket(this=column.copy(), expressions=[literal.copy()])
    return exp.If(this=exp.func("mapContains", column, literal), true=found, false=exp.null())


def text_value(key: str, table: str | None = None, materialized: bool = False) -> exp.Expr:
    """A property's text for each row: its materialized column when the table has one, else the map."""
    return _column(text_column(key), table) if materialized else _lookup(PROPS, key, table)


def number_value(key: str, table: str | None = None, materialized: bool = False) -> exp.Expr:
    """A property's number for each row (NULL where it is absent or not a number)."""
    return _column(number_column(key), table) if materialized else _lookup(PROPS_NUM, key, table)


def add_materialized(table: str, key: str, *, number: bool) -> exp.Alter:
    """``ALTER TABLE table ADD COLUMN IF NOT EXISTS`` a property's materialized column (metadata only: no rewrite)."""
    name, kind = (number_column(key), NUMBER_COLUMN_TYPE) if number else (text_column(key), TEXT_COLUMN_TYPE)
    source = number_value(key) if number else text_value(key)
    column = exp.ColumnDef(
        this=exp.to_identifier(name, quoted=True),
        kind=exp.DataType.build(kind, dialect="clickhouse"),
        constraints=[exp.ColumnConstraint(kind=exp.ComputedColumnConstraint(this=source, persisted=True))],
        exists=True,
    )
    return exp.Alter(this=exp.to_table(table), kind="TABLE", actions=[column])
