"""Paths: answered from raw events in ClickHouse, checked against the brute-force oracle of ``rta.testing``.

Generated people through the collect API's contract, shuffled into batches (late events land in
later batches): anonymous visits aliased to users, ties on timestamps, repeated events (merged
when consecutive), anchors done more than once, undeclared properties and traits (``tests/person_events.py``).
"""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import replace
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
from rta.query.paths_answer import make_paths_query, shape, statement
from rta.query.person_request import PathsRequest
from rta.testing import oracle_paths
from rta.workspace.owner import RUN_FILE
from rta.workspace.remote import RemoteWorkspace
from tests.conftest import clear_store, shop_project
from tests.person_events import NAMES, NOW, load, oracle_rows, person_messages, with_traits

pytestmark = pytest.mark.store
EVENTS = [*NAMES, "signup"]
FIXED = col("user_id").startswith("p")  # the fixture's people; the property test adds others (prefix k)
EXAMPLES = itertools.count()


@pytest.fixture(scope="module")
def loaded(_session_client, store_dsn, tmp_path_factory):  # type: ignore[no-untyped-def]
    clear_store(_session_client)
    ws = shop_project(tmp_path_factory, store_dsn, "paths", serve=False)
    rng = random.Random(21)
    messages, aliases = person_messages(rng, "p", people=400, events=12, spread=2 * 86400, names=EVENTS)
    rng.shuffle(messages)  # shuffled arrival: late events land in later batches
    load(ws, messages, sorted(rng.sample(range(1, len(messages)), 6)), "fixed")
    frame, traits = oracle_rows(messages)
    return ws, with_traits(frame, traits, aliases), aliases, ws.project.root, store_dsn


def _asked(ws: Any, paths: Any, **options: Any) -> pl.DataFrame:
    q = replace(make_paths_query(ws.plan, PathsRequest.of("after_signup", **options), NOW), paths=paths)
    sql, params = statement(ws.plan, q)
    return shape(q, ws.read(sql, params))


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def _variant(ws: Any, after: str, steps: int, label: str) -> Any:
    return replace(ws.plan.definitions.path("after_signup"), after=col("event") == after, steps=steps, label=label)


@pytest.mark.parametrize(
    ("after", "steps", "label", "top"),
    [("signup", 4, "event", 20), ("add_to_cart", 2, "event", 5), ("page_view", 3, "prop.plan", 50), ("click", 1, "device", 3)],
)
@pytest.mark.parametrize(
    ("by", "where"), [((), None), (("device",), None), (("prop.plan",), col("device") == "mobile"), (("person.plan",), None)]
)
def test_the_answer_equals_the_oracle(loaded, after, steps, label, top, by, where):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    paths = _variant(ws, after, steps, label)
    where = FIXED if where is None else FIXED & where
    got = _asked(ws, paths, last="3d", by=list(by), where=where, top=top)
    want = oracle_paths(paths, events, *PathsRequest.of("x", last="3d").span(NOW), aliases=aliases, by=by, where=where, top=top)
    # Not an empty answer equal to an empty oracle: several paths of many people (by device, of mobiles, all steps merge).
    assert want.height >= min(top, 3) and want["people"].sum() > 20
    _same(got, want)


