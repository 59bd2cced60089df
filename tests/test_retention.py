"""Retention: answered from raw events in ClickHouse, checked against the brute-force oracle of ``rta.testing``.

Generated people over three weeks, through the collect API's contract, shuffled into batches (late
events land in later batches): anonymous visits aliased to users, ties on timestamps, repeated
start and back events, undeclared properties and traits (``tests/person_events.py``).
"""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta
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
from rta.dsl.retention import period_of
from rta.errors import DefinitionError, QueryError
from rta.query.person_request import RetentionRequest
from rta.query.retention_answer import make_retention_query, period_start, shape, statement, wide
from rta.testing import oracle_retention
from rta.workspace.owner import RUN_FILE
from rta.workspace.remote import RemoteWorkspace
from tests.conftest import clear_store, shop_project
from tests.person_events import NAMES, NOW, load, oracle_rows, person_messages, with_traits

pytestmark = pytest.mark.store
EVENTS = [*NAMES, "signup"]
FIXED = col("user_id").startswith("r")  # the fixture's people; the property test adds others (prefix q)
EXAMPLES = itertools.count()
DAY = 86400


@pytest.fixture(scope="module")
def loaded(_session_client, store_dsn, tmp_path_factory):  # type: ignore[no-untyped-def]
    clear_store(_session_client)
    ws = shop_project(tmp_path_factory, store_dsn, "retention", serve=False)
    rng = random.Random(20)
    messages, aliases = person_messages(rng, "r", people=300, events=16, spread=20 * DAY, names=EVENTS)
    rng.shuffle(messages)  # shuffled arrival: late events land in later batches
    load(ws, messages, sorted(rng.sample(range(1, len(messages)), 6)), "fixed")
    frame, traits = oracle_rows(messages)
    return ws, with_traits(frame, traits, aliases), aliases, ws.project.root, store_dsn


def _asked(ws: Any, retention: Any, **options: Any) -> pl.DataFrame:
    q = make_retention_query(ws.plan, RetentionRequest.of("signup_return", **options), NOW)
    # The range starts at the start of the variant's own period (made for the declared one's, a 12-hour
    # variant started a day early after noon UTC: one cohort more than its oracle).
    begin = RetentionRequest.of("signup_return", **options).span(NOW)[0]
    q = replace(q, retention=retention, start=period_start(retention, period_of(begin.timestamp(), retention.every_seconds)))
    sql, params = statement(ws.plan, q)
    return shape(q, ws.read(sql, params))


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def _variant(ws: Any, start: str, back: str, every: tuple[str, int], periods: int, cohort: str = "recurring") -> Any:
    found = ws.plan.definitions.retention("signup_return")
    changes = {"every": every[0], "every_seconds": every[1], "periods": periods, "cohort": cohort}
    return replace(found, start=col("event") == start, back=col("event") == back, **changes)


