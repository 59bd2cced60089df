"""Metric queries: metrics over a time range, by dimensions, with filters -> a Polars frame.

Each stored metric is answered by the table the planner picks; metrics on the same table
share one SELECT; formulas are computed after merging their parts (never an average of
ratios). Values are always bound as ``{name:Type}`` parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import polars as pl
import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.aggregations import aggregation_of, stored_as
from rta.compiler.plan import Plan
from rta.compiler.sql_filter import Params, filter_sql
from rta.dsl import expr as ex
from rta.dsl.durations import GRAINS, parse_duration
from rta.dsl.metric import Arith, Metric
from rta.errors import DefinitionError, QueryError, did_you_mean
from rta.query.planner import Choice, RawChoice, auto_grain, route, why_raw
from rta.query.raw_columns import is_raw_only, property_key
from rta.query.raw_metrics import integral, raw_metrics_sql
from rta.query.request import QueryRequest
from rta.store.client import is_embedded, rows_scanned
from rta.store.properties import materialized

COMPARE_SHIFT = {"previous_period": None, "previous_day": 86400, "previous_week": 7 * 86400, "previous_year": 364 * 86400}
# Times the store can hold: ClickHouse DateTime runs from 1970-01-01 to 2106-02-07 06:28:15 UTC
# (https://clickhouse.com/docs/sql-reference/data-types/datetime); ranges end on a whole day before that.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 1, 1, tzinfo=UTC)
MAX_TOP = 1_000_000
# Filling gaps makes a row per bucket and group: a far-future end passes every retention, so
# without a bound one request could ask for billions of rows.
MAX_FILLED_ROWS = 2_000_000


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """A checked query: a half-open UTC range ``[start, end)`` of whole buckets."""

    metrics: tuple[str, ...]
    start: datetime
    end: datetime
    grain: str
    by: tuple[str, ...] = ()
    where: ex.Expr | None = None
    compare: str | None = None
    top: int | None = None
    order_by: str | None = None
    fill_gaps: bool = True
    total: bool = False  # one value per group for the whole range instead of a series

    @property
    def dims(self) -> set[str]:
        """Dimensions the query splits or filters by."""
        return set(self.by) | (set(self.where.fields()) if self.where is not None else set())


def make_query(plan: Plan, request: QueryRequest | str | Sequence[str], *, now: datetime | None = None, **options: object) -> MetricQuery:
    """Check a request against the definitions (``request`` may be metric names with the options
    of :class:`~rta.query.request.QueryRequest`); errors name the bad value and the valid ones."""
    r = request if isinstance(request, QueryRequest) else QueryRequest.of(request, **options)
    names = r.metrics
    if not names:
        msg = "no metrics asked for; pass metrics=['page_views', ...]"
        raise QueryError(msg)
    _unique("metrics", names, "ask for each metric once")
    found = [plan.definitions.metric(n) for n in names]
    splits, condition = r.by, r.where
    _unique("by", splits, "split by each dimension once")
    streams = [s for s in plan.streams if s.name in {b.stream.name for m in found for b in m.base_metrics() if b.stream}]
    dims = sorted({d for s in streams for d in s.dims})
    raw = all(s.raw_table is not None for s in streams)  # raw events answer what no rollup can
    measures = sorted({m for s in streams for m in s.measures}) if raw else []
    for name, split in (*((n, True) for n in splits), *((n, False) for n in (sorted(condition.fields()) if condition is not None else ()))):
        if name in dims or (raw and (is_raw_only(name) or (not split and name in measures))):
            continue
        if is_raw_only(name) or name in measures:
            kept = ", ".join(s.name for s in streams if s.raw_table is None)
            what = "split by" if split else "filter"
            msg = (
                f"cannot {what} {', '.join(names)} by {name!r}: only raw events have it, "
                f"and stream {kept} keeps none; declare it with keep_raw='30d'"
            )
            raise QueryError(msg)
        hint = did_you_mean(name, dims + measures) + "; undeclared properties are prop.<name>, people's traits person.<name>"
        msg = f"cannot split or filter {', '.join(names)} by {name!r}; {hint}"
        raise QueryError(msg)
    if r.top is not None and not 1 <= r.top <= MAX_TOP:
        msg = f"top= takes a positive number of groups, got {r.top!r}; ask for 1 to {MAX_TOP:,}"
        raise QueryError(msg)
    if r.top is not None and not splits:
        msg = f"top={r.top} keeps the biggest groups, but the query has none; add by= (e.g. by=country) or leave top out"
        raise QueryError(msg)
    if r.order_by is not None and r.order_by not in names:
        msg = f"order_by={r.order_by!r} is not among the metrics asked for: {', '.join(names)}"
        raise QueryError(msg)
    now = now or datetime.now(UTC)
    for name, when in (("start", r.start), ("end", r.end)):
        if when is not None:
            _storable(f"{name}={when.isoformat()}", when)
    stop = r.end or now
    last = r.last or "7d"
    try:
        begin = r.start or stop - timedelta(seconds=parse_duration(last, what="time range (last)"))
    except DefinitionError as err:
        raise QueryError(str(err)) from None
    if r.start is None:
        _storable(f"last={last!r} back from {stop.isoformat()} starts at {begin.isoformat()}, which", begin)
    if begin >= stop:
        msg = f"the time range is empty: start {begin.isoformat()} is not before end {stop.isoformat()}"
        raise QueryError(msg)
    grain = r.grain
    if grain == "auto":
        age = int((now - begin).total_seconds())
        split_dims = set(splits) | (set(condition.fields()) if condition is not None else set())
        stored = [b.name for m in found for b in m.base_metrics()]
        grain = auto_grain(plan, stored, split_dims, int((stop - begin).total_seconds()), age)
    step = GRAINS[grain]
    # Whole buckets: the range starts on a bucket boundary and includes the current bucket.
    first = datetime.fromtimestamp(int(begin.timestamp()) // step * step, UTC)
    after = datetime.fromtimestamp(-(-int(stop.timestamp()) // step) * step, UTC)
    if r.compare is not None:
        earlier = first - timedelta(seconds=COMPARE_SHIFT[r.compare] or int((after - first).total_seconds()))
        _storable(f"compare={r.compare!r} reaches back to {earlier.isoformat()}, which", earlier)
    return MetricQuery(names, first, after, grain, splits, condition, r.compare, r.top, r.order_by, r.fill_gaps, r.total)


def _unique(option: str, names: Sequence[str], hint: str) -> None:
    """Refuse a name given twice: it would be two columns of the same name."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            msg = f"{option} names {name!r} twice; {hint}"
            raise QueryError(msg)
        seen.add(name)


