"""Funnels from raw events, in one ClickHouse statement: each person's steps, counted exactly.

The statement has three levels (docs/architecture.md, "Funnels"):

1. the events of the range (and ``where=``), one row each: the person (aliases merged), the time in
   milliseconds, the insert id (which orders events of the same millisecond, so the answer does
   not depend on arrival), a bit mask of the steps the event matches, the breakdown values;
2. per person, those events sorted, folded (``arrayFold``) into the chain that reaches the
   highest step: its step times and the position of its first event (where the breakdown is read);
3. per breakdown group and step: people, and the median and p90 of the time from the step before
   (``quantilesExactInclusive``: interpolated, as Polars' ``linear``).

The folds, one per order (``n`` steps, a window of ``w`` ms):

- ``ordered``: per step *k*, the chain reaching *k* with the latest first event (it leaves the most
  of the window); an event matching step *k* extends the chain of step *k-1* when inside its window.
  The chain kept reaches as far as any, and from the latest start that does, each step at its earliest event.
- ``strict``: the same over consecutive events only: chains ending at the previous event extend, the
  others end; the best chain per step is kept aside.
- ``any``: from the last event back, the first time of each step at or after each event; an event
  whose window holds *k* of the steps reaches *k* (the latest such start is kept).

Values are bound parameters; the shape (the number of steps) is the definition's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce

import sqlglot.expressions as exp

from rta.compiler.plan import StreamPlan
from rta.dsl.expr import Expr
from rta.dsl.funnel import Funnel
from rta.query.person_events import EventRows, at, call, column, if_, lam, quoted

E, ACC, K = "_e", "acc", "k"  # the person's sorted events; the fold's state; a step number in arrayMap
_f, _c, _at, _lam, _if = call, column, at, lam, if_


def _steps(n: int, body: exp.Expr) -> exp.Expr:
    """``arrayMap(k -> body, range(1, n + 1))``: one value per step."""
    return _f("arrayMap", _lam(body, K), _f("range", 1, n + 1))


def _bit(mask: exp.Expr, k: exp.Expr) -> exp.Expr:
    return _f("bitTest", mask, exp.Sub(this=k, expression=exp.Literal.number(1)))


def _empty_chains(n: int) -> exp.Expr:
    return _f("arrayResize", exp.cast(exp.Array(expressions=[]), "Array(Array(Int64))", dialect="clickhouse"), n)


def _within(t: exp.Expr, chain: exp.Expr, window: exp.Expr) -> exp.Expr:
    """The event at ``t`` is inside ``chain``'s window (``chain[2]`` is its first step's time)."""
    return exp.LTE(this=exp.Sub(this=t, expression=_at(chain, 2)), expression=window)


def _extended(n: int, acc: exp.Expr, t: exp.Expr, m: exp.Expr, i: exp.Expr, window: exp.Expr, *, keep_later: bool) -> exp.Expr:
    """Per step, the chain after the event ``(t, m, i)``: started (step 1), extended from step k-1, or as before.

    ``keep_later`` (ordered): an extension replaces a chain only when its first event is later; otherwise
    (strict) chains not extended by this very event end.
    """
    k = _c(K)
    prev = _at(acc, exp.Sub(this=k, expression=exp.Literal.number(1)))
    here = _at(acc, k)
    started = exp.Array(expressions=[_f("toInt64", i), t])
    nothing = exp.cast(exp.Array(expressions=[]), "Array(Int64)", dialect="clickhouse")
    grows = exp.and_(_bit(m, k), _f("notEmpty", prev), _within(t, prev, window))
    if keep_later:
        later = exp.Paren(this=exp.or_(_f("empty", here), exp.GT(this=_at(prev, 1), expression=_at(here, 1))))
        grows = exp.and_(grows, later)
    first = _if(_bit(m, k), started, here.copy() if keep_later else nothing)
    rest = _if(grows, _f("arrayPushBack", prev.copy(), t), here.copy() if keep_later else nothing.copy())
    return _steps(n, _if(exp.EQ(this=k.copy(), expression=exp.Literal.number(1)), first, rest))


def _later_of(n: int, best: exp.Expr, chains: exp.Expr) -> exp.Expr:
    """Per step, ``chains[k]`` when it starts later than ``best[k]`` (or best has none), else ``best[k]``."""
    k = _c(K)
    new, old = _at(chains, k), _at(best, k)
    later = exp.and_(
        _f("notEmpty", new), exp.Paren(this=exp.or_(_f("empty", old), exp.GT(this=_at(new.copy(), 1), expression=_at(old.copy(), 1))))
    )
    return _steps(n, _if(later, new.copy(), old.copy()))


def _column_of(events: exp.Expr, position: int) -> exp.Expr:
    return _f("arrayMap", _lam(_f("tupleElement", _c("x"), position), "x"), events)


def fold_state(funnel: Funnel, window: exp.Expr) -> exp.Expr:
    """The fold over one person's sorted events (``_e``); :func:`chain_of` reads the best chain from it."""
    n = len(funnel.steps)
    times, masks, positions = _column_of(_c(E), 1), _column_of(_c(E), 3), _f("arrayEnumerate", _c(E))
    acc, t, m, i = _c(ACC), _c("t"), _c("m"), _c("i")
    if funnel.order == "ordered":
        return _f(
            "arrayFold",
            _lam(_extended(n, acc, t, m, i, window, keep_later=True), ACC, "t", "m", "i"),
            times,
            masks,
            positions,
            _empty_chains(n),
        )
    if funnel.order == "strict":
        cur, best = _f("tupleElement", acc, 1), _f("tupleElement", acc, 2)
        step = exp.Tuple(expressions=[_extended(n, cur, t, m, i, window, keep_later=False), _later_of(n, best, cur.copy())])
        return _f(
            "arrayFold",
            _lam(step, ACC, "t", "m", "i"),
            times,
            masks,
            positions,
            exp.Tuple(expressions=[_empty_chains(n), _empty_chains(n)]),
        )
    return _any_fold(n, times, masks, positions, window)


