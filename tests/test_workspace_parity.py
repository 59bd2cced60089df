"""Every public workspace method, on the store directly and through the process that holds it.

The direct workspace serves its store on loopback (``ws.serve()``, what a notebook kernel or
``rta run`` does); a :class:`RemoteWorkspace` asks it over real HTTP, as a second notebook would.
Each row of the matrix runs one method on both and compares the answers. A last test fails when
``Workspace`` gains a public method that no row covers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rta import col, count, distinct, total
from rta.dash import load_board, make_view
from rta.errors import QueryError
from rta.query.request import QueryRequest
from rta.workspace import Workspace
from rta.workspace.base import WorkspaceBase
from rta.workspace.owner import RUN_FILE
from rta.workspace.remote import RemoteWorkspace
from tests.conftest import QUERY_NOW

pytestmark = [pytest.mark.store, pytest.mark.flow]
START, END = QUERY_NOW - timedelta(days=2), QUERY_NOW
RANGE = {"start": START, "end": END}


@pytest.fixture(scope="module")
def pair(shop_ws: Workspace) -> Any:
    url = shop_ws.serve()
    published = json.loads((shop_ws.project.root / RUN_FILE).read_text())
    assert published["url"] == url and published["kind"] == "notebook"
    remote = RemoteWorkspace(shop_ws.project, url, published["key"], "the test's workspace")
    yield shop_ws, remote
    shop_ws.stop_serving()
    assert not (shop_ws.project.root / RUN_FILE).exists()


def _same(left: object, right: object) -> None:
    if isinstance(left, pl.DataFrame):
        assert isinstance(right, pl.DataFrame)
        assert_frame_equal(pl.DataFrame(left), pl.DataFrame(right), check_exact=False, rel_tol=1e-9)
    else:
        assert left == right


QUERIES: list[tuple[Any, dict[str, Any]]] = [
    ("revenue", {**RANGE, "grain": "1h"}),
    (["page_views", "visitors", "conversion"], {**RANGE, "grain": "1d", "by": "country", "top": 3}),
    ("revenue", {**RANGE, "grain": "total", "by": "device"}),
    ("purchases", {**RANGE, "grain": "1h", "compare": "previous_period"}),
    ("page_views", {**RANGE, "grain": "1d", "where": col("country").isin(["US", "DE"]) & ~(col("device") == "mobile")}),
    ("page_views", {**RANGE, "grain": "1d", "by": "device", "where": (col("country") == "US") | (col("campaign") != "none")}),
    (QueryRequest.of("revenue", **RANGE, grain="1h", where={"device": ["desktop", "tablet"]}), {}),
    (["revenue", "visitors"], {**RANGE, "grain": "1d", "by": "path", "where": col("revenue") > 20}),  # from raw events
]


@pytest.mark.parametrize(("metrics", "options"), QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_query_and_answer(pair: Any, metrics: Any, options: dict[str, Any]) -> None:
    direct, remote = pair
    _same(direct.query(metrics, now=QUERY_NOW, **options), remote.query(metrics, now=QUERY_NOW, **options))
    here, there = direct.answer(metrics, now=QUERY_NOW, **options), remote.answer(metrics, now=QUERY_NOW, **options)
    _same(here.frame, there.frame)
    assert here.notice == there.notice and (here.notice is not None) == ("by" in options and options["by"] == "path")
    assert (here.query.grain, here.query.start, here.query.end) == (there.query.grain, there.query.start, there.query.end)


def test_refusals_are_the_same(pair: Any) -> None:
    for ws in pair:
        with pytest.raises(QueryError, match="cannot split or filter revenue by 'colour'"):
            ws.query("revenue", by="colour", **RANGE)
        with pytest.raises(QueryError, match="top=3 keeps the biggest groups"):
            ws.query("revenue", top=3, **RANGE)


def _adhoc(ws: WorkspaceBase) -> list[pl.DataFrame]:
    return [
        ws.events.between(START, END).where(col("event") == "purchase").group_by("country").agg(orders=count(), revenue=total("revenue"))
        .order_by("revenue", descending=True).limit(5).collect(),
        ws.stream("events").between(START, END).group_by("device", every="1d").agg(people=distinct("user_id")).order_by("device", "bucket")
        .collect(),
        ws.rollup("traffic", "1h").between(START, END).group_by("country").agg("revenue").order_by("country").collect(),
    ]  # fmt: skip


def _explained(ws: WorkspaceBase) -> Any:
    e = ws.explain("revenue", now=QUERY_NOW, cache=False, **RANGE, by="country")
    raw = ws.explain("revenue", now=QUERY_NOW, cache=False, **RANGE, by="path")
    return [x.table for x in e.executed], e.query.grain, str(e).splitlines()[0], [(x.table, x.raw_because) for x in raw.executed]


def _alerts(ws: WorkspaceBase) -> list[object]:
    rule = "checkout stalled"
    return [
        ws.alerts.list(),
        ws.alerts.history(limit=10),
        ws.alerts.check(rule, now=QUERY_NOW),
        ws.alerts.backtest(rule, start=START, end=END).evaluations,
    ]


def _board(ws: WorkspaceBase) -> list[object]:
    board = ws.plan.definitions.dashboard("shop")
    data = load_board(ws, board, make_view(board, start=START, end=END, grain="1h"))
    return [(p.panel.title if hasattr(p.panel, "title") else None, p.frame, p.totals, p.error) for p in data.panels]


def _report(ws: WorkspaceBase, tmp: Path) -> dict[str, str]:
    files = ws.report("shop", out=tmp / "r.html", data=tmp / "data", start=START, end=END, grain="1h")
    return {p.name: p.read_text() for p in sorted((tmp / "data").iterdir())} | {"html": str(bool(files))}


def _person(ws: WorkspaceBase) -> list[object]:
    user = str(ws.read(f"SELECT min(user_id) AS u FROM {ws.plan.stream('events').raw_table}", {})["u"][0])
    p = ws.person(user, limit=5)
    return [p.ids, dict(p.traits), p.first_seen, p.last_seen, p.events, p.timeline]


MATRIX: dict[str, Callable[[WorkspaceBase], object]] = {
    "plan": lambda ws: ws.plan.ddl_sql(),
    "project": lambda ws: ws.project.root,
    "events": lambda ws: _adhoc(ws)[0],
    "stream": lambda ws: _adhoc(ws)[1],
    "rollup": lambda ws: _adhoc(ws)[2],
    "sql": lambda ws: ws.sql("SELECT country, count() AS n FROM events GROUP BY country ORDER BY country"),
    "read": lambda ws: ws.read(
        f"SELECT count() AS n FROM {ws.plan.stream('events').raw_table} WHERE country IN {{c:Array(String)}}", {"c": ["US", "DE"]}
    ),
    "explain": _explained,
    "freshness": lambda ws: ws.freshness(QUERY_NOW),
    "arrivals": lambda ws: ws.arrivals("events", START, END + timedelta(days=1000)),
    "data_version": lambda ws: ws.data_version(),
    "alerts": _alerts,
    "dashboard": _board,
    "person": lambda ws: _person(ws),
    "people": lambda ws: ws.people.limit(5).collect().to_polars(),
    "properties": lambda ws: ws.properties(now=QUERY_NOW),
    "funnel": lambda ws: ws.funnel("checkout", **RANGE, by="country", where=col("device") != "bot"),
    "explain_funnel": lambda ws: [(e := ws.explain_funnel("checkout", **RANGE)).sql, e.rows_scanned, e.start, e.end, e.by],
    "retention": lambda ws: ws.retention("signup_return", **RANGE, by="device", where=col("country") != "US"),
    "explain_retention": lambda ws: [(e := ws.explain_retention("signup_return", **RANGE)).sql, e.rows_scanned, e.start, e.kind],
    "paths": lambda ws: ws.paths("after_signup", **RANGE, by=(), top=5),
    "explain_paths": lambda ws: [(e := ws.explain_paths("after_signup", **RANGE, by="country")).sql, e.rows_scanned, e.by],
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_each_method_answers_the_same(pair: Any, name: str) -> None:
    direct, remote = pair
    here, there = MATRIX[name](direct), MATRIX[name](remote)
    for left, right in zip(here if isinstance(here, list) else [here], there if isinstance(there, list) else [there], strict=True):
        if isinstance(left, tuple) and any(isinstance(v, pl.DataFrame) for v in left):
            for a, b in zip(left, right, strict=True):
                _same(a, b) if a is not None else None
        else:
            _same(left, right)


def test_reports_write_the_same_data(pair: Any, tmp_path: Path) -> None:
    direct, remote = pair
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert _report(direct, tmp_path / "a") == _report(remote, tmp_path / "b")


def test_loading_says_where_to_load(pair: Any) -> None:
    _, remote = pair
    for call in (lambda: remote.load(pl.DataFrame()), lambda: remote.load_demo(10)):
        with pytest.raises(QueryError, match="the test's workspace holds this project's embedded store, and only it may write"):
            call()


COVERED = {*MATRIX, "query", "answer", "cached_answer", "report", "load", "load_demo"}
DIRECT_ONLY = {"serve", "stop_serving", "close", "client", "dsn", "cache", "limits", "shared"}  # holding the store


def test_the_matrix_covers_every_public_method() -> None:
    public = {n for n, _ in inspect.getmembers(Workspace) if not n.startswith("_")} | {
        f.name for f in Workspace.__dataclass_fields__.values() if not f.name.startswith("_")
    }
    assert public - DIRECT_ONLY == COVERED
    assert {n for n in dir(RemoteWorkspace) if not n.startswith("_")} | set(RemoteWorkspace.__dataclass_fields__) >= COVERED


def test_reprs_are_short_and_say_who_holds_the_store(pair: Any) -> None:
    direct, remote = pair
    assert "held by this process, served at http://127.0.0.1:" in repr(direct) and len(repr(direct)) < 1200
    assert "asked through the test's workspace" in repr(remote) and len(repr(remote)) < 1200
    assert "<table" in direct._repr_html_() and "the test&#x27;s workspace" in remote._repr_html_()