@pytest.mark.parametrize(
    ("start", "back", "every", "periods", "last", "cohort"),
    [("signup", "page_view", ("1d", DAY), 7, "3w", "recurring"), ("page_view", "purchase", ("1w", 7 * DAY), 4, "4w", "recurring"),
     ("click", "click", ("12h", DAY // 2), 10, "10d", "recurring"), ("signup", "page_view", ("1d", DAY), 7, "10d", "first_time"),
     ("page_view", "page_view", ("2d", 2 * DAY), 5, "9d", "first_time")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("by", "where"), [((), None), (("device",), None), (("prop.plan",), col("device") == "mobile"), (("person.plan",), None)]
)
def test_the_answer_equals_the_oracle(loaded, start, back, every, periods, last, cohort, by, where):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    retention = _variant(ws, start, back, every, periods, cohort)
    where = FIXED if where is None else FIXED & where
    got = _asked(ws, retention, last=last, by=list(by), where=where)
    span = RetentionRequest.of("signup_return", last=last).span(NOW)
    want = oracle_retention(retention, events, *span, aliases=aliases, by=by, where=where)
    # Not an empty answer equal to an empty oracle: several cohorts, people coming back after period 0.
    assert want["cohort"].n_unique() >= 2 and want.filter(pl.col("period") > 0)["people"].sum() > 5
    _same(got, want)


def test_the_declared_retention_through_the_workspace(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    started = time.perf_counter()
    got = ws.retention("signup_return", last="3w", where=FIXED, now=NOW)
    seconds = time.perf_counter() - started
    found = ws.plan.definitions.retention("signup_return")
    _same(got, oracle_retention(found, events, NOW - timedelta(weeks=3), NOW, aliases=aliases, where=FIXED))
    assert got.columns == ["cohort", "cohort_size", "period", "people", "retention"] and seconds < 10
    # Period 0 is the whole cohort; no cohort has a period that begins after the range ends.
    assert (got.filter(pl.col("period") == 0)["retention"] == 1.0).all()
    begins = got.select(pl.col("cohort") + pl.duration(days=1) * pl.col("period")).to_series()
    assert (begins < NOW).all() and got["period"].max() == 6
    matrix = wide(got)
    assert matrix.columns[:2] == ["cohort", "cohort_size"] and matrix.columns[2:] == [f"period_{k}" for k in range(7)]
    assert matrix.height == got["cohort"].n_unique() and matrix["period_0"].to_list() == [1.0] * matrix.height
    explained = ws.explain_retention("signup_return", last="3w", now=NOW)
    assert explained.rows_scanned >= events.height and "intDiv" in explained.sql and "raw events rta_events_raw_" in str(explained)
    assert repr(explained).startswith("RetentionExplanation: retention signup_return")


def test_aliased_anonymous_visits_count_as_their_user(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    retention = _variant(ws, "page_view", "page_view", ("1d", DAY), 7)
    got = _asked(ws, retention, last="3w", by=[], where=FIXED)
    span = RetentionRequest.of("signup_return", last="3w").span(NOW)
    merged, unmerged = (oracle_retention(retention, events, *span, aliases=a, where=FIXED) for a in (aliases, {}))
    _same(got, merged)
    # Without the aliases an anonymous id and its user are two people: more cohort members, fewer of them back.
    assert unmerged.filter(pl.col("period") == 0)["people"].sum() > merged.filter(pl.col("period") == 0)["people"].sum()


def test_first_time_cohorts_hold_each_person_once(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    sizes = {}
    for cohort in ("recurring", "first_time"):
        got = _asked(ws, _variant(ws, "page_view", "page_view", ("1d", DAY), 7, cohort), last="10d", by=[], where=FIXED)
        sizes[cohort] = got.filter(pl.col("period") == 0)["people"].sum()
    # Recurring counts a person in every day they viewed a page; first time once, and not at all when that was before the range.
    span = RetentionRequest.of("signup_return", last="10d").span(NOW)
    persons = events.filter(pl.col("user_id").str.starts_with("r") & (pl.col("event") == "page_view")).with_columns(
        pl.col("user_id").replace(aliases).alias("person")
    )
    first = persons.group_by("person").agg(pl.col("timestamp").min())
    widened = span[0].replace(hour=0, minute=0, second=0, microsecond=0)
    assert sizes["first_time"] == first.filter(pl.col("timestamp") >= widened).height < sizes["recurring"]


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_events_in_any_batches_equal_the_oracle(loaded, data):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    rng = random.Random(data.draw(st.integers(0, 10**6)))
    prefix = f"q{next(EXAMPLES)}x"
    spread = data.draw(st.sampled_from([3 * 3600, 2 * DAY, 15 * DAY]))
    messages, aliases = person_messages(rng, prefix, people=data.draw(st.integers(1, 8)), events=12, spread=spread, names=EVENTS)
    rng.shuffle(messages)
    load(ws, messages, sorted(data.draw(st.lists(st.integers(0, len(messages)), max_size=4))), prefix)
    frame, traits = oracle_rows(messages)
    events = with_traits(frame, traits, aliases)
    start, back = data.draw(st.sampled_from([("signup", "page_view"), ("page_view", "page_view"), ("add_to_cart", "purchase")]))
    every = data.draw(st.sampled_from([("1h", 3600), ("1d", DAY), ("1w", 7 * DAY)]))
    retention = _variant(ws, start, back, every, data.draw(st.integers(2, 9)), data.draw(st.sampled_from(["recurring", "first_time"])))
    mine = col("user_id").startswith(prefix)
    last = data.draw(st.sampled_from(["1d", "5d", "3w"]))
    got = _asked(ws, retention, last=last, by=["device"], where=mine)
    span = RetentionRequest.of("signup_return", last=last).span(NOW)
    _same(got, oracle_retention(retention, events, *span, aliases=aliases, by=["device"], where=mine))


def test_definition_mistakes_fail_when_defined():
    events = stream("events", dimensions={"event": str, "device": str}, user="user_id", keep_raw="30d")
    signup, view = col("event") == "signup", col("event") == "view"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"every": "1 week"}, "invalid every= of retention 'r'"),
        ({"every": "30m"}, "every='30m' is shorter than an hour"),
        ({"periods": 1}, "periods= takes a whole number from 2 to 100 (period 0 included), got 1"),
        ({"periods": 8.0}, "got 8.0"),
        ({"periods": True}, "got True"),
        ({"start": "signup"}, "retention 'r' start=: expected a filter such as col('event') == 'purchase', got 'signup'"),
        ({"back": col("evnt") == "view"}, "back=: stream 'events' has no field 'evnt'; did you mean 'event'"),
        ({"back": col("event") > 3}, "compares the dimension 'event' with 3"),
        ({"by": ["colour"]}, "retention 'r' by=: stream 'events' has no field 'colour'"),
        ({"by": ["device", "device"]}, "by= repeats a field"),
        ({"cohort": "first"}, "cohort='first' is not one of 'recurring', 'first_time'; did you mean 'first_time'"),
    ]
    for change, message in cases:
        with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            rta.retention("r", **{"start": signup, "back": view, "stream": events, **change})
    with pytest.raises(DefinitionError, match="retention is counted per person from raw events, but stream 'nokeep' keeps no raw"):
        rta.retention("r", start=signup, back=view, stream=stream("nokeep", dimensions={"event": str}, user="user_id"))
    with pytest.raises(DefinitionError, match="declares no user field"):
        rta.retention("r", start=signup, back=view, stream=stream("nouser", dimensions={"event": str}, user=None, keep_raw="30d"))
    with pytest.raises(DefinitionError, match="invalid retention name"):
        rta.retention("Weekly!", start=signup, back=view, stream=events)
    ok = rta.retention("r", start=signup, back=view, every="1d", periods=30, by="person.plan", stream=events)
    assert ok.by == ("person.plan",) and ok.every_seconds == DAY and repr(ok) == "Retention('r': 30 periods of 1d; by person.plan)"
    first = rta.retention("r", start=signup, back=view, cohort="first_time", stream=events)
    assert repr(first) == "Retention('r': 8 periods of 1w, first time)"


def test_query_mistakes_are_refused_with_the_fix(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    with pytest.raises(QueryError, match="no retention named 'signup_retrun'; did you mean 'signup_return'"):
        ws.retention("signup_retrun")
    with pytest.raises(QueryError, match="has no field 'colour'"):
        ws.retention("signup_return", by="colour")
    with pytest.raises(QueryError, match="unknown retention option 'top'; valid options are: retention, last, start, end, by, where"):
        ws.retention("signup_return", top=3)
    with pytest.raises(QueryError, match="raw events of 'events' are kept 30d"):
        ws.retention("signup_return", last="12w")
    # Without a range, the matrix's span: 7 periods of a day back from now, widened to the first period's midnight.
    default = ws.retention("signup_return", now=NOW)
    assert default["cohort"].min() == (NOW - timedelta(days=7)).replace(hour=0, minute=0) and default["period"].max() == 6


def test_the_cli_prints_the_matrix(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, project, dsn = loaded
    args = ["retention", "signup_return", "-p", str(project), "--last", "2w", "--by", "device", "--where", "startswith(user_id,r)"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", dsn)
        result = CliRunner().invoke(app, [*args, "--format", "json", "--explain"])
        matrix = CliRunner().invoke(app, [*args, "--format", "csv", "--wide"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    found = ws.plan.definitions.retention("signup_return")
    # The CLI's range ends at its own now, a little after NOW: cells of the period holding NOW are compared through it.
    want = oracle_retention(
        found, events, NOW - timedelta(weeks=2), NOW + timedelta(minutes=30), aliases=aliases, by=["device"], where=FIXED
    )
    assert [(r["device"], r["period"], r["people"]) for r in rows] == list(want.select("device", "period", "people").iter_rows())
    assert "rows scanned" in result.stderr and "intDiv" in result.stderr
    assert matrix.exit_code == 0, matrix.output
    assert matrix.stdout.splitlines()[0] == "cohort,device,cohort_size," + ",".join(f"period_{k}" for k in range(7))


def test_rest_and_remote_answer_the_same(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    url = ws.serve()
    try:
        key = json.loads((ws.project.root / RUN_FILE).read_text())["key"]
        remote = RemoteWorkspace(ws.project, url, key, "the test's workspace")
        options = {"last": "3w", "by": "prop.plan", "where": col("device") == "mobile", "now": NOW}
        _same(remote.retention("signup_return", **options), ws.retention("signup_return", **options))
        assert remote.explain_retention("signup_return", **options).sql == ws.explain_retention("signup_return", **options).sql
        query = f"retention=signup_return&end={urllib.request.quote(NOW.isoformat())}&last=3w&by=device&where=device%3Dmobile"
        request = urllib.request.Request(f"{url}/v1/retention?{query}", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        want = ws.retention("signup_return", last="3w", by="device", where={"device": "mobile"}, now=NOW)
        assert body["data"] == json.loads(want.write_json()) and body["meta"]["retention"] == "signup_return"
        with urllib.request.urlopen(
            urllib.request.Request(f"{url}/v1/retention?{query}&explain=true", headers=request.headers)
        ) as response:
            assert json.loads(response.read())["kind"] == "retention"
        for bad, reason in (("retention=nope", "no retention named 'nope'"), (f"{query}&top=3", "unknown retention option 'top'"),
                            ("retention=signup_return&last=1x", "invalid last=")):  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"{url}/v1/retention?{bad}", headers=request.headers))
            assert refused.value.code == 400 and reason in json.loads(refused.value.read())["error"]
        with pytest.raises(QueryError, match="unknown retention option"):
            remote.retention("signup_return", grain="1h")
    finally:
        ws.stop_serving()