def chain_of(funnel: Funnel, state: exp.Expr) -> exp.Expr:
    """The person's best chain as ``[first event's position, time of step 1, ..., time of step L]`` (empty: none)."""
    none = exp.cast(exp.Array(expressions=[]), "Array(Int64)", dialect="clickhouse")
    if funnel.order == "any":
        chain = _f("tupleElement", state, 2)
        return _if(exp.GT(this=_f("length", chain), expression=exp.Literal.number(1)), chain.copy(), none)
    n = len(funnel.steps)
    chains = _later_of(n, _f("tupleElement", state, 2), _f("tupleElement", state.copy(), 1)) if funnel.order == "strict" else state
    level = _f("arrayCount", _lam(_f("notEmpty", _c("c")), "c"), chains)
    # A chain at step k means chains at every step before it, so the count of chains is the highest step.
    return _if(exp.GT(this=level, expression=exp.Literal.number(0)), _at(chains.copy(), level.copy()), none)


def _any_fold(n: int, times: exp.Expr, masks: exp.Expr, positions: exp.Expr, window: exp.Expr) -> exp.Expr:
    """Steps in any order: from the last event back, ``first[k]`` is step k's first time at or after the event."""
    acc, t, m, k = _c(ACC), _c("t"), _c("m"), _c(K)
    first, best = _f("tupleElement", acc, 1), _f("tupleElement", acc, 2)
    seen = _steps(n, _if(_bit(m, k), t, _at(first, k)))
    inside = _lam(
        exp.and_(
            exp.GTE(this=_c("x"), expression=exp.Literal.number(0)),
            exp.LTE(this=exp.Sub(this=_c("x"), expression=t.copy()), expression=window),
        ),
        "x",
    )
    reached = _f("arraySort", _f("arrayFilter", inside, seen.copy()))
    better = exp.GT(this=_f("length", reached), expression=exp.Sub(this=_f("length", best), expression=exp.Literal.number(1)))
    chain = _f("arrayConcat", exp.Array(expressions=[_f("toInt64", _c("i"))]), reached.copy())
    step = exp.Tuple(expressions=[seen, _if(better, chain, best.copy())])
    none = _f("arrayWithConstant", n, exp.Literal.number(-1))
    start = exp.Tuple(
        expressions=[
            _f("CAST", none, exp.Literal.string("Array(Int64)")),
            exp.cast(exp.Array(expressions=[exp.Literal.number(0)]), "Array(Int64)", dialect="clickhouse"),
        ]
    )
    backwards = [_f("arrayReverse", a) for a in (times, masks, positions)]
    return _f("arrayFold", _lam(step, ACC, "t", "m", "i"), *backwards, start)


@dataclass(frozen=True, slots=True)
class FunnelWindows:
    """One funnel per window: windows of ``span_ms`` ending at each of ``ends_ms`` (events in ``[end - span, end)``)."""

    ends_ms: tuple[int, ...]
    span_ms: int


