"""The people tables' DDL: a person's traits, the anonymous ids aliased to them, erasure requests.

They sit in the compiler because they are part of ``plan.ddl`` (the compiler may not import the
contract); :mod:`rta.contract.people` owns how they are written and read.

- Traits: one row per (person, key), a ReplacingMergeTree on ``updated``, so the latest value of
  each key wins and ``identify({plan})`` then ``identify({email})`` keeps both. Reads take
  ``argMax(value, updated)``: replacing happens at merges, whenever ClickHouse runs them.
- Aliases: anonymous id -> person, the latest link wins the same way.
- Erasures: who asked to erase which person, when, and how many rows went. The ids are kept as
  SHA-256 hashes, so the record of an erasure is not itself the erased id; the flow hashes the ids of
  replayed events to drop those of an erased person.
"""

from __future__ import annotations

import sqlglot.expressions as exp

from rta.compiler.ddl import _column, _create_table
from rta.compiler.plan import StreamPlan

TRAITS_TABLE = "rta_person_traits"
ALIASES_TABLE = "rta_person_aliases"
ERASURES_TABLE = "rta_erasures"
_TIME = "DateTime64(3, 'UTC')"
TRAITS_COLUMNS = (("person", "String"), ("key", "LowCardinality(String)"), ("value", "String"), ("updated", _TIME))
ALIASES_COLUMNS = (("anonymous", "String"), ("person", "String"), ("at", _TIME))
ERASURES_COLUMNS = (
    ("person_hash", "String"),
    ("id_hashes", "Array(String)"),
    ("at", _TIME),
    ("requested_by", "String"),
    ("rows", "UInt64"),
)


def has_people(streams: tuple[StreamPlan, ...]) -> bool:
    """People are kept when some stream names its user column (their id is the person)."""
    return any(s.user for s in streams)


def people_tables() -> list[exp.Create]:
    """The traits, aliases and erasures tables (all ``IF NOT EXISTS``)."""
    return [
        _create_table(TRAITS_TABLE, list(TRAITS_COLUMNS), "ReplacingMergeTree(updated)", order_by=[_column("person"), _column("key")]),
        _create_table(ALIASES_TABLE, list(ALIASES_COLUMNS), "ReplacingMergeTree(at)", order_by=[_column("anonymous")]),
        _create_table(ERASURES_TABLE, list(ERASURES_COLUMNS), "MergeTree", order_by=[_column("at")]),
    ]
