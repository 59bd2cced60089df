"""People: the one owner of how persons, their traits and aliases are stored and read.

The flow writes them (:mod:`rta.flows.people`), queries read them (:mod:`rta.query.people`, and
``person.<trait>`` in ad-hoc and raw-fallback queries), erasure deletes them. The tables' DDL is
the compiler's (:mod:`rta.compiler.people_ddl`); this module names the columns both sides use and
builds the read expressions:

- the *person of an event*: its user, or the user an anonymous id was aliased to;
- a *trait of an event's person*: the latest value of ``person.<key>``, NULL when the person never had it.

Both are LEFT JOINs of a raw-events SELECT on small grouped subqueries (ClickHouse has no
correlated subqueries); trait keys are bound as parameters, never written into the SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlglot.expressions as exp

from rta.compiler.people_ddl import (
    ALIASES_COLUMNS,
    ALIASES_TABLE,
    ERASURES_COLUMNS,
    ERASURES_TABLE,
    TRAITS_COLUMNS,
    TRAITS_TABLE,
    has_people,
)
from rta.compiler.properties import PERSON_PREFIX
from rta.compiler.sql_filter import Params

__all__ = [
    "ALIASES_COLUMNS",
    "ALIASES_TABLE",
    "ERASURES_COLUMNS",
    "ERASURES_TABLE",
    "PERSON_PREFIX",
    "TRAITS_COLUMNS",
    "TRAITS_TABLE",
    "PeopleJoin",
    "erased_ids",
    "id_hash",
    "latest_aliases",
    "latest_traits",
    "has_people",
    "trait_key",
]

ALIAS_REF = "_rta_alias"  # the joined subqueries' names in a SELECT over raw events
TRAITS_REF = "_rta_traits"


def trait_key(name: str) -> str | None:
    """The trait a query name refers to: ``person.plan`` -> ``plan``; None for other names."""
    return name[len(PERSON_PREFIX) :] if name.startswith(PERSON_PREFIX) and len(name) > len(PERSON_PREFIX) else None


def id_hash(person_id: str) -> str:
    """How erasure records keep an id: SHA-256 hex, so the record is not the erased id."""
    return hashlib.sha256(person_id.encode()).hexdigest()


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name), table=exp.to_identifier(table) if table else None)


def latest_aliases() -> exp.Select:
    """``anonymous -> person``, the latest link of each anonymous id (replacing happens only at merges)."""
    person = exp.func("argMax", _col("person"), _col("at"))
    return exp.select(_col("anonymous"), exp.alias_(person, "person")).from_(exp.to_table(ALIASES_TABLE)).group_by(_col("anonymous"))


def latest_traits(params: Params, keys: Iterable[str] | None = None, ids: Iterable[str] | None = None) -> exp.Select:
    """``(person, key, value, updated)``: the latest value of each trait of each person.

    Traits an anonymous id had before it was aliased count for the person it was aliased to (the
    latest value of a key over all their ids wins). ``keys`` and ``ids`` (stored ids, the person's
    own and aliased ones) narrow it.
    """
    raw, alias = "_t", ALIAS_REF
    person = exp.If(
        this=exp.EQ(this=_col("person", alias), expression=exp.Literal.string("")), true=_col("person", raw), false=_col("person", alias)
    )
    select = (
        exp.select(
            exp.alias_(person, "person"),
            exp.alias_(_col("key", raw), "key"),
            exp.alias_(exp.func("argMax", _col("value", raw), _col("updated", raw)), "value"),
            exp.alias_(exp.func("max", _col("updated", raw)), "updated"),
        )
        .from_(exp.to_table(TRAITS_TABLE).as_(raw))
        .join(latest_aliases().subquery(alias), on=exp.EQ(this=_col("anonymous", alias), expression=_col("person", raw)), join_type="LEFT")
        .group_by(_col("person"), _col("key"))
    )
    conditions: list[exp.Expr] = []
    if keys is not None:
        conditions.append(_col("key", raw).isin(*(params.add(k, "String") for k in keys)))
    if ids is not None:
        conditions.append(_col("person", raw).isin(*(params.add(i, "String") for i in ids)))
    return select.where(exp.and_(*conditions)) if conditions else select


class PeopleJoin:
    """Person columns for one SELECT over raw events: ask for them, then :meth:`join` the select.

    >>> from rta.compiler.sql_filter import Params
    >>> people = PeopleJoin(exp.column("user_id", table="e"), Params())
    >>> plan = people.trait("plan")
    >>> select = people.join(exp.select(exp.alias_(plan, "plan")).from_(exp.to_table("events").as_("e")))
    >>> "LEFT JOIN" in select.sql(dialect="clickhouse")
    True

    Like :class:`Params`, it collects while one statement is built: each trait asked for becomes a
    column of the traits subquery, bound by a parameter.
    """

    def __init__(self, user: exp.Expr, params: Params) -> None:
        self._user = user
        self._params = params
        self._keys: list[str] = []

    def person(self) -> exp.Expr:
        """The person of each event: the user its anonymous id was aliased to, else its own user id."""
        aliased = _col("person", ALIAS_REF)
        return exp.If(this=exp.EQ(this=aliased, expression=exp.Literal.string("")), true=self._user.copy(), false=aliased.copy())

    def trait(self, key: str) -> exp.Expr:
        """The latest text of trait ``key`` of each event's person (NULL when the person has none)."""
        if key not in self._keys:
            self._keys.append(key)
        return _col(f"t{self._keys.index(key)}", TRAITS_REF)

    def trait_number(self, key: str) -> exp.Expr:
        """The trait as a number (NULL where it is not one), for comparisons like ``person.age > 30``."""
        return exp.func("toFloat64OrNull", self.trait(key))

    @property
    def keys(self) -> tuple[str, ...]:
        """The trait keys asked for so far."""
        return tuple(self._keys)

    def join(self, select: exp.Select) -> exp.Select:
        """``select`` with the alias subquery joined, and the traits subquery when any trait was asked for."""
        on_alias = exp.EQ(this=_col("anonymous", ALIAS_REF), expression=self._user.copy())
        select = select.join(latest_aliases().subquery(ALIAS_REF), on=on_alias, join_type="LEFT")
        if not self._keys:
            return select
        columns: list[exp.Expr] = [_col("person")]
        for i, key in enumerate(self._keys):
            is_key = exp.EQ(this=_col("key"), expression=self._params.add(key, "String"))
            latest = exp.func("argMaxIf", _col("value"), _col("updated"), is_key)
            # A person without the trait is NULL, not '' (so is an event whose person has no traits: a Nullable's default).
            had = exp.GT(this=exp.func("countIf", is_key.copy()), expression=exp.Literal.number(0))
            columns.append(exp.alias_(exp.If(this=had, true=latest, false=exp.null()), f"t{i}"))
        latest_rows = latest_traits(self._params, self._keys).subquery("_latest")
        traits = exp.select(*columns).from_(latest_rows).group_by(_col("person"))
        on_traits = exp.EQ(this=_col("person", TRAITS_REF), expression=self.person())
        return select.join(traits.subquery(TRAITS_REF), on=on_traits, join_type="LEFT")


def erased_ids() -> exp.Select:
    """``(id_hash, at)``: every erased id's hash and its latest erasure, which the flow drops replayed events by."""
    hashed = exp.alias_(exp.func("arrayJoin", _col("id_hashes")), "id_hash")
    return exp.select(hashed, exp.alias_(exp.func("max", _col("at")), "at")).from_(exp.to_table(ERASURES_TABLE)).group_by(_col("id_hash"))
