"""Session metrics (visits, bounce rate, visit duration, pages per visit), answered from a stream's visits.

Every stream declared with ``session=`` has them, with no definition written (Plausible's and GA4's
built-in metrics). They read the sessions table the flow writes (rta/flows/sessions.py): a visit
is a set of identical rows whose signs sum to one, so the inner SELECT keeps those and nothing
depends on merges (docs/architecture.md, "Sessions"). A visit counts in the bucket of its start,
and splits and filters read its first event's dimensions, ``entry`` and ``exit`` (its first and last
pages). Metrics a project defines itself under the same names win.

A *bounce* is PostHog's: a visit of at most one page view (or screen), no other event but leaving
the page (``page_leave``, ``$pageleave``), shorter than 10 seconds. Durations are last event minus
first, in seconds (a one-event visit lasts 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import polars as pl
import sqlglot
import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan, SessionPlan, StreamPlan
from rta.compiler.sessions_ddl import BOUNCED, DURATION_MS, SESSION_COLUMNS, SESSION_METRIC_UNITS, split_fields
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl.durations import GRAINS, parse_duration
from rta.errors import DefinitionError, QueryError, did_you_mean
from rta.query.metric_query import COMPARE_SHIFT, MetricQuery, make_query
from rta.query.planner import AUTO_GRAIN_UP_TO
from rta.query.request import QueryRequest

_DURATION = f"{DURATION_MS} / 1000"


@dataclass(frozen=True, slots=True)
class SessionMetric:
    """One built-in metric over visits: its ClickHouse aggregate over the visits and over their rollup
    (None: the rollup cannot answer it), its type, whether no visit means zero."""

    name: str
    sql: str  # a constant of this module, never user text
    rollup: str | None  # over the rollup's sums (rta/compiler/sessions_ddl.py ROLLUP_SUMS)
    dtype: type[pl.DataType]
    zero_when_empty: bool
    doc: str


SESSION_METRICS = {
    m.name: m
    for m in (
        SessionMetric("visits", "count()", "sum(visits_n)", pl.Int64, True, "visits (sessions) starting in the bucket"),
        SessionMetric("bounces", f"countIf({BOUNCED})", "sum(bounces_n)", pl.Int64, True, "visits that bounced (PostHog's rule)"),
        SessionMetric(
            "bounce_rate", f"countIf({BOUNCED}) / count()", "sum(bounces_n) / sum(visits_n)", pl.Float64, False, "bounces per visit"
        ),
        SessionMetric(
            "visit_duration",
            f"avg({_DURATION})",
            "sum(duration_ms) / 1000 / sum(visits_n)",
            pl.Float64,
            False,
            "mean visit duration, seconds",
        ),
        SessionMetric(
            "median_visit_duration", f"quantileExactInclusive(0.5)({_DURATION})", None, pl.Float64, False, "median duration, seconds"
        ),
        SessionMetric("pages_per_visit", "avg(pages)", "sum(pageviews_n) / sum(visits_n)", pl.Float64, False, "page views per visit"),
        SessionMetric("visit_pageviews", "sum(pages)", "sum(pageviews_n)", pl.Int64, True, "page views of the visits"),
    )
}


assert set(SESSION_METRICS) == set(SESSION_METRIC_UNITS)  # one list of names, owned below the query layer


def session_stream(plan: Plan) -> StreamPlan | None:
    """The stream whose visits session metrics read (the first that declares sessions)."""
    return next((s for s in plan.streams if s.sessions is not None), None)


def asks_sessions(plan: Plan, request: QueryRequest) -> bool:
    """Whether the request asks session metrics only (names the project does not define itself)."""
    own = {m.name for m in plan.definitions.metrics}
    visits = [n for n in request.metrics if n in SESSION_METRICS and n not in own]
    if not visits or session_stream(plan) is None:
        return False
    if len(visits) < len(request.metrics):
        others = [n for n in request.metrics if n not in visits]
        msg = f"ask session metrics ({', '.join(visits)}) apart from event metrics ({', '.join(others)}): visits are not events"
        raise QueryError(msg)
    return True


def check_query(plan: Plan, request: QueryRequest, *, now: datetime | None = None) -> MetricQuery:
    """``request`` checked against the plan: as session metrics (from the visits) or as the project's metrics."""
    return (make_session_query if asks_sessions(plan, request) else make_query)(plan, request, now=now)