def test_the_declared_paths_through_the_workspace(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    started = time.perf_counter()
    got = ws.paths("after_signup", last="3d", where=FIXED, now=NOW)
    seconds = time.perf_counter() - started
    found = ws.plan.definitions.path("after_signup")
    start, end = PathsRequest.of("x", last="3d").span(NOW)
    _same(got, oracle_paths(found, events, start, end, aliases=aliases, by=["device"], where=FIXED))
    assert got.columns == ["device", "start", "step_1", "step_2", "step_3", "step_4", "people", "share"] and seconds < 10
    assert (got["start"] == "signup").all() and got.group_by("device").len()["len"].max() == 20  # the top 20 of each device
    explained = ws.explain_paths("after_signup", last="3d", now=NOW)
    assert explained.rows_scanned >= events.height and "arrayFirstIndex" in explained.sql and explained.by == ("device",)


def test_consecutive_repeats_merge_and_paths_end_when_the_person_stops(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    paths = _variant(ws, "page_view", 6, "event")
    got = _asked(ws, paths, last="3d", by=[], where=FIXED, top=1000)
    steps = got.select("start", *(f"step_{k}" for k in range(1, 7))).rows()
    assert all(a != b for row in steps for a, b in itertools.pairwise(v for v in row if v is not None))
    # Some paths end early; with every path shown (top 1000), the shares add up to all the people with an anchor.
    assert any(row[-1] is None for row in steps) and abs(got["share"].sum() - 1) < 1e-9


def test_aliased_anonymous_visits_count_as_their_user(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, *_ = loaded
    got = ws.paths("after_signup", last="3d", by=[], where=FIXED, top=1000, now=NOW)
    span = PathsRequest.of("x", last="3d").span(NOW)
    found = ws.plan.definitions.path("after_signup")
    merged, unmerged = (oracle_paths(found, events, *span, aliases=a, where=FIXED, top=1000) for a in (aliases, {}))
    _same(got, merged)
    assert unmerged["people"].sum() > merged["people"].sum()  # an anonymous id and its user would be two people


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_events_in_any_batches_equal_the_oracle(loaded, data):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    rng = random.Random(data.draw(st.integers(0, 10**6)))
    prefix = f"k{next(EXAMPLES)}x"
    spread = data.draw(st.sampled_from([20, 600, 86400]))
    messages, aliases = person_messages(rng, prefix, people=data.draw(st.integers(1, 8)), events=12, spread=spread, names=EVENTS)
    rng.shuffle(messages)
    load(ws, messages, sorted(data.draw(st.lists(st.integers(0, len(messages)), max_size=4))), prefix)
    frame, traits = oracle_rows(messages)
    events = with_traits(frame, traits, aliases)
    after = data.draw(st.sampled_from(EVENTS))
    paths = _variant(ws, after, data.draw(st.integers(1, 6)), data.draw(st.sampled_from(["event", "device", "prop.plan"])))
    mine, top = col("user_id").startswith(prefix), data.draw(st.integers(1, 10))
    got = _asked(ws, paths, last="2d", by=["device"], where=mine, top=top)
    span = PathsRequest.of("x", last="2d").span(NOW)
    _same(got, oracle_paths(paths, events, *span, aliases=aliases, by=["device"], where=mine, top=top))


def test_definition_mistakes_fail_when_defined():
    events = stream("events", dimensions={"event": str, "path": str}, measures={"revenue": float}, keep_raw="30d")
    signup = col("event") == "signup"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"steps": 0}, "steps= takes a whole number from 1 to 10, got 0"),
        ({"steps": 11}, "got 11"),
        ({"steps": "4"}, "got '4'"),
        ({"after": "signup"}, "paths 'p' after=: expected a filter such as col('event') == 'purchase', got 'signup'"),
        ({"after": col("evnt") == "x"}, "after=: stream 'events' has no field 'evnt'; did you mean 'event'"),
        ({"label": "pth"}, "paths 'p' label=: stream 'events' has no field 'pth'; did you mean 'path'"),
        ({"label": "revenue"}, "label='revenue' is not a text field of the events; name steps by a dimension (event, path)"),
        ({"label": "person.plan"}, "label='person.plan' is not a text field"),
        ({"by": ["colour"]}, "paths 'p' by=: stream 'events' has no field 'colour'"),
        ({"by": ["path", "path"]}, "by= repeats a field"),
    ]
    for change, message in cases:
        with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            rta.paths("p", **{"after": signup, "stream": events, **change})
    with pytest.raises(DefinitionError, match="paths are counted per person from raw events, but stream 'nokeep' keeps no raw"):
        rta.paths("p", after=signup, stream=stream("nokeep", dimensions={"event": str}))
    with pytest.raises(DefinitionError, match="invalid paths name"):
        rta.paths("After signup", after=signup, stream=events)
    ok = rta.paths("p", after=signup, steps=3, label="prop.page", by="person.plan", stream=events)
    assert ok.label == "prop.page" and repr(ok) == "Paths('p': 3 steps of prop.page; by person.plan)"


