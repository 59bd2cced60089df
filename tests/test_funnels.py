"""Funnels: answered from raw events in ClickHouse, checked against the brute-force oracle of ``rta.testing``.

Events go in through the collect API's contract (``validate`` makes the log lines the flow reads),
in shuffled batches: anonymous visits later aliased to a user (identify with both ids, and alias
calls), ties on timestamps, repeated steps, steps outside the window, undeclared properties and traits.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import rta
from rta import col, stream
from rta.cli import app
from rta.errors import DefinitionError, QueryError
from rta.query.funnel_answer import make_funnel_query, shape, statement
from rta.query.funnel_request import FunnelRequest
from rta.testing import oracle_funnel
from rta.workspace.owner import RUN_FILE
from rta.workspace.remote import RemoteWorkspace
from tests.conftest import clear_store, shop_project
from tests.person_events import NOW, load, oracle_rows, person_messages, with_traits

pytestmark = pytest.mark.store
STEPS = ["page_view", "add_to_cart", "purchase"]
FIXED = col("user_id").startswith("f")  # the fixture's people; the property test adds others (prefix h)
EXAMPLES = itertools.count()  # a fresh prefix per example: a repeated batch key would be dropped as a replay


@pytest.fixture(scope="module")
def loaded(_session_client, store_dsn, tmp_path_factory):  # type: ignore[no-untyped-def]
    clear_store(_session_client)
    ws = shop_project(tmp_path_factory, store_dsn, "funnels", serve=False)
    rng = random.Random(19)
    messages, aliases = person_messages(rng, "f", people=400, events=12, spread=4 * 3600)
    rng.shuffle(messages)  # shuffled arrival: late events land in later batches
    load(ws, messages, sorted(rng.sample(range(1, len(messages)), 6)), "fixed")
    frame, traits = oracle_rows(messages)
    return ws, with_traits(frame, traits, aliases), aliases, ws.project.root, store_dsn


def _asked(ws: Any, funnel: Any, **options: Any) -> pl.DataFrame:
    q = make_funnel_query(ws.plan, FunnelRequest.of("checkout", **options), NOW)
    q = replace(q, funnel=funnel)
    sql, params = statement(ws.plan, q)
    return shape(q, ws.read(sql, params))


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@pytest.mark.parametrize(
    ("by", "where"), [((), None), (("device",), None), (("prop.plan",), col("device") == "mobile"), (("person.plan",), None)]
)
def test_the_answer_equals_the_oracle(loaded, order, by, where):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    funnel = replace(ws.plan.definitions.funnel("checkout"), order=order, within="10m", within_seconds=600)
    where = FIXED if where is None else FIXED & where
    got = _asked(ws, funnel, last="1d", by=list(by), where=where)
    start, end = NOW - timedelta(days=1), NOW
    want = oracle_funnel(funnel, events, start, end, aliases=aliases, by=by, where=where)
    assert want.height >= 3 and want["people"][0] > 50  # not an empty answer equal to an empty oracle
    _same(got, want)


def test_the_declared_funnel_through_the_workspace(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    started = time.perf_counter()
    got = ws.funnel("checkout", last="1d", where=FIXED, now=NOW)
    seconds = time.perf_counter() - started
    funnel = ws.plan.definitions.funnel("checkout")
    _same(got, oracle_funnel(funnel, events, NOW - timedelta(days=1), NOW, aliases=aliases, by=["device"], where=FIXED))
    assert got.columns[:3] == ["step", "name", "device"] and got["name"].to_list()[:3] == ["viewed", "added to cart", "bought"]
    assert got.filter(pl.col("step") == 3)["people"].sum() > 0 and seconds < 10
    explained = ws.explain_funnel("checkout", last="1d", now=NOW)
    assert explained.rows_scanned >= events.height and "arrayFold" in explained.sql and "raw events rta_events_raw_" in str(explained)


def test_aliased_anonymous_visits_count_as_their_user(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    funnel = ws.plan.definitions.funnel("checkout")
    got = ws.funnel("checkout", last="1d", by=[], where=FIXED, now=NOW)
    # Without the aliases, anonymous ids would be people of their own.
    unmerged = oracle_funnel(funnel, events, NOW - timedelta(days=1), NOW, where=FIXED)
    assert got["people"][0] == oracle_funnel(funnel, events, NOW - timedelta(days=1), NOW, aliases=aliases, where=FIXED)["people"][0]
    assert got["people"][0] < unmerged["people"][0]


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_events_in_any_batches_equal_the_oracle(loaded, data):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    seed = data.draw(st.integers(0, 10**6))
    rng = random.Random(seed)
    prefix = f"h{next(EXAMPLES)}x"
    messages, aliases = person_messages(
        rng, prefix, people=data.draw(st.integers(1, 6)), events=10, spread=data.draw(st.sampled_from([20, 300]))
    )
    rng.shuffle(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(messages)), max_size=4)))
    load(ws, messages, cuts, prefix)
    frame, traits = oracle_rows(messages)
    events = with_traits(frame, traits, aliases)
    within = data.draw(st.sampled_from([("5s", 5), ("1m", 60), ("1h", 3600)]))
    steps = data.draw(st.sampled_from([STEPS, ["page_view", "page_view", "purchase"], ["click", "add_to_cart"]]))
    mine = col("user_id").startswith(prefix)
    for order in ("ordered", "strict", "any"):
        funnel = replace(ws.plan.definitions.funnel("checkout"), order=order, steps=tuple(col("event") == s for s in steps),
                         names=tuple(steps), within=within[0], within_seconds=within[1])  # fmt: skip
        got = _asked(ws, funnel, last="1d", by=["device"], where=mine)
        _same(got, oracle_funnel(funnel, events, NOW - timedelta(days=1), NOW, aliases=aliases, by=["device"], where=mine))


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_one_funnel_per_window_equals_the_oracle_of_each_window(loaded, order):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    funnel = replace(ws.plan.definitions.funnel("checkout"), order=order, within="10m", within_seconds=600)
    got = _asked(ws, funnel, start=NOW - timedelta(hours=5), end=NOW, every="1h", window="2h", by=["device"], where=FIXED)
    ends = [NOW - timedelta(hours=h) for h in (3, 2, 1, 0)]  # windows end every hour from start + 2h
    assert got.columns[:2] == ["window_start", "window_end"] and got["window_end"].unique().sort().to_list() == ends
    for end in ends:
        want = oracle_funnel(funnel, events, end - timedelta(hours=2), end, aliases=aliases, by=["device"], where=FIXED)
        assert want["people"][0] > 5  # windows with people in them: not empty equal to empty
        one = got.filter(pl.col("window_end") == end)
        assert one["window_start"].unique().to_list() == [end - timedelta(hours=2)]
        _same(one.drop("window_start", "window_end"), want)


def test_windows_without_people_have_every_step_at_zero(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    got = ws.funnel("checkout", start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=3), every="1h", by=[], where=FIXED, now=NOW)
    assert got.height == 2 * 3 and got["people"].to_list() == [0] * 6 and got["window_end"].n_unique() == 2
    with pytest.raises(QueryError, match="window='1h' needs every="):
        ws.funnel("checkout", last="1d", window="1h", now=NOW)
    with pytest.raises(QueryError, match="10,080 windows"):
        ws.funnel("checkout", last="7d", every="1m", now=NOW)
    with pytest.raises(QueryError, match="longer than the range"):
        ws.funnel("checkout", last="1h", every="2h", now=NOW)


def test_definition_mistakes_fail_when_defined():
    events = stream("events", dimensions={"event": str, "device": str}, keep_raw="30d")
    view, buy = col("event") == "view", col("event") == "buy"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"steps": [view]}, "at least 2 steps, got 1 step"),
        ({"steps": view}, "a list of at least 2 steps"),
        ({"within": "1 hour"}, "invalid within= of funnel 'f'"),
        ({"within": "0m"}, "write a positive number and a unit"),
        ({"order": "sequential"}, "order='sequential' is not one of 'ordered', 'strict', 'any'"),
        ({"by": ["colour"]}, "funnel 'f' by=: stream 'events' has no field 'colour'"),
        ({"steps": [view, col("evnt") == "buy"]}, "step 2: stream 'events' has no field 'evnt'; did you mean 'event'"),
        ({"steps": [view, col("event") > 3]}, "compares the dimension 'event' with 3"),
        ({"steps": [view, "buy"]}, "step 2: expected a filter"),
        ({"names": ["a"]}, "names= takes one non-empty name per step (2)"),
        ({"by": ["device", "device"]}, "by= repeats a field"),
    ]
    for change, message in cases:
        with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            rta.funnel("f", **{"steps": [view, buy], "stream": events, **change})
    with pytest.raises(DefinitionError, match="keeps no raw events"):
        rta.funnel("f", [view, buy], stream=stream("nokeep", dimensions={"event": str}))
    with pytest.raises(DefinitionError, match="invalid funnel name"):
        rta.funnel("Checkout!", [view, buy], stream=events)
    ok = rta.funnel("f", [view, buy], by="prop.plan", stream=events)  # any property and trait is readable
    assert ok.by == ("prop.plan",) and ok.names == ('col("event") == "view"', 'col("event") == "buy"')


def test_query_mistakes_are_refused_with_the_fix(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    with pytest.raises(QueryError, match="no funnel named 'chekout'; did you mean 'checkout'"):
        ws.funnel("chekout")
    with pytest.raises(QueryError, match="has no field 'colour'"):
        ws.funnel("checkout", by="colour")
    with pytest.raises(QueryError, match="unknown funnel option 'grain'"):
        ws.funnel("checkout", grain="1h")
    with pytest.raises(QueryError, match="raw events of 'events' are kept 30d"):
        ws.funnel("checkout", last="90d")


def test_the_cli_prints_the_funnel(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, project, dsn = loaded
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", dsn)
        result = CliRunner().invoke(
            app,
            [
                "funnel",
                "checkout",
                "-p",
                str(project),
                "--last",
                "2d",
                "--by",
                "device",
                "--where",
                "startswith(user_id,f)",
                "--format",
                "json",
                "--explain",
            ],
        )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    funnel = ws.plan.definitions.funnel("checkout")
    want = oracle_funnel(funnel, events, NOW - timedelta(days=2), NOW + timedelta(days=1), aliases=aliases, by=["device"], where=FIXED)
    assert [(r["step"], r["device"], r["people"]) for r in rows] == list(want.select("step", "device", "people").iter_rows())
    assert "rows scanned" in result.stderr and "arrayFold" in result.stderr


def test_rest_and_remote_answer_the_same(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    url = ws.serve()
    try:
        key = json.loads((ws.project.root / RUN_FILE).read_text())["key"]
        remote = RemoteWorkspace(ws.project, url, key, "the test's workspace")
        options = {"last": "1d", "by": "prop.plan", "where": col("device") == "mobile", "now": NOW}
        _same(remote.funnel("checkout", **options), ws.funnel("checkout", **options))
        assert remote.explain_funnel("checkout", **options).sql == ws.explain_funnel("checkout", **options).sql
        query = f"funnel=checkout&end={urllib.request.quote(NOW.isoformat())}&last=1d&by=device&where=device%3Dmobile"
        request = urllib.request.Request(f"{url}/v1/funnel?{query}", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        want = ws.funnel("checkout", last="1d", by="device", where={"device": "mobile"}, now=NOW)
        assert body["data"] == want.to_dicts() and body["meta"]["funnel"] == "checkout"
        windows = {**options, "every": "6h", "window": "12h"}
        _same(remote.funnel("checkout", **windows), ws.funnel("checkout", **windows))
        with pytest.raises(QueryError, match="unknown funnel option"):
            remote.funnel("checkout", grain="1h")
    finally:
        ws.stop_serving()


def test_a_funnel_alert_reads_the_oracle_per_window_and_backtests_in_one_statement(loaded):  # type: ignore[no-untyped-def]
    from rta import alert
    from rta.alerts.backtest import backtest
    from rta.alerts.engine import AlertEngine
    from rta.alerts.measure import readings

    ws, events, aliases, *_ = loaded
    funnel = ws.plan.definitions.funnel("checkout")
    rule = alert("few buy", funnel.conversion.over("2h") < 0.9, every="30m", by="device", where=FIXED)
    times = [NOW - timedelta(minutes=30 * k) for k in range(5, -1, -1)]
    asked: list[dict[str, Any]] = []
    counted = _Counting(ws, asked)
    got = readings(counted, rule, times)
    assert len(asked) == 1 and asked[0]["every"] == "1800s"  # every evaluation in one statement
    for at in times:
        want = oracle_funnel(funnel, events, at - timedelta(hours=2), at, aliases=aliases, by=["device"], where=FIXED)
        last = want.filter(pl.col("step") == 3).select("device", "conversion").sort("device")
        have = got.filter(pl.col("at") == at).select("device", pl.col("value").alias("conversion")).sort("device")
        _same(have, last)
    step2 = alert("carts", funnel.step(2).people.over("2h").vs("previous_period") < 0, every="1h", where=FIXED)
    (change,) = readings(ws, step2, [NOW]).iter_rows(named=True)
    people = [oracle_funnel(funnel, events, NOW - timedelta(hours=h + 2), NOW - timedelta(hours=h), aliases=aliases, where=FIXED)
              ["people"][1] for h in (0, 2)]  # fmt: skip
    assert change["current"] == people[0] and change["value"] == pytest.approx((people[0] - people[1]) / people[1])
    tested = backtest(ws, rule, start=NOW - timedelta(hours=4), end=NOW)
    half_hours = {datetime.fromtimestamp(t, UTC) for t in range(-(-int((NOW - timedelta(hours=4)).timestamp()) // 1800) * 1800,
                                                              int(NOW.timestamp()) + 1, 1800)}  # fmt: skip
    evaluated = set(tested.evaluations["at"].to_list())
    assert evaluated <= half_hours and len(evaluated) >= len(half_hours) - 1  # the first window may hold nobody yet
    assert tested.evaluations["group"].str.contains("device").all() and "firing" in tested.evaluations["status"].to_list()
    engine = AlertEngine(ws, [rule], clock=lambda: NOW)
    assert engine.horizon(rule, NOW) <= ws.freshness(NOW).watermark  # raw events are final once the watermark passes
    engine.close()


class _Counting:
    """A workspace that records the funnel requests it is asked."""

    def __init__(self, ws: Any, asked: list[dict[str, Any]]) -> None:
        self.ws, self.asked = ws, asked

    def funnel(self, name: str, **options: Any) -> pl.DataFrame:
        self.asked.append(options)
        return self.ws.funnel(name, **options)


def test_funnel_alert_mistakes_fail_when_defined(loaded):  # type: ignore[no-untyped-def]
    from rta import alert

    ws, *_ = loaded
    funnel = ws.plan.definitions.funnel("checkout")
    with pytest.raises(DefinitionError, match=r"has steps 1 to 3, got step\(4\)"):
        funnel.step(4)
    with pytest.raises(DefinitionError, match="longer than the raw events"):
        funnel.conversion.over("60d")
    with pytest.raises(DefinitionError, match="provisional=True"):
        alert("p", funnel.conversion.over("1h") < 0.1, provisional=True)
    with pytest.raises(DefinitionError, match="colour"):
        alert("c", funnel.conversion.over("1h") < 0.1, by="colour")
    assert (
        repr(alert("ok", funnel.entered.over("1h") < 10, by="prop.plan"))
        == "Alert('ok': checkout entered over 1h < 10 by prop.plan -> log)"
    )
