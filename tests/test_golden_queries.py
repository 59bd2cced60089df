"""Metric and ad-hoc queries -> ClickHouse SQL against the shop example, without a store.

`tests/golden/queries/shop.sql` pairs each request with the statements it compiles to (sqlglot's
paired fixtures, `check_file` style). A block is optional ``# comment`` lines, one request line, then
what it compiles to: each statement as a ``-- params:`` line and its SQL line, ``-- then ...`` lines
for statements that depend on an earlier answer, or ``error: ...`` for a refused request.

- ``-- query: metrics=revenue last=7d by=country where=device=mobile,tablet top=5`` is an HTTP query
  string with spaces for ``&``: it goes through ``QueryRequest.from_params`` and ``make_query`` as ``GET /query`` does.
- ``-- adhoc: events.where(...).group_by(...).agg(...)`` is a Python expression over ``events`` (the
  raw events, ``ws.events``) and ``rollup(name, grain)`` (``ws.rollup``).

``now`` is fixed, so the SQL is deterministic. Set RTA_UPDATE_GOLDEN=1 to rewrite the file, then
review the diff.

The SQL comes from the pure builders under ``run_query`` (``make_query``, the planner's table choice
``_tables``, ``stored_sql``, ``top_sql``; ``AdhocQuery.to_sql``); ``_answer`` composes them as
``run_query``, ``_fetch_top`` and ``_run_total`` do, because those also run the statements. A last
test runs ``run_query`` itself on a client that records statements and returns no rows, so the
composition here cannot drift from the one that runs.
"""

from __future__ import annotations

import os
import types
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import sqlglot
import sqlglot.expressions as exp

from rta import average, col, count, distinct, maximum, minimum, quantile, total
from rta.compiler.aggregations import aggregation_of
from rta.errors import QueryError
from rta.query.adhoc import events_query, rollup_query
from rta.query.metric_query import COMPARE_SHIFT, MetricQuery, _tables, make_query, run_query, stored_sql, top_sql
from rta.query.planner import Choice, RawChoice
from rta.query.raw_metrics import raw_metrics_sql
from rta.query.request import QueryRequest
from tests.conftest import shop_plan

pytestmark = pytest.mark.core
FIXTURE = Path(__file__).parent / "golden" / "queries" / "shop.sql"
PLAN = shop_plan()
NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)  # fixed: the golden SQL holds its dates (no store is read)


def _no_store(sql: str, params: dict[str, object]) -> pl.DataFrame:
    msg = "the golden query test compiles SQL only; nothing runs it"
    raise AssertionError(msg)


ADHOC_NAMES = {
    "events": events_query(PLAN, PLAN.streams[0], _no_store),
    "rollup": lambda name, grain: rollup_query(PLAN, name, grain, _no_store),
    "NOW": NOW,
    "col": col,
    "count": count,
    "total": total,
    "minimum": minimum,
    "maximum": maximum,
    "average": average,
    "distinct": distinct,
    "quantile": quantile,
}


def _rendered(sql: str, params: dict[str, object]) -> list[str]:
    return ["-- params: " + (", ".join(f"{k}={v!r}" for k, v in params.items()) or "none"), sql]


def _select(q: MetricQuery, choice: Choice | RawChoice, names: list[str], *, totals: bool) -> list[str]:
    if isinstance(choice, RawChoice):  # the planner's raw-events fallback
        select, params = raw_metrics_sql(PLAN, q, choice, names, totals=totals)
    else:
        select, params = stored_sql(q, choice, names, totals=totals)
    return _rendered(select.sql(dialect="clickhouse"), params)


def _ranked(q: MetricQuery) -> list[str]:
    """``_fetch_top``: the top ``q.top`` groups' series."""
    ranked = PLAN.definitions.metric(q.order_by or q.metrics[0])
    total_sql = aggregation_of(ranked.aggregation).range_total if ranked.aggregation is not None else None
    tables = _tables(PLAN, q, NOW)
    if total_sql is None:  # ranked by a merge of the whole range, then the leaders' series
        lines = [line for choice, names in tables.items() for line in _select(q, choice, names, totals=True)]
        return [*lines, f"-- then each table's series, filtered to the top {q.top} groups by {ranked.name} in the totals above"]
    home = next(choice for choice, names in tables.items() if ranked.name in names)
    names = tables.pop(home)
    select, params = raw_metrics_sql(PLAN, q, home, names) if isinstance(home, RawChoice) else stored_sql(q, home, names)
    lines = _rendered(top_sql(select, q.by, ranked.name, total_sql.sql, q.top or 0).sql(dialect="clickhouse"), params)
    if tables:
        names = [c.table if isinstance(c, RawChoice) else c.table.table for c in tables]
        lines.append(f"-- then {', '.join(names)}, filtered to the groups above")
    return lines


