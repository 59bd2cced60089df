"""Test helpers for analysts and for rta itself: a source of frames and brute-force oracles.

The oracle recomputes every metric of a rollup from raw events with plain Polars, the slow
obvious way, so rollups read back from the store can be compared with it. Its filters are judged
row by row in Python (:func:`holds`), not by the flow's Polars translation it checks.

The funnel oracle (:func:`oracle_funnel`), for ``ws.funnel``: per person (aliases merged), events
sorted by (time, insert id), every possible first event tried and the chain from it built step by
step (its earliest next event); the person reaches the highest step any start reaches, and the
latest start that does gives the times and the breakdown. Nothing is shared with the SQL.

The retention oracle (:func:`oracle_retention`) puts each person's events in their periods and
counts, per cohort, who came back in each; the paths oracle (:func:`oracle_paths`) walks each
person's sorted events from their first anchor. Neither shares code with the SQL either.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from rta.compiler.aggregations import aggregation_of
from rta.compiler.plan import Plan, RollupPlan
from rta.dsl import aggregates as agg
from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS
from rta.dsl.expr import Expr
from rta.dsl.funnel import Funnel
from rta.dsl.paths import Paths
from rta.dsl.retention import Retention, period_of
from rta.flows.frames import BatchSource as BatchSource  # the sources moved to the flow; tests import them here too
from rta.flows.frames import frame_batches as frame_batches

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def holds(node: Expr, row: Mapping[str, Any]) -> bool | None:
    """Whether ``node`` holds for one event: True, False, or None when a missing value leaves it unknown.

    SQL's three-valued logic, spelled out: a leaf on a missing value is unknown, ``~`` keeps it
    unknown, ``&`` is false if either side is, ``|`` true if either side is.

    >>> holds(~(ex.col("revenue") > 10), {"revenue": None}) is None
    True
    """
    match node:
        case ex.IsNull(field=f):
            return row.get(f) is None
        case ex.And(left=a, right=b):
            left, right = holds(a, row), holds(b, row)
            return False if False in (left, right) else None if None in (left, right) else True
        case ex.Or(left=a, right=b):
            left, right = holds(a, row), holds(b, row)
            return True if True in (left, right) else None if None in (left, right) else False
        case ex.Not(operand=o):
            inner = holds(o, row)
            return None if inner is None else not inner
    value = row.get(getattr(node, "field", ""))
    if value is None:
        return None
    match node:
        case ex.Compare(op=op, value=v):
            return _ORDER[op](value, v)
        case ex.IsIn(values=vs):
            return value in vs
        case ex.Between(low=lo, high=hi):
            return lo <= value <= hi
        case ex.TextMatch(op="contains", text=t):
            return t in value
        case ex.TextMatch(op="startswith", text=t):
            return value.startswith(t)
        case ex.TextMatch(op="endswith", text=t):
            return value.endswith(t)
    raise TypeError(f"the oracle has no rule for filter node {type(node).__name__}")


def filter_mask(node: Expr, events: pl.DataFrame) -> pl.Series:
    """One boolean per event: whether ``node`` holds (unknown counts as not)."""
    rows = events.select(sorted(node.fields())).iter_rows(named=True)
    return pl.Series([holds(node, row) is True for row in rows], dtype=pl.Boolean)


def _with_masks(events: pl.DataFrame, wheres: Mapping[str, Expr | None]) -> pl.DataFrame:
    return events.with_columns(filter_mask(w, events).alias(f"__where_{name}") for name, w in wheres.items() if w is not None)


def _keep(name: str, where: Expr | None) -> pl.Expr | None:
    return pl.col(f"__where_{name}") if where is not None else None


def _oracle_expr(metric_name: str, aggregation: agg.Aggregation, where: pl.Expr | None) -> pl.Expr:
    keep = where if where is not None else pl.lit(True)
    field = pl.col(aggregation.field) if aggregation.field else None
    exact = aggregation_of(aggregation).exact_polars(aggregation, field, keep)
    return exact.cast(pl.Float64).alias(metric_name)


def oracle(plan: Plan, rollup: RollupPlan, grain: str, events: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Every metric of ``rollup`` at ``grain`` from normalized ``events``, by brute force.

    ``events`` has the stream's fields with a UTC ``timestamp``-typed time column; events
    outside the accepted lateness window at ``now`` are left out, as the flow does.
    """
    stream = plan.stream(rollup.stream)
    ts = pl.col(stream.time)
    now_ms = int(now.timestamp() * 1000)
    accepted = events.filter(
        (ts.dt.epoch("ms") >= now_ms - stream.max_lateness_seconds * 1000)
        & (ts.dt.epoch("ms") <= now_ms + stream.max_future_seconds * 1000)
    )
    step = GRAINS[grain]
    bucket = ((ts.dt.epoch("s") // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    metrics = {m.name: m for m in plan.definitions.metrics}
    names = list(dict.fromkeys(p.metric for p in rollup.parts))
    accepted = _with_masks(accepted, {name: metrics[name].where for name in names})
    exprs = []
    for name in names:
        m = metrics[name]
        assert m.aggregation is not None
        exprs.append(_oracle_expr(name, m.aggregation, _keep(name, m.where)))
    keys = ["bucket", *rollup.dims]
    return accepted.with_columns(bucket, *(pl.col(d).fill_null("") for d in rollup.dims)).group_by(keys).agg(exprs).sort(keys)


def oracle_query(
    plan: Plan,
    metrics: Sequence[str],
    grain: str,
    events: pl.DataFrame,
    now: datetime,
    *,
    by: Sequence[str] = (),
    where: Expr | None = None,
) -> pl.DataFrame:
    """What a metric query should return (without gap filling), by brute force over raw events."""
    stream = next(iter(plan.streams))
    ts = pl.col(stream.time)
    epoch = ts.dt.epoch("ms")
    now_ms = int(now.timestamp() * 1000)
    keep = (epoch >= now_ms - stream.max_lateness_seconds * 1000) & (epoch <= now_ms + stream.max_future_seconds * 1000)
    if where is not None:
        keep = keep & pl.lit(filter_mask(where, events))
    step = GRAINS[grain]
    bucket = ((ts.dt.epoch("s") // step) * step * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket")
    found = [plan.definitions.metric(m) for m in metrics]
    stored = list(dict.fromkeys(b for m in found for b in m.base_metrics()))
    events = _with_masks(events, {m.name: m.where for m in stored})
    exprs = []
    for m in stored:
        assert m.aggregation is not None
        exprs.append(_oracle_expr(m.name, m.aggregation, _keep(m.name, m.where)))
    keys = ["bucket", *by]
    # Declared dimensions hold '' for a missing value; an undeclared property or a trait stays missing (a group of its own).
    declared = [d for d in by if not d.startswith(("prop.", "person."))]
    frame = events.filter(keep).with_columns(bucket, *(pl.col(d).fill_null("") for d in declared)).group_by(keys).agg(exprs)
    from rta.query.metric_query import formula_expr

    frame = frame.with_columns(formula_expr(m).alias(m.name) for m in found if m.formula is not None)
    return frame.select(*keys, *metrics).sort(keys)


# --- funnels ------------------------------------------------------------------------------------


def _chain(events: list[dict[str, Any]], masks: list[int], j: int, n: int, w: int, order: str) -> list[int]:
    """Positions of the chain started at event ``j`` (``order`` ordered or strict)."""
    chain, last = [j], j
    for k in range(1, n):
        if order == "strict":
            p = last + 1
            if p < len(events) and masks[p] >> k & 1 and events[p]["_ms"] - events[j]["_ms"] <= w:
                chain.append(p)
                last = p
                continue
            break
        found = next((p for p in range(last + 1, len(events)) if masks[p] >> k & 1 and events[p]["_ms"] - events[j]["_ms"] <= w), None)
        if found is None:
            break
        chain.append(found)
        last = found
    return chain


def _any(events: list[dict[str, Any]], masks: list[int], j: int, n: int, w: int) -> list[int]:
    """Times (ms) at which the window from event ``j`` first holds each of the steps done in it, sorted."""
    first: dict[int, int] = {}
    for p in range(j, len(events)):
        if events[p]["_ms"] - events[j]["_ms"] > w:
            continue
        for k in range(n):
            if masks[p] >> k & 1 and k not in first:
                first[k] = events[p]["_ms"]
    return sorted(first.values())


def person_funnel(events: list[dict[str, Any]], funnel: Funnel) -> tuple[int, list[int], int]:
    """One person's sorted events -> (highest step, the times of its steps in ms, the position of the first)."""
    n, w = len(funnel.steps), funnel.within_seconds * 1000
    masks = [sum(1 << k for k, step in enumerate(funnel.steps) if holds(step, e) is True) for e in events]
    best: tuple[int, list[int], int] = (0, [], -1)
    for j in range(len(events)):
        if funnel.order == "any":
            if masks[j] == 0:
                continue
            times = _any(events, masks, j, n, w)
        else:
            if not masks[j] & 1:
                continue
            times = [events[p]["_ms"] for p in _chain(events, masks, j, n, w, funnel.order)]
        if len(times) >= best[0]:  # the latest start of those reaching the highest step
            best = (len(times), times, j)
    return best


def _quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (R-7, numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def oracle_funnel(
    funnel: Funnel,
    events: pl.DataFrame,
    start: datetime,
    end: datetime,
    *,
    aliases: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    where: Expr | None = None,
) -> pl.DataFrame:
    """What ``ws.funnel`` should return for ``events`` (the stream's fields, ``prop.*`` and ``person.*`` columns)."""
    stream = funnel.stream
    aliases = aliases or {}
    people: dict[str, list[dict[str, Any]]] = {}
    for row in events.iter_rows(named=True):
        when = row[stream.time]
        if not (start <= when < end) or (where is not None and holds(where, row) is not True):
            continue
        user = row[stream.user]  # type: ignore[index]
        row["_ms"] = int(when.timestamp() * 1000)
        people.setdefault(aliases.get(user, user), []).append(row)
    n = len(funnel.steps)
    reached: dict[tuple[Any, ...], list[list[float]]] = {}  # group -> per step, each person's seconds from the step before
    counts: dict[tuple[Any, ...], list[int]] = {}
    for rows in people.values():
        rows.sort(key=lambda r: (r["_ms"], r.get(stream.insert_id or "", "") or ""))
        level, times, j = person_funnel(rows, funnel)
        if level == 0:
            continue
        group = tuple(rows[j][b] for b in by)
        counts.setdefault(group, [0] * n)
        reached.setdefault(group, [[] for _ in range(n)])
        for k in range(level):
            counts[group][k] += 1
            if k > 0:
                reached[group][k].append((times[k] - times[k - 1]) / 1000)
    out: list[dict[str, Any]] = []
    for group in sorted(counts, key=lambda g: tuple((v is None, v or "") for v in g)):
        c = counts[group]
        for k in range(n):
            name = f"{k + 1} of {n} steps" if funnel.order == "any" else funnel.names[k]
            out.append({
                "step": k + 1, "name": name, **dict(zip(by, group, strict=True)), "people": c[k],
                "conversion": c[k] / c[0], "step_conversion": 1.0 if k == 0 else (c[k] / c[k - 1] if c[k - 1] else None),
                "drop_off": 0 if k == 0 else c[k - 1] - c[k],
                "median_seconds": None if k == 0 else _quantile(reached[group][k], 0.5),
                "p90_seconds": None if k == 0 else _quantile(reached[group][k], 0.9),
            })  # fmt: skip
    schema = {"step": pl.Int64, "name": pl.String, **dict.fromkeys(by, pl.String), "people": pl.Int64, "conversion": pl.Float64,
              "step_conversion": pl.Float64, "drop_off": pl.Int64, "median_seconds": pl.Float64, "p90_seconds": pl.Float64}  # fmt: skip
    return pl.DataFrame(out, schema=schema, orient="row") if out else pl.DataFrame(schema=schema)


# --- retention and paths ------------------------------------------------------------------------


def _people(
    stream: Any, events: pl.DataFrame, start: datetime, end: datetime, aliases: Mapping[str, str], where: Expr | None
) -> dict[str, list[dict[str, Any]]]:
    """Each person's events in ``[start, end)`` that pass ``where``, sorted by (time, insert id); aliases merged."""
    people: dict[str, list[dict[str, Any]]] = {}
    for row in events.iter_rows(named=True):
        when = row[stream.time]
        if not (start <= when < end) or (where is not None and holds(where, row) is not True):
            continue
        user = row[stream.user]
        row["_ms"] = int(when.timestamp() * 1000)
        people.setdefault(aliases.get(user, user), []).append(row)
    for rows in people.values():
        rows.sort(key=lambda r: (r["_ms"], r.get(stream.insert_id or "", "") or ""))
    return people


def _group_key(group: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v or "") for v in group)


def oracle_retention(
    retention: Retention,
    events: pl.DataFrame,
    start: datetime,
    end: datetime,
    *,
    aliases: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    where: Expr | None = None,
) -> pl.DataFrame:
    """What ``ws.retention`` should return: PostHog's recurring (or first-time) retention, counted person by person."""
    every = retention.every_seconds
    first = period_of(start.timestamp(), every)
    origin = datetime(1970, 1, 5, tzinfo=UTC)
    widened = origin + timedelta(seconds=first * every)  # the range starts at its first period's start
    last = period_of((end - timedelta(milliseconds=1)).timestamp(), every)
    cells: dict[tuple[tuple[Any, ...], int], list[int]] = {}  # (group, cohort) -> people per period
    first_time = retention.cohort == "first_time"
    since = origin if first_time else widened  # a first start may lie before the range
    for rows in _people(retention.stream, events, since, end, aliases or {}, where).values():
        cohorts: dict[int, tuple[Any, ...]] = {}  # period -> the group of its first start event
        back: set[int] = set()
        for row in rows:
            p = period_of(row["_ms"] / 1000, every)
            if holds(retention.start, row) is True and p not in cohorts and not (first_time and cohorts):
                cohorts[p] = tuple(row[b] for b in by)
            if holds(retention.back, row) is True:
                back.add(p)
        for p, group in cohorts.items():
            if p < first:  # a first start before the range: no cohort here
                continue
            counts = cells.setdefault((group, p), [0] * min(retention.periods, last - p + 1))
            for k in range(len(counts)):
                counts[k] += k == 0 or p + k in back
    out = []
    for group, p in sorted(cells, key=lambda c: (_group_key(c[0]), c[1])):
        counts = cells[(group, p)]
        cohort = origin + timedelta(seconds=p * every)
        for k, people in enumerate(counts):
            out.append({"cohort": cohort, **dict(zip(by, group, strict=True)), "cohort_size": counts[0], "period": k,
                        "people": people, "retention": people / counts[0]})  # fmt: skip
    schema: dict[str, Any] = {"cohort": pl.Datetime("ms", "UTC"), **dict.fromkeys(by, pl.String), "cohort_size": pl.Int64,
                              "period": pl.Int64, "people": pl.Int64, "retention": pl.Float64}  # fmt: skip
    return pl.DataFrame(out, schema=schema, orient="row") if out else pl.DataFrame(schema=schema)


def person_path(rows: list[dict[str, Any]], paths: Paths) -> tuple[list[str], int] | None:
    """One person's path (the anchor's label and the next ``steps``, repeats merged) and the anchor's position; None: no anchor."""
    at = next((j for j, row in enumerate(rows) if holds(paths.after, row) is True), None)
    if at is None:
        return None
    labels: list[str] = []
    for row in rows[at:]:
        label = "" if row.get(paths.label) is None else str(row[paths.label])
        if not labels or labels[-1] != label:
            labels.append(label)
    return labels[: paths.steps + 1], at


def oracle_paths(
    paths: Paths,
    events: pl.DataFrame,
    start: datetime,
    end: datetime,
    *,
    aliases: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    where: Expr | None = None,
    top: int = 20,
) -> pl.DataFrame:
    """What ``ws.paths`` should return: each person's path from their first anchor, counted per group, the ``top`` kept."""
    counts: dict[tuple[Any, ...], dict[tuple[str, ...], int]] = {}
    for rows in _people(paths.stream, events, start, end, aliases or {}, where).values():
        found = person_path(rows, paths)
        if found is None:
            continue
        path, at = found
        seen = counts.setdefault(tuple(rows[at][b] for b in by), {})
        seen[tuple(path)] = seen.get(tuple(path), 0) + 1
    names = ["start", *(f"step_{k}" for k in range(1, paths.steps + 1))]
    out = []
    for group in sorted(counts, key=_group_key):
        total = sum(counts[group].values())
        ranked = sorted(counts[group].items(), key=lambda item: (-item[1], list(item[0])))[:top]
        for labels, people in ranked:
            steps = dict(zip(names, [*labels, *([None] * (len(names) - len(labels)))], strict=True))
            out.append({**dict(zip(by, group, strict=True)), **steps, "people": people, "share": people / total})
    schema = {**dict.fromkeys(by, pl.String), **dict.fromkeys(names, pl.String), "people": pl.Int64, "share": pl.Float64}
    return pl.DataFrame(out, schema=schema, orient="row") if out else pl.DataFrame(schema=schema)


def oracle_sessions(
    events: pl.DataFrame, *, gap_ms: int = 30 * 60_000, max_ms: int = 24 * 3_600_000, dims: Sequence[str] = (), path: str | None = "path"
) -> pl.DataFrame:
    """The sessions of ``events`` (``person``, ``sid``, ``ts``, ``id``, ``event``, ``anon``, the path and ``dims``), brute force.

    Each anonymous id counts as the user it was last seen with (an event carrying both); events with a
    client session id are one session per id; the others, per person sorted by (time, insert id),
    open a session when over ``gap_ms`` after the one before or over ``max_ms`` after the session's
    first. One row per session in the columns of :data:`rta.flows.sessions.SESSION_SCHEMA` and ``dims``.
    Nothing is shared with the flow's sessionizer (:mod:`rta.flows.sessions`).
    """
    rows = events.to_dicts()
    alias: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: (r["ts"], r["person"])):
        if row.get("anon") and row["anon"] != row["person"]:
            alias[row["anon"]] = row["person"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        person = alias.get(row["person"], row["person"])
        key = f"s:{row['sid']}" if row["sid"] else f"p:{person}"
        groups.setdefault(key, []).append({**row, "person": person})
    out: list[dict[str, Any]] = []
    gap, longest = timedelta(milliseconds=gap_ms), timedelta(milliseconds=max_ms)
    for key, group in groups.items():
        group.sort(key=lambda r: (r["ts"], r["id"]))
        sessions: list[list[dict[str, Any]]] = []
        for row in group:
            last = sessions[-1] if sessions else None
            if last is not None and (key.startswith("s:") or (row["ts"] - last[-1]["ts"] <= gap and row["ts"] - last[0]["ts"] <= longest)):
                last.append(row)
            else:
                sessions.append([row])
        out += [_session_row(key, visit, dims, path) for visit in sessions]
    from rta.flows.sessions import SESSION_SCHEMA  # the columns only

    schema = {**SESSION_SCHEMA, **dict.fromkeys(dims, pl.String())}
    return pl.DataFrame(out, schema=schema, orient="row") if out else pl.DataFrame(schema=schema)


def _session_row(key: str, visit: list[dict[str, Any]], dims: Sequence[str], path: str | None) -> dict[str, Any]:
    first, last = visit[0], visit[-1]
    paged = [r for r in visit if path and r.get(path)]
    pages = sum(1 for r in visit if r["event"] in ("page_view", "screen_view"))
    leaves = sum(1 for r in visit if r["event"] in ("page_leave", "$pageleave"))
    row: dict[str, Any] = {
        "key": key, "person": first["person"], "sid": first["sid"],
        "start": first["ts"], "start_id": first["id"], "end": last["ts"], "end_id": last["id"],
        "events": len(visit), "pages": pages, "interactions": len(visit) - pages - leaves,
    }  # fmt: skip
    for name, hit in (("entry", paged[0] if paged else None), ("exit", paged[-1] if paged else None)):
        row |= {name: hit and hit[path or ""], f"{name}_ts": hit and hit["ts"], f"{name}_id": hit and hit["id"]}
    return row | {d: first[d] for d in dims}
