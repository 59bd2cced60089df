"""A person and lists of people, read through a workspace's ``read`` primitive (rta's own statements, values bound).

``ws.person(id)`` (:func:`person`) and ``ws.people`` (:class:`PeopleQuery`) are written once over
``read``, so they work on a workspace that holds the store and on one that asks its holder.
The tables and their read expressions are :mod:`rta.contract.people`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Self

import polars as pl
import sqlglot.expressions as exp

from rta.compiler.plan import Plan, StreamPlan
from rta.compiler.sql_filter import Params, filter_sql
from rta.contract.people import PERSON_PREFIX, PeopleJoin, has_people, latest_aliases, latest_traits, trait_key
from rta.dsl.expr import Expr
from rta.errors import QueryError
from rta.query.people_shown import ListedPerson, PeopleList, Person

__all__ = ["ListedPerson", "PeopleList", "PeopleQuery", "Person", "UnknownPerson", "person", "person_ids"]

Reader = Callable[[str, Mapping[str, object]], pl.DataFrame]
TIMELINE_LIMIT = 100
PEOPLE_LIMIT = 50


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name), table=exp.to_identifier(table) if table else None)


def _sql(select: exp.Expr) -> str:
    return select.sql(dialect="clickhouse")


def _kept(plan: Plan) -> tuple[StreamPlan, ...]:
    """Streams whose raw events name a user: where a person's events are."""
    return tuple(s for s in plan.streams if s.raw_table and s.user)


class UnknownPerson(QueryError):
    """Nothing is stored under a person's id (never seen, or erased)."""


def _check(plan: Plan) -> None:
    if not has_people(plan.streams):
        msg = "the project keeps no people: no stream names its user column; declare one, e.g. stream('events', user='user_id', ...)"
        raise QueryError(msg)


def person_ids(plan: Plan, read: Reader, person_id: str) -> tuple[str, ...]:
    """The person ``person_id`` is (an anonymous id resolves to the user it was aliased to), then their aliased ids."""
    _check(plan)
    if not isinstance(person_id, str) or not person_id:
        msg = f"a person's id is a non-empty string (their user id or an anonymous id); got {person_id!r}"
        raise QueryError(msg)
    params = Params()
    links = latest_aliases().subquery("_a")
    given = params.add(person_id, "String")
    select = exp.select(_col("anonymous"), _col("person")).from_(links)
    select = select.where(exp.or_(exp.EQ(this=_col("anonymous"), expression=given), exp.EQ(this=_col("person"), expression=given.copy())))
    rows = read(_sql(select), params.values)
    owner = next((str(p) for a, p in rows.iter_rows() if a == person_id), person_id)
    if owner != person_id:  # an anonymous id: its person's other ids too
        params = Params()
        select = exp.select(_col("anonymous"), _col("person")).from_(latest_aliases().subquery("_a"))
        rows = read(_sql(select.where(exp.EQ(this=_col("person"), expression=params.add(owner, "String")))), params.values)
    aliased = sorted({str(a) for a, p in rows.iter_rows() if p == owner and a != owner})
    return (owner, *aliased)


def _traits(read: Reader, ids: tuple[str, ...]) -> dict[str, str]:
    params = Params()
    rows = read(_sql(latest_traits(params, ids=ids).order_by(_col("updated"))), params.values)
    return {str(k): str(v) for k, v in rows.select("key", "value").iter_rows()}  # ordered by time: the latest wins


def _user_in(stream: StreamPlan, ids: tuple[str, ...], params: Params) -> exp.Expr:
    assert stream.user is not None
    return _col(stream.user).isin(*(params.add(i, "String") for i in ids))


def _timeline(plan: Plan, read: Reader, ids: tuple[str, ...], limit: int) -> tuple[pl.DataFrame, datetime | None, datetime | None, int]:
    """The person's newest events over every stream (time, stream, event, dims, measures, properties), first/last seen, how many."""
    frames, firsts, lasts, total = [], [], [], 0
    for stream in _kept(plan):
        assert stream.raw_table is not None
        params = Params()
        time = _col(stream.time)
        seen = exp.select(
            exp.alias_(exp.func("min", time), "first"), exp.alias_(exp.func("max", time.copy()), "last"), exp.alias_(exp.func("count"), "n")
        )
        seen_rows = read(_sql(seen.from_(exp.to_table(stream.raw_table)).where(_user_in(stream, ids, params))), params.values)
        n = int(seen_rows["n"][0] or 0)
        if not n:
            continue
        total += n
        firsts.append(seen_rows["first"][0])
        lasts.append(seen_rows["last"][0])
        params = Params()
        columns = [exp.alias_(time.copy(), "time"), exp.alias_(exp.Literal.string(stream.name), "stream")]
        columns += [_col(c) for c in (stream.user, *stream.dims, *stream.measures) if c]
        columns.append(exp.alias_(_col("props"), "properties"))
        select = exp.select(*columns).from_(exp.to_table(stream.raw_table)).where(_user_in(stream, ids, params))
        frame = read(_sql(select.order_by(exp.Ordered(this=time.copy(), desc=True)).limit(limit)), params.values)
        frames.append(frame.rename({stream.user: "id"}) if stream.user else frame)
    if not frames:
        return pl.DataFrame(schema={"time": pl.Datetime("ms", "UTC"), "stream": pl.String, "id": pl.String}), None, None, 0
    timeline = pl.concat(frames, how="diagonal_relaxed").sort("time", descending=True).head(limit)
    return timeline, min(firsts), max(lasts), total