def _storable(what: str, when: datetime) -> None:
    """Refuse a time outside what the store holds; ``what`` names it ("start=..." or a sentence up to "which")."""
    if not EARLIEST.timestamp() <= when.timestamp() <= LATEST.timestamp():  # timestamps: no overflow at year 1 or 9999
        msg = f"{what} is outside the times the store holds; valid times are {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} UTC"
        raise QueryError(msg)


def metric_value(choice: Choice, metric: str) -> exp.Expr:
    """A stored metric merged from its parts in ``choice``'s table (an average: merged sum / merged count)."""
    parts = choice.rollup.metric_parts(metric)
    return stored_as([p.kind for p in parts]).value([p.merged() for p in parts])


def stored_sql(q: MetricQuery, choice: Choice, metrics: Sequence[str], *, totals: bool = False) -> tuple[exp.Select, dict[str, object]]:
    """One SELECT of ``metrics`` (stored in ``choice``) by bucket and ``q.by``; ``totals`` merges the whole range."""
    params = Params()
    bucket = exp.column("bucket")
    dims = [exp.column(exp.to_identifier(d)) for d in q.by]
    conditions: list[exp.Expr] = [
        exp.GTE(this=bucket, expression=params.add(q.start.strftime("%Y-%m-%d %H:%M:%S"), "DateTime('UTC')")),
        exp.LT(this=bucket, expression=params.add(q.end.strftime("%Y-%m-%d %H:%M:%S"), "DateTime('UTC')")),
    ]
    if q.where is not None:
        conditions.append(filter_sql(q.where, params, as_string=frozenset(q.where.fields())))
    keys: list[exp.Expr] = [] if totals else [exp.column("t")]
    step = exp.Interval(this=exp.Literal.number(GRAINS[q.grain]), unit=exp.var("SECOND"))
    time = [] if totals else [exp.alias_(exp.func("toStartOfInterval", bucket, step), "t")]
    select = (
        exp.select(*time, *dims, *(exp.alias_(metric_value(choice, m), m) for m in metrics))
        .from_(exp.to_table(choice.table.table))
        .where(exp.and_(*conditions, copy=False), copy=False)
    )
    if keys or dims:
        select = select.group_by(*keys, *dims, copy=False).order_by(*keys, *dims, copy=False)
    return select, params.values