def make_session_query(plan: Plan, request: QueryRequest, *, now: datetime | None = None) -> MetricQuery:
    """Check a session-metrics request: fields, range (whole buckets), grain."""
    stream = session_stream(plan)
    assert stream is not None and stream.sessions is not None
    fields = split_fields(stream.sessions)
    for name in (*request.by, *(request.where.fields() if request.where is not None else ())):
        if name not in fields:
            hint = did_you_mean(name, list(fields))
            msg = f"cannot split or filter {', '.join(request.metrics)} by {name!r}; visits have {', '.join(fields)}; {hint}"
            raise QueryError(msg)
    if request.top is not None and not request.by:
        msg = f"top={request.top} keeps the biggest groups, but the query has none; add by= (e.g. by='source')"
        raise QueryError(msg)
    now = now or datetime.now(UTC)
    stop = request.end or now
    try:
        begin = request.start or stop - timedelta(seconds=parse_duration(request.last or "7d", what="time range (last)"))
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    if begin >= stop:
        msg = f"the time range is empty: start {begin.isoformat()} is not before end {stop.isoformat()}"
        raise QueryError(msg)
    span = int((stop - begin).total_seconds())
    grain = request.grain
    if grain == "auto":
        grain = next(g for g, limit in AUTO_GRAIN_UP_TO if limit is None or span <= limit)
    step = GRAINS[grain]
    first = datetime.fromtimestamp(int(begin.timestamp()) // step * step, UTC)
    after = datetime.fromtimestamp(-(-int(stop.timestamp()) // step) * step, UTC)
    by, where, top, order = request.by, request.where, request.top, request.order_by
    return MetricQuery(request.metrics, first, after, grain, by, where, request.compare, top, order, request.fill_gaps, request.total)


def rolled_up(sessions: SessionPlan, q: MetricQuery) -> bool:
    """Whether the rollup answers ``q``: sums only (no median), split and filtered by dimensions (not entry or exit pages)."""
    fields = {*q.by, *(q.where.fields() if q.where is not None else ())}
    return all(SESSION_METRICS[m].rollup is not None for m in q.metrics) and fields <= set(sessions.dims)


def _column(name: str) -> exp.Column:  # quoted: `end` is a keyword
    return exp.column(exp.to_identifier(name, quoted=True))


def session_sql(sessions: SessionPlan, q: MetricQuery, *, totals: bool) -> tuple[exp.Select, dict[str, object]]:
    """``q``'s metrics per bucket and split: from the rollup when it answers, else from the visits of the
    range (rows whose signs sum to one)."""
    if rolled_up(sessions, q):
        return _rollup_sql(sessions, q, totals=totals)
    params = Params("s")
    columns = [c for c, _ in SESSION_COLUMNS] + list(sessions.dims)
    time = "DateTime64(3, 'UTC')"
    column = _column
    inner = (
        exp.select(*(column(c) for c in columns))
        .from_(exp.to_table(sessions.table))
        .where(
            exp.and_(
                exp.GTE(this=column("start"), expression=params.add(q.start, time)),
                exp.LT(this=column("start"), expression=params.add(q.end, time)),
            )
        )  # fmt: skip
        .group_by(*(column(c) for c in columns))
        .having(exp.EQ(this=exp.func("sum", column("sign")), expression=exp.Literal.number(1)))
    )
    outer = exp.select(*(column(d) for d in q.by)).from_(inner.subquery("visits"))
    if q.where is not None:
        outer = outer.where(filter_sql(q.where, params, as_string=frozenset(split_fields(sessions))))
    for name in q.metrics:
        outer = outer.select(exp.alias_(sqlglot.parse_one(SESSION_METRICS[name].sql, dialect="clickhouse"), name))
    return _grouped(outer, q, "start", totals=totals), params.values


def _rollup_sql(sessions: SessionPlan, q: MetricQuery, *, totals: bool) -> tuple[exp.Select, dict[str, object]]:
    """The rollup's minutes of ``q``'s range, summed per bucket and split; groups whose visits all
    moved elsewhere (sums of zero) are left out, as the visits' reading leaves them out."""
    params = Params("s")
    bucket, time = _column("bucket"), "DateTime('UTC')"
    outer = exp.select(*(_column(d) for d in q.by)).from_(exp.to_table(sessions.rollup))
    keep: list[exp.Expr] = [
        exp.GTE(this=bucket, expression=params.add(q.start.replace(tzinfo=None), time)),
        exp.LT(this=bucket.copy(), expression=params.add(q.end.replace(tzinfo=None), time)),
    ]
    if q.where is not None:
        keep.append(filter_sql(q.where, params, as_string=frozenset(sessions.dims)))
    outer = outer.where(exp.and_(*keep))
    for name in q.metrics:
        rollup = SESSION_METRICS[name].rollup
        assert rollup is not None
        outer = outer.select(exp.alias_(sqlglot.parse_one(rollup, dialect="clickhouse"), name))
    outer = _grouped(outer, q, "bucket", totals=totals)
    return outer.having(exp.GT(this=exp.func("sum", _column("visits_n")), expression=exp.Literal.number(0))), params.values


def _grouped(outer: exp.Select, q: MetricQuery, time: str, *, totals: bool) -> exp.Select:
    keys: list[exp.Expr] = [_column(d) for d in q.by]
    if not totals:
        interval = exp.Interval(this=exp.Literal.number(GRAINS[q.grain]), unit=exp.var("SECOND"))
        bucket = exp.Anonymous(this="toStartOfInterval", expressions=[_column(time), interval])
        outer = outer.select(exp.alias_(exp.func("toDateTime", bucket), "t"))
        keys.insert(0, exp.column("t"))
    return outer.group_by(*keys).order_by(*keys) if keys else outer


def run_session_query(client: Client, plan: Plan, q: MetricQuery) -> pl.DataFrame:
    """Columns ``bucket`` (not with ``total``), the ``by`` fields, each metric (``<metric>_previous`` with ``compare``);
    like :func:`rta.query.metric_query.run_query`."""
    if q.compare is None:
        return _run(client, plan, q)
    shift = timedelta(seconds=COMPARE_SHIFT[q.compare] or int((q.end - q.start).total_seconds()))
    frame = _run(client, plan, replace(q, compare=None))
    previous = _run(client, plan, replace(q, start=q.start - shift, end=q.end - shift, compare=None, top=None))
    keys = [*([] if q.total else ["bucket"]), *q.by]
    previous = previous.with_columns(pl.col("bucket") + shift) if not q.total else previous
    renamed = previous.select(*keys, *(pl.col(m).alias(f"{m}_previous") for m in q.metrics))
    joined = frame.join(renamed, on=keys, how="left", nulls_equal=True) if keys else pl.concat([frame, renamed], how="horizontal")
    joined = joined.select(*keys, *q.metrics, *(f"{m}_previous" for m in q.metrics))
    if q.total:
        return joined.sort(q.order_by or q.metrics[0], descending=True, nulls_last=True) if q.by else joined
    return joined.sort(keys)


def _run(client: Client, plan: Plan, q: MetricQuery) -> pl.DataFrame:
    stream = session_stream(plan)
    assert stream is not None and stream.sessions is not None
    if q.top is not None:
        leaders = _fetch(client, stream.sessions, q, totals=True)
        leaders = leaders.sort(q.order_by or q.metrics[0], descending=True, nulls_last=True).head(q.top).select(q.by)
        frame = _fetch(client, stream.sessions, q, totals=q.total).join(leaders, on=list(q.by), how="semi", nulls_equal=True)
    else:
        frame = _fetch(client, stream.sessions, q, totals=q.total)
    if q.total:
        ranked = q.order_by or q.metrics[0]
        return frame.sort(ranked, descending=True, nulls_last=True) if q.by else frame
    if q.fill_gaps:
        frame = _filled(q, frame)
    return frame.sort(["bucket", *q.by])


def _fetch(client: Client, sessions: SessionPlan, q: MetricQuery, *, totals: bool) -> pl.DataFrame:
    select, params = session_sql(sessions, q, totals=totals)
    frame = pl.from_arrow(client.query_arrow(select.sql(dialect="clickhouse"), parameters=params))
    assert isinstance(frame, pl.DataFrame)
    columns = [pl.col(d).cast(pl.String) for d in q.by] + [pl.col(m).cast(SESSION_METRICS[m].dtype) for m in q.metrics]
    if not totals:
        columns.insert(0, (pl.col("t").cast(pl.Int64) * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket"))
    result = frame.select(columns)
    if totals and not q.by and result.is_empty():  # no visit at all: one row, zeros where zero is meant
        result = pl.DataFrame([_empty(m) for m in q.metrics])
    return result


def _empty(name: str) -> pl.Series:
    metric = SESSION_METRICS[name]
    return pl.Series(name, [0 if metric.zero_when_empty else None], dtype=metric.dtype)


def _filled(q: MetricQuery, frame: pl.DataFrame) -> pl.DataFrame:
    step = timedelta(seconds=GRAINS[q.grain])
    buckets = pl.DataFrame({"bucket": pl.datetime_range(q.start, q.end - step, step, time_unit="ms", time_zone="UTC", eager=True)})
    grid = buckets.join(frame.select(q.by).unique(), how="cross") if q.by else buckets
    filled = grid.join(frame, on=["bucket", *q.by], how="left", nulls_equal=True)
    zeros = [m for m in q.metrics if SESSION_METRICS[m].zero_when_empty]
    return filled.with_columns(pl.col(zeros).fill_null(0)) if zeros else filled


def session_metric_names(metrics: Sequence[str]) -> list[str]:
    """The names among ``metrics`` that are session metrics."""
    return [m for m in metrics if m in SESSION_METRICS]