def person(plan: Plan, read: Reader, person_id: str, *, limit: int = TIMELINE_LIMIT) -> Person:
    """A person's ids, traits (latest per key), first and last seen, and newest events.

    Raises a QueryError for an id nothing is known about (no events, traits or aliases; an erased person too).
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        msg = f"limit takes a positive number of events, got {limit!r}"
        raise QueryError(msg)
    ids = person_ids(plan, read, person_id)
    traits = _traits(read, ids)
    timeline, first, last, total = _timeline(plan, read, ids, limit)
    if not traits and not total and len(ids) == 1:
        msg = f"no person {person_id!r}: no events, traits or aliases carry that id; ws.people.limit(20) lists people"
        raise UnknownPerson(msg)
    return Person(ids[0], ids, traits, first, last, total, timeline)


def _numeric_fields(node: Expr) -> set[str]:
    """Fields a filter compares with numbers: their traits are read as numbers (``person.age > 30``)."""
    found: set[str] = set()
    field = getattr(node, "field", None)
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            found |= _numeric_fields(value)
        values = value if isinstance(value, tuple) else (value,)
        if field and any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            found.add(field)
    return found


def _renamed(node: Expr, names: Mapping[str, str]) -> Expr:
    """The filter with its fields renamed (to the columns that hold them: no trait name is written into SQL)."""
    changes: dict[str, object] = {}
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            changes[f.name] = _renamed(value, names)
        elif f.name == "field" and value in names:
            changes[f.name] = names[value]
    return replace(node, **changes)  # type: ignore[type-var]


LISTED = ("person", "keys", "values", "first_seen", "last_seen", "events", "_active")


def _seen(plan: Plan, params: Params) -> exp.Select | None:
    """``(_who, first_seen, last_seen, events)`` of every person in raw events (an aliased anonymous id counts as its person)."""
    parts: list[exp.Select] = []
    for stream in _kept(plan):
        assert stream.raw_table is not None and stream.user is not None
        people, time = PeopleJoin(_col(stream.user, "_e"), params), _col(stream.time, "_e")
        select = exp.select(exp.alias_(people.person(), "_who"), exp.alias_(exp.func("min", time), "_first"),
                            exp.alias_(exp.func("max", time.copy()), "_last"), exp.alias_(exp.func("count"), "_n"))  # fmt: skip
        parts.append(people.join(select.from_(exp.to_table(stream.raw_table).as_("_e"))).group_by(_col("_who")))
    if not parts:
        return None
    union: exp.Query = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    folds = (("min", "_first", "first_seen"), ("max", "_last", "last_seen"), ("sum", "_n", "events"))
    columns = [exp.alias_(exp.func(f, _col(c)), a) for f, c, a in folds]
    select = exp.select(_col("_who"), *columns).from_(union.subquery("_streams"))
    return select.where(exp.NEQ(this=_col("_who"), expression=exp.Literal.string(""))).group_by(_col("_who"))


def _with_events(plan: Plan, traits: exp.Select, params: Params) -> exp.Select:
    """People with traits or events (a full join: a side a person lacks is its type's default, turned into NULL here)."""
    t, s = "_t", "_s"
    seen = _seen(plan, params)
    keep = [_col(c, t) for c in traits.named_selects if c not in ("person", "updated")]
    if seen is None:
        none = [exp.alias_(exp.null(), c) for c in ("first_seen", "last_seen")]
        events, active = exp.alias_(exp.Literal.number(0), "events"), exp.alias_(_col("updated"), "_active")
        return exp.select(_col("person"), *keep, *none, events, active).from_(traits.subquery(t))
    never = exp.EQ(this=_col("events", s), expression=exp.Literal.number(0))
    person = exp.If(this=exp.EQ(this=_col("person", t), expression=exp.Literal.string("")), true=_col("_who", s), false=_col("person", t))
    columns: list[exp.Expr] = [exp.alias_(person, "person"), *keep]
    columns += [exp.alias_(exp.If(this=never.copy(), true=exp.null(), false=_col(c, s)), c) for c in ("first_seen", "last_seen")]
    active = exp.func("greatest", _col("updated", t), _col("last_seen", s))  # a missing side is 1970 here, not NULL
    columns += [exp.alias_(_col("events", s), "events"), exp.alias_(active, "_active")]
    on = exp.EQ(this=_col("person", t), expression=_col("_who", s))
    return exp.select(*columns).from_(traits.subquery(t)).join(seen.subquery(s), on=on, join_type="FULL OUTER")


@dataclass(frozen=True, slots=True)
class PeopleQuery:
    """People (id, traits, first and last seen, events): ``ws.people.where(col("person.plan") == "pro").limit(50)``.

    Everyone with traits or events is listed, a user id seen only in events too. Filters read
    traits as ``person.<key>`` (a trait a person lacks is NULL); the most recently active
    (seen or updated) come first.
    """

    plan: Plan
    read: Reader = dataclasses.field(repr=False, compare=False)
    filters: tuple[Expr, ...] = ()
    limit_rows: int = PEOPLE_LIMIT

    def where(self, *filters: Expr) -> Self:
        """Only people whose traits pass every filter (``col("person.plan") == "pro"``, ``col("person.age") > 30``)."""
        for f in filters:
            if not isinstance(f, Expr):
                msg = f"where() takes filters such as col('person.plan') == 'pro'; got {f!r}"
                raise QueryError(msg)
            bad = sorted(name for name in f.fields() if trait_key(name) is None)
            if bad:
                msg = f"ws.people filters by traits, named {PERSON_PREFIX}<trait>; got {bad[0]!r}: write col('{PERSON_PREFIX}{bad[0]}')"
                raise QueryError(msg)
        return replace(self, filters=(*self.filters, *filters))

    def limit(self, rows: int) -> Self:
        """At most ``rows`` people."""
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            msg = f"limit() takes a positive number of people, got {rows!r}"
            raise QueryError(msg)
        return replace(self, limit_rows=rows)

    def to_sql(self) -> tuple[str, dict[str, object]]:
        """The statement listing people and its parameters."""
        params = Params()
        fields = sorted({name for f in self.filters for name in f.fields()})
        numeric = {name for f in self.filters for name in _numeric_fields(f)}
        columns: list[exp.Expr] = [_col("person"), exp.alias_(exp.func("groupArray", _col("key")), "keys")]
        columns += [exp.alias_(exp.func("groupArray", _col("value")), "values"), exp.alias_(exp.func("max", _col("updated")), "updated")]
        columns_of = {name: f"_f{i}" for i, name in enumerate(fields)}
        for name in fields:
            is_key = exp.EQ(this=_col("key"), expression=params.add(trait_key(name), "String"))
            had = exp.GT(this=exp.func("countIf", is_key), expression=exp.Literal.number(0))
            value: exp.Expr = exp.If(this=had, true=exp.func("anyIf", _col("value"), is_key.copy()), false=exp.null())
            columns.append(exp.alias_(exp.func("toFloat64OrNull", value) if name in numeric else value, columns_of[name]))
        traits = exp.select(*columns).from_(latest_traits(params).subquery("_latest")).group_by(_col("person"))
        people = _with_events(self.plan, traits, params)
        select = exp.select(*(_col(c) for c in LISTED)).from_(people.subquery("_people"))
        if self.filters:  # a person without traits has none (NULL), like a person without that trait
            select = select.where(exp.and_(*(filter_sql(_renamed(f, columns_of), params) for f in self.filters)))
        ordered = select.order_by(exp.Ordered(this=_col("_active"), desc=True), _col("person")).limit(self.limit_rows)
        return _sql(ordered), params.values

    def collect(self) -> PeopleList:
        """Run it: the people, their traits, first and last seen and how many events."""
        _check(self.plan)
        sql, params = self.to_sql()
        rows = self.read(sql, params)
        listed = []
        for row in rows.iter_rows(named=True):
            traits = dict(zip(row["keys"] or [], row["values"] or [], strict=True))
            listed.append(ListedPerson(str(row["person"]), traits, row["first_seen"], row["last_seen"], int(row["events"] or 0)))
        return PeopleList(tuple(listed), self.filters)

    def __repr__(self) -> str:
        shown = " & ".join(f.code() for f in self.filters)
        return f"PeopleQuery({shown or 'everyone with events or traits'}, limit {self.limit_rows}); .collect() runs it"

    def _repr_html_(self) -> str:
        return self.collect()._repr_html_()  # a notebook cell ending in ws.people.where(...) shows the people