@dataclass(frozen=True, slots=True)
class Executed:
    """What one SELECT cost, for explanations."""

    table: str
    sql: str
    rows_read: int
    bytes_read: int
    seconds: float
    raw_because: str | None = None  # set when raw events answered: why no rollup did


def fetch(
    client: Client,
    q: MetricQuery,
    choice: Choice | RawChoice,
    metrics: Sequence[str],
    *,
    totals: bool = False,
    rank: tuple[str, str] | None = None,
    log: list[Executed] | None = None,
    plan: Plan | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Run :func:`stored_sql` (or, for raw events, :func:`~rta.query.raw_metrics.raw_metrics_sql`, which needs
    ``plan``); columns ``bucket`` (UTC; absent for totals), the ``by`` dimensions, one per metric.

    ``rank=(metric, total)`` keeps the top ``q.top`` groups by that metric's range total (:func:`top_sql`).
    """
    reason = None
    if isinstance(choice, RawChoice):
        assert plan is not None
        used = [n for n in (*q.by, *(q.where.fields() if q.where is not None else ())) if property_key(n) is not None]
        select, params = raw_metrics_sql(
            plan, q, choice, metrics, totals=totals, materialized=materialized(client, choice.table) if used else frozenset()
        )
        age = int(((now or datetime.now(UTC)) - q.start).total_seconds())
        reason = why_raw(plan, metrics[0], q.grain, q.dims, age)
    else:
        select, params = stored_sql(q, choice, metrics, totals=totals)
    if rank is not None and q.top is not None:
        select = top_sql(select, q.by, *rank, q.top)
    sql = select.sql(dialect="clickhouse")
    if log is not None:  # explain: run it once more through the path that reports what was read
        summary = client.query(sql, parameters=params).summary or {}
        read_rows, read_bytes = int(summary.get("read_rows", 0)), int(summary.get("read_bytes", 0))
        if is_embedded(client):  # chdb counts the rows it returns: ask ClickHouse what the SELECT scans
            read_rows, read_bytes = rows_scanned(client, sql, params), 0  # and has no count of bytes scanned
        table = choice.table if isinstance(choice, RawChoice) else choice.table.table
        log.append(Executed(table, sql, read_rows, read_bytes, int(summary.get("elapsed_ns", 0)) / 1e9, reason))
    frame = pl.from_arrow(client.query_arrow(sql, parameters=params))
    assert isinstance(frame, pl.DataFrame)
    columns = [pl.col(d).cast(pl.String) for d in q.by] + [pl.col(m).cast(_dtype(choice, m, plan)) for m in metrics]
    if not totals:  # DateTime arrives through Arrow as uint32 seconds
        columns.insert(0, (pl.col("t").cast(pl.Int64) * 1000).cast(pl.Datetime("ms", "UTC")).alias("bucket"))
    return frame.select(columns)


def _dtype(choice: Choice | RawChoice, metric: str, plan: Plan | None) -> type[pl.DataType]:
    """Counts and distinct counts are whole numbers; everything else a float."""
    if isinstance(choice, RawChoice):
        assert plan is not None
        whole = integral(plan, metric)
    else:
        whole = stored_as([p.kind for p in choice.rollup.metric_parts(metric)]).integral
    return pl.Int64 if whole else pl.Float64


def top_sql(select: exp.Select, by: Sequence[str], ranked: str, total: str, top: int) -> exp.Select:
    """Only the ``top`` groups of a series ``select``, ranked by the range ``total`` (sum, min, max) of ``ranked``.

    Ties go to the first groups in dimension order, so the answer does not depend on the scan.
    """
    dims = [exp.column(exp.to_identifier(d)) for d in by]
    columns = [exp.column(e.alias_or_name) for e in select.expressions]
    in_range = exp.Window(this=exp.func(total, exp.column(ranked)), partition_by=dims)
    unordered = select.copy()
    unordered.set("order", None)
    totals = exp.select("*", exp.alias_(in_range, "_total")).from_(unordered.subquery())
    biggest = exp.Ordered(this=exp.column("_total"), desc=True, nulls_first=False)
    order = exp.Order(expressions=[biggest, *(exp.Ordered(this=d) for d in dims)])
    place = exp.Window(this=exp.func("dense_rank"), order=order)
    placed = exp.select("*", exp.alias_(place, "_place")).from_(totals.subquery())
    kept = exp.LTE(this=exp.column("_place"), expression=exp.Literal.number(top))
    return exp.select(*columns).from_(placed.subquery()).where(kept).order_by(exp.column("t"), *dims)


def formula_expr(node: Arith | Metric | float) -> pl.Expr:
    """A formula as a Polars expression over merged metric columns (division by zero gives null)."""
    if isinstance(node, Metric):
        return pl.col(node.name) if node.formula is None else formula_expr(node.formula)
    if isinstance(node, float):
        return pl.lit(node)
    left, right = formula_expr(node.left), formula_expr(node.right)
    if node.op == "/":
        return pl.when(right == 0).then(None).otherwise(left / right)
    return {"+": left + right, "-": left - right, "*": left * right}[node.op]


def _stored(plan: Plan, q: MetricQuery) -> list[Metric]:
    return list(dict.fromkeys(b for n in q.metrics for b in plan.definitions.metric(n).base_metrics()))


def _tables(plan: Plan, q: MetricQuery, now: datetime) -> dict[Choice | RawChoice, list[str]]:
    """The table answering each stored metric, and the metrics each table answers."""
    age = int((now - q.start).total_seconds())
    tables: dict[Choice | RawChoice, list[str]] = {}
    for base in _stored(plan, q):
        tables.setdefault(route(plan, base.name, q.grain, q.dims, age), []).append(base.name)
    return tables


def raw_answered(plan: Plan, q: MetricQuery, now: datetime | None = None) -> str | None:
    """One line saying that raw events answer ``q`` and why, or None when rollups answer all of it."""
    now = now or datetime.now(UTC)
    raw = [(c, names) for c, names in _tables(plan, q, now).items() if isinstance(c, RawChoice)]
    if not raw:
        return None
    age = int((now - q.start).total_seconds())
    why = "; ".join(why_raw(plan, names[0], q.grain, q.dims, age) for _, names in raw)
    return f"answered from raw events ({', '.join(c.table for c, _ in raw)}): {why}"


def _fetch_all(client: Client, plan: Plan, q: MetricQuery, now: datetime, *, totals: bool, log: list[Executed] | None) -> pl.DataFrame:
    frames = [
        fetch(client, q, choice, names, totals=totals, log=log, plan=plan, now=now) for choice, names in _tables(plan, q, now).items()
    ]
    return _joined(frames, ([] if totals else ["bucket"]) + list(q.by))


def _fetch_top(client: Client, plan: Plan, q: MetricQuery, now: datetime, log: list[Executed] | None) -> pl.DataFrame:
    """The series of the top ``q.top`` groups by the range total of ``q.order_by`` (else the first metric)."""
    ranked, top = plan.definitions.metric(q.order_by or q.metrics[0]), q.top or 0
    # A range total that follows from the buckets' values (counts, sums, min, max) ranks inside the
    # series' own scan; the others (distinct counts, averages, quantiles) rank by a merge of the whole range.
    total = aggregation_of(ranked.aggregation).range_total if ranked.aggregation is not None else None
    if total is None:  # rank by merging the whole range first, then fetch the leaders' series
        totals = _with_formulas(plan, q, _fetch_all(client, plan, q, now, totals=True, log=log))
        leaders = totals.sort(ranked.name, descending=True, nulls_last=True).head(top).select(q.by)
        return _fetch_all(client, plan, replace(q, where=_and(q.where, _groups_filter(leaders))), now, totals=False, log=log)
    tables = _tables(plan, q, now)
    home = next(choice for choice, names in tables.items() if ranked.name in names)
    frames = [fetch(client, q, home, tables.pop(home), rank=(ranked.name, total.sql), log=log, plan=plan, now=now)]
    if tables:  # metrics stored elsewhere: the same groups
        q_top = replace(q, where=_and(q.where, _groups_filter(frames[0].select(q.by).unique(maintain_order=True))))
        frames += [fetch(client, q_top, choice, names, log=log, plan=plan, now=now) for choice, names in tables.items()]
    return _joined(frames, ["bucket", *q.by])


def _joined(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    joined = frames[0]
    for frame in frames[1:]:
        joined = (
            joined.join(frame, on=keys, how="full", coalesce=True, nulls_equal=True)
            if keys
            else pl.concat([joined, frame], how="horizontal")
        )
    return joined


def _fill(plan: Plan, q: MetricQuery, frame: pl.DataFrame) -> pl.DataFrame:
    """Every bucket of the range for every group seen; empty buckets are 0 where that is what they mean."""
    step = GRAINS[q.grain]
    groups = frame.select(q.by).unique() if q.by else None
    count = int((q.end - q.start).total_seconds()) // step  # counted before the grid is made
    rows = count * (groups.height if groups is not None else 1)
    if rows > MAX_FILLED_ROWS:
        split = f" by {groups.height:,} groups" if groups is not None else ""
        msg = (
            f"filling the gaps makes {rows:,} rows ({count:,} buckets of {q.grain}{split}), over the limit of "
            f"{MAX_FILLED_ROWS:,}; ask for a coarser grain, a shorter range, top= or fill_gaps=false"
        )
        raise QueryError(msg)
    buckets = pl.DataFrame(
        {
            "bucket": pl.datetime_range(
                q.start, q.end - timedelta(seconds=step), timedelta(seconds=step), time_unit="ms", time_zone="UTC", eager=True
            )
        }
    )
    grid = buckets.join(groups, how="cross") if groups is not None else buckets
    filled = grid.join(frame, on=["bucket", *q.by], how="left", nulls_equal=True)  # a property's missing value is a group too
    # Empty buckets mean zero for counts, totals and distinct counts; for min, max, averages, quantiles "no value".
    zeros = [m.name for m in _stored(plan, q) if m.aggregation is not None and aggregation_of(m.aggregation).zero_when_empty]
    return filled.with_columns(pl.col(zeros).fill_null(0)) if zeros else filled


def run_query(
    client: Client, plan: Plan, q: MetricQuery, *, now: datetime | None = None, log: list[Executed] | None = None
) -> pl.DataFrame:
    """Columns ``bucket``, the ``by`` dimensions, each metric (``<metric>_previous`` with ``compare``).

    With ``total`` there is no ``bucket``: one row per group holds the whole range's values.
    """
    now = now or datetime.now(UTC)
    if q.total:
        return _run_total(client, plan, q, now, log)
    keys = ["bucket", *q.by]
    if q.top is not None and q.by:
        frame = _fetch_top(client, plan, q, now, log)
    else:
        frame = _fetch_all(client, plan, q, now, totals=False, log=log)
    if q.fill_gaps:
        frame = _fill(plan, q, frame)
    frame = _with_formulas(plan, q, frame)
    if q.compare is not None:
        shift = COMPARE_SHIFT[q.compare] or int((q.end - q.start).total_seconds())
        earlier = replace(q, start=q.start - timedelta(seconds=shift), end=q.end - timedelta(seconds=shift), compare=None, top=None)
        previous = run_query(client, plan, earlier, now=now, log=log).with_columns(pl.col("bucket") + timedelta(seconds=shift))
        renamed = previous.select(*keys, *(pl.col(m).alias(f"{m}_previous") for m in q.metrics))
        frame = frame.join(renamed, on=keys, how="left", nulls_equal=True)
    order = [pl.col(q.order_by).sum().over(q.by)] if q.order_by and q.by else []
    columns = [*keys, *q.metrics, *(f"{m}_previous" for m in q.metrics if q.compare)]
    result = frame.select(columns)
    if order:
        return result.sort(["bucket", *order], descending=[False, True])
    return result.sort(keys)


def _run_total(client: Client, plan: Plan, q: MetricQuery, now: datetime, log: list[Executed] | None) -> pl.DataFrame:
    frame = _fetch_all(client, plan, q, now, totals=True, log=log)
    # Merging no states gives NaN (quantiles) where "no value" is meant.
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    frame = frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame
    frame = _with_formulas(plan, q, frame)
    if q.compare is not None:
        shift = COMPARE_SHIFT[q.compare] or int((q.end - q.start).total_seconds())
        earlier = replace(q, start=q.start - timedelta(seconds=shift), end=q.end - timedelta(seconds=shift), compare=None, top=None)
        previous = _run_total(client, plan, earlier, now, log).select(*q.by, *(pl.col(m).alias(f"{m}_previous") for m in q.metrics))
        frame = (
            frame.join(previous, on=list(q.by), how="left", nulls_equal=True) if q.by else pl.concat([frame, previous], how="horizontal")
        )
    result = frame.select(*q.by, *q.metrics, *(f"{m}_previous" for m in q.metrics if q.compare))
    ranked = q.order_by or q.metrics[0]
    result = result.sort(ranked, descending=True, nulls_last=True) if q.by else result
    return result.head(q.top) if q.top is not None else result


def _with_formulas(plan: Plan, q: MetricQuery, frame: pl.DataFrame) -> pl.DataFrame:
    derived = [plan.definitions.metric(n) for n in q.metrics if plan.definitions.metric(n).formula is not None]
    # Components are merged first, then combined: never an average of ratios.
    return frame.with_columns(formula_expr(m).alias(m.name) for m in derived) if derived else frame


def _and(left: ex.Expr | None, right: ex.Expr) -> ex.Expr:
    return right if left is None else ex.And(left, right)


def _groups_filter(groups: pl.DataFrame) -> ex.Expr:
    """A filter matching exactly the given dimension combinations."""
    if groups.is_empty():
        return ex.IsIn(groups.columns[0], ("\x00no group\x00",))
    # A group whose property or trait is missing (raw events: NULL) matches only events without it.
    if groups.width == 1 and groups.to_series().null_count() == 0:
        return ex.IsIn(groups.columns[0], tuple(groups.to_series()))
    node: ex.Expr | None = None
    for row in groups.iter_rows(named=True):
        term: ex.Expr | None = None
        for name, value in row.items():
            term = _and(term, ex.IsNull(name) if value is None else ex.Compare(name, "==", value))
        assert term is not None
        node = term if node is None else ex.Or(node, term)
    assert node is not None
    return node


def query(client: Client, plan: Plan, metrics: str | Sequence[str], **options: object) -> pl.DataFrame:
    """Query ``metrics`` (see :class:`~rta.query.request.QueryRequest` for the options) and return a Polars frame."""
    return run_query(client, plan, make_query(plan, QueryRequest.of(metrics, **options)))