def funnel_sql(
    funnel: Funnel,
    stream: StreamPlan,
    start: datetime,
    end: datetime,
    *,
    by: Sequence[str] = (),
    where: Expr | None = None,
    materialized: frozenset[str] = frozenset(),
    windows: FunnelWindows | None = None,
) -> tuple[exp.Select, dict[str, object]]:
    """The funnel's statement: rows ``(by..., step, people, median_seconds, p90_seconds)``, times from the step before.

    With ``windows``, each event is copied into every window holding it (``_w``, the window's end in
    ms) and people are folded per window: rows ``(_w, by..., step, ...)``, one statement for them all.
    """
    rows = EventRows(stream, materialized)
    bits = [_if(rows.condition(s), exp.Literal.number(1 << i), exp.Literal.number(0)) for i, s in enumerate(funnel.steps)]
    mask = _f("toUInt32", reduce(lambda a, b: exp.Add(this=a, expression=b), bits))
    outputs: list[exp.Expr] = [exp.alias_(mask, "_mask")]
    carry: list[exp.Expr] = []  # the window, carried through every level as a key
    if windows is not None:
        ts = _f("toUnixTimestamp64Milli", rows.columns.column(stream.time))
        ends = rows.params.add(list(windows.ends_ms), "Array(Int64)")
        span = rows.params.add(windows.span_ms, "Int64")
        inside = exp.and_(exp.LTE(this=exp.Sub(this=_c("_x"), expression=span), expression=ts), exp.LT(this=ts.copy(), expression=_c("_x")))
        outputs.append(exp.alias_(_f("arrayJoin", _f("arrayFilter", _lam(inside, "_x"), ends)), "_w"))
        carry = [_c("_w")]
    events = rows.select(start, end, outputs, by=by, where=where)
    params = rows.params
    row = exp.Tuple(expressions=[_c("_ts"), _c("_tie"), _c("_mask"), *(_c(f"_b{j}") for j in range(len(by)))])
    people = exp.select(_c("_person"), *_copies(carry), exp.alias_(_f("arraySort", _f("groupArray", row)), E)).from_(
        events.subquery("_events")
    )
    if funnel.order != "strict":  # only strict needs the events between steps
        people = people.where(exp.NEQ(this=_c("_mask"), expression=exp.Literal.number(0)))
    people = people.group_by(_c("_person"), *_copies(carry))
    window = params.add(funnel.within_seconds * 1000, "Int64")
    folded = exp.select(exp.alias_(fold_state(funnel, window), "_state"), _c(E), *_copies(carry)).from_(people.subquery("_people"))
    chained = exp.select(exp.alias_(chain_of(funnel, _c("_state")), "_chain"), _c(E), *_copies(carry)).from_(folded.subquery("_folded"))
    chain, level = _c("_chain"), exp.Sub(this=_f("length", _c("_chain")), expression=exp.Literal.number(1))
    first = _at(_c(E), _at(chain, 1))
    groups = [exp.alias_(_f("tupleElement", first.copy(), 4 + j), name, quoted=True) for j, name in enumerate(by)]
    persons = exp.select(
        *_copies(carry), *groups, exp.alias_(level, "_level"), exp.alias_(_f("arraySlice", chain.copy(), 2), "_times")
    ).from_(chained.subquery("_chained"))
    steps = exp.select(
        *_copies(carry),
        *(quoted(name) for name in by),
        _c("_times"),
        exp.alias_(_f("arrayJoin", _f("range", 1, exp.Add(this=_c("_level"), expression=exp.Literal.number(1)))), K),
    )
    steps = steps.from_(persons.subquery("_persons")).where(exp.GT(this=_c("_level"), expression=exp.Literal.number(0)))
    k, times = _c(K), _c("_times")
    gap = exp.Sub(this=_at(times, k), expression=_at(times.copy(), exp.Sub(this=k.copy(), expression=exp.Literal.number(1))))
    since = _if(
        exp.GT(this=k.copy(), expression=exp.Literal.number(1)),
        exp.Div(this=_f("toFloat64", gap), expression=exp.Literal.number(1000)),
        exp.null(),
    )
    keys = [*_copies(carry), *(quoted(name) for name in by)]
    quantiles = [
        exp.alias_(exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[exp.Literal.number(q)], params=[since.copy()]), alias)
        for q, alias in ((0.5, "median_seconds"), (0.9, "p90_seconds"))
    ]
    final = (
        exp.select(*keys, exp.alias_(k.copy(), "step"), exp.alias_(_f("count"), "people"), *quantiles)
        .from_(steps.subquery("_steps"))
        .group_by(*(c.copy() for c in keys), _c("step"))
        .order_by(*(c.copy() for c in keys), _c("step"))
    )
    return final, params.values


def _copies(nodes: Sequence[exp.Expr]) -> list[exp.Expr]:
    return [n.copy() for n in nodes]