def test_query_mistakes_are_refused_with_the_fix(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    with pytest.raises(QueryError, match="no paths named 'after_sigup'; did you mean 'after_signup'"):
        ws.paths("after_sigup")
    with pytest.raises(QueryError, match="top=0 is out of range; ask for 1 to 1000"):
        ws.paths("after_signup", top=0)
    with pytest.raises(QueryError, match=r"top='many' is not a whole number"):
        ws.paths("after_signup", top="many")
    with pytest.raises(QueryError, match="unknown paths option 'grain'; valid options are: paths, last, start, end, by, where, top"):
        ws.paths("after_signup", grain="1h")


def test_the_cli_prints_the_paths(loaded):  # type: ignore[no-untyped-def]
    ws, events, aliases, project, dsn = loaded
    args = ["paths", "after_signup", "-p", str(project), "--last", "3d", "--no-by", "--top", "7", "--where", "startswith(user_id,p)"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", dsn)
        result = CliRunner().invoke(app, [*args, "--format", "json", "--explain"])
    assert result.exit_code == 0, result.output
    found = ws.plan.definitions.path("after_signup")
    start, _ = PathsRequest.of("x", last="3d").span(NOW)
    want = oracle_paths(found, events, start, NOW, aliases=aliases, where=FIXED, top=7)
    rows, expected = json.loads(result.stdout), want.to_dicts()
    assert [{**r, "share": None} for r in rows] == [{**r, "share": None} for r in expected]
    assert [r["share"] for r in rows] == pytest.approx([r["share"] for r in expected], rel=1e-9)  # printed to 13 digits
    assert "paths after_signup" in result.stderr and "rows scanned" in result.stderr


def test_rest_and_remote_answer_the_same(loaded):  # type: ignore[no-untyped-def]
    ws, *_ = loaded
    url = ws.serve()
    try:
        key = json.loads((ws.project.root / RUN_FILE).read_text())["key"]
        remote = RemoteWorkspace(ws.project, url, key, "the test's workspace")
        options = {"last": "3d", "by": "person.plan", "where": col("device") == "mobile", "top": 4, "now": NOW}
        _same(remote.paths("after_signup", **options), ws.paths("after_signup", **options))
        assert remote.explain_paths("after_signup", **options).sql == ws.explain_paths("after_signup", **options).sql
        query = f"paths=after_signup&end={urllib.request.quote(NOW.isoformat())}&last=3d&by=device&top=3"
        headers = {"Authorization": f"Bearer {key}"}
        with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/paths?{query}", headers=headers)) as response:
            body = json.loads(response.read())
        want = ws.paths("after_signup", last="3d", by="device", top=3, now=NOW)
        assert body["data"] == json.loads(want.write_json()) and body["meta"]["paths"] == "after_signup"
        with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/definitions", headers=headers)) as response:
            listed = json.loads(response.read())
        assert listed["paths"] == [{"name": "after_signup", "steps": 4, "label": "event", "by": ["device"]}]
        assert listed["retentions"] == [{"name": "signup_return", "every": "1d", "periods": 7, "cohort": "recurring", "by": []}]
        assert [f["name"] for f in listed["funnels"]] == ["checkout"]
        arrow = urllib.request.Request(f"{url}/v1/paths?{query}", headers={**headers, "Accept": "application/vnd.apache.arrow.stream"})
        with urllib.request.urlopen(arrow) as response:
            _same(pl.read_ipc_stream(response.read()), want)
        for bad, reason in (("paths=nope", "no paths named 'nope'"), (f"{query}&top=-1", "top=-1 is out of range"),
                            (f"{query}&by=colour", "has no field 'colour'")):  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"{url}/v1/paths?{bad}", headers=headers))
            assert refused.value.code == 400 and reason in json.loads(refused.value.read())["error"]
    finally:
        ws.stop_serving()