def _answer(q: MetricQuery) -> list[str]:
    """The statements ``run_query`` (or ``_run_total``) sends for ``q``, in order."""
    if q.top is not None and q.by and not q.total:
        lines = _ranked(q)
    else:  # with total, top= only cuts the merged rows
        lines = [line for choice, names in _tables(PLAN, q, NOW).items() for line in _select(q, choice, names, totals=q.total)]
    if q.compare is not None:
        shift = timedelta(seconds=COMPARE_SHIFT[q.compare] or int((q.end - q.start).total_seconds()))
        earlier = replace(q, start=q.start - shift, end=q.end - shift, compare=None, top=None)
        lines += [f"-- then {q.compare}:", *_answer(earlier)]
    return lines


def _query_string(text: str) -> dict[str, list[str]]:
    """``metrics=a,b where=country=US`` -> the lists a parsed query string holds."""
    params: dict[str, list[str]] = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        assert sep, f"{item!r} is not name=value"
        params.setdefault(name, []).append(value)
    return params


def compiled(request: str) -> str:
    """What a request line compiles to, as the fixture spells it."""
    kind, sep, text = request.partition(": ")
    try:
        if kind == "-- adhoc" and sep:
            lines = _rendered(*eval(text, {"__builtins__": {}}, ADHOC_NAMES).to_sql())  # noqa: S307  # our own fixture
        elif kind == "-- query" and sep:
            lines = _answer(make_query(PLAN, QueryRequest.from_params(_query_string(text)), now=NOW))
        else:
            msg = f"a request line starts with '-- query: ' or '-- adhoc: ', got {request!r}"
            raise AssertionError(msg)
    except QueryError as err:
        lines = [f"error: {err}"]
    return "\n".join(lines)


def read_fixture(path: Path = FIXTURE) -> list[tuple[list[str], str, str]]:
    """Each block's comment lines, request line and expected text."""
    blocks = []
    for block in path.read_text().strip().split("\n\n"):
        lines = block.split("\n")
        at = next(i for i, line in enumerate(lines) if line.startswith(("-- query: ", "-- adhoc: ")))
        blocks.append((lines[:at], lines[at], "\n".join(lines[at + 1 :])))
    return blocks


def test_each_request_compiles_to_its_golden_sql() -> None:
    blocks = read_fixture()
    answers = [compiled(request) for _, request, _ in blocks]
    if os.environ.get("RTA_UPDATE_GOLDEN"):
        FIXTURE.write_text("\n\n".join("\n".join([*c, r, a]) for (c, r, _), a in zip(blocks, answers, strict=True)) + "\n")
        blocks = read_fixture()
    for (_, request, expected), got in zip(blocks, answers, strict=True):
        assert got == expected, f"{request}\nrun with RTA_UPDATE_GOLDEN=1 and review the diff of {FIXTURE.name}"


def test_the_fixture_covers_each_aggregation_table_and_option() -> None:
    text = FIXTURE.read_text()
    for merge in ("SUM(", "MAX(", "uniqCombined64Merge", "quantileTDigestMerge", "uniqExact(", "quantileExact"):
        assert merge in text, merge
    for rollup in PLAN.rollups:
        for table in rollup.tables:
            assert f"FROM {table.table}" in text, f"no request reads {rollup.name} at {table.grain}"
    requests = " ".join(r for _, r, _ in read_fixture())
    for option in ("by=", "where=", "top=", "order_by=", "total=true", "start=", *(f"compare={c}" for c in COMPARE_SHIFT)):
        assert option in requests, option
    assert "DENSE_RANK()" in text and "error: " in text and "-- then" in text


class _RecordingClient:
    """Stands in for the store: records each statement and answers it with no rows."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def query_arrow(self, sql: str, parameters: dict[str, object]) -> pa.Table:
        self.sent += _rendered(sql, parameters)
        select = sqlglot.parse_one(sql, read="clickhouse")
        assert isinstance(select, exp.Select), sql
        columns = select.named_selects
        return pa.table({name: pa.array([], pa.null()) for name in columns})

    def query(self, sql: str, parameters: dict[str, object]) -> object:
        """The raw-events fallback asks which properties have materialized columns: none here."""
        assert "system.columns" in sql, sql
        return types.SimpleNamespace(result_rows=[])


def test_run_query_sends_the_fixtures_statements() -> None:
    """The composition above is what ``run_query`` runs: its statements, in order, with no rows back
    (a ``-- then ... filtered`` step depends on rows, so only the statements before it are compared)."""
    checked = 0
    for _, request, expected in read_fixture():
        if not request.startswith("-- query: ") or expected.startswith("error: "):
            continue
        asked = QueryRequest.from_params(_query_string(request.removeprefix("-- query: ")))
        client = _RecordingClient()
        run_query(client, PLAN, make_query(PLAN, asked, now=NOW), now=NOW)
        lines = expected.split("\n")
        cut = next((i for i, line in enumerate(lines) if line.startswith("-- then") and "filtered" in line), None)
        sent = [line for line in lines[:cut] if not line.startswith("-- then")]
        assert client.sent[: len(sent)] == sent, request
        assert cut is not None or len(client.sent) == len(sent), request
        checked += 1
    assert checked >= 30
