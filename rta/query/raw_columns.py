"""The columns of one SELECT over a stream's raw events: declared fields, any property, any person trait.

Ad-hoc queries and the planner's raw-events fallback read raw events the same way, so both take
their columns from here:

- a declared field is its column, qualified by the table (ClickHouse would otherwise substitute an
  output alias of the same name, nesting aggregates);
- ``prop.<key>`` is the property's text, or its number where a number is asked for (a comparison
  with a number, a sum): its materialized column when the table has one, else the maps
  (``rta/compiler/properties.py``);
- ``person.<trait>`` is the latest trait of the event's person, through :class:`~rta.contract.people.PeopleJoin`
  (anonymous ids aliased to a user count as that user).
"""

from __future__ import annotations

import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.compiler.properties import PROP_PREFIX, number_column, number_value, text_column, text_value
from rta.compiler.sql_filter import Params
from rta.contract.people import PeopleJoin, trait_key
from rta.errors import QueryError


def property_key(name: str) -> str | None:
    """The property a query name refers to: ``prop.plan`` -> ``plan``; None for other names."""
    return name[len(PROP_PREFIX) :] if name.startswith(PROP_PREFIX) and len(name) > len(PROP_PREFIX) else None


def is_raw_only(name: str) -> bool:
    """Whether only raw events can answer for ``name``: an undeclared property or a person trait."""
    return property_key(name) is not None or trait_key(name) is not None


class RawColumns:
    """Column expressions for one statement over ``stream``'s raw events; :meth:`join` finishes the SELECT.

    Like :class:`~rta.compiler.sql_filter.Params`, it collects while one statement is built: the
    person traits asked for become one LEFT JOIN.
    """

    def __init__(self, stream: StreamPlan, params: Params, materialized: frozenset[str] = frozenset()) -> None:
        assert stream.raw_table is not None
        self.stream = stream
        self.table = stream.raw_table
        self._params = params
        self._materialized = materialized
        self._people: PeopleJoin | None = None

    @property
    def text_fields(self) -> frozenset[str]:
        """Declared fields compared as strings: dimensions, the user and the insert id."""
        return frozenset(self.stream.dims) | {f for f in (self.stream.user, self.stream.insert_id) if f}

    def column(self, name: str, numeric: bool = False) -> exp.Expr:
        """The expression of ``name`` per event (``numeric``: a property's or trait's number)."""
        found = self.resolve(name, numeric)
        return found if found is not None else exp.column(exp.to_identifier(name), table=exp.to_identifier(self.table))

    def resolve(self, name: str, numeric: bool) -> exp.Expr | None:
        """A property's or trait's expression; None for a declared field (the ``resolve`` of ``filter_sql``)."""
        key = property_key(name)
        if key is not None:
            if numeric:
                return number_value(key, self.table, number_column(key) in self._materialized)
            return text_value(key, self.table, text_column(key) in self._materialized)
        trait = trait_key(name)
        if trait is None:
            return None
        people = self._people_join()
        return people.trait_number(trait) if numeric else people.trait(trait)

    def person(self) -> exp.Expr:
        """The person of each event (its user, or the user its anonymous id was aliased to)."""
        return self._people_join().person()

    def _people_join(self) -> PeopleJoin:
        if self._people is None:
            if self.stream.user is None:
                msg = (
                    f"stream {self.stream.name!r} declares no user field, so its events have no person; "
                    "declare user='user_id' to ask by person"
                )
                raise QueryError(msg)
            self._people = PeopleJoin(exp.column(exp.to_identifier(self.stream.user), table=exp.to_identifier(self.table)), self._params)
        return self._people

    def join(self, select: exp.Select) -> exp.Select:
        """``select`` with the people subqueries joined when a trait or the person was asked for."""
        return self._people.join(select) if self._people is not None else select
