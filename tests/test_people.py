"""People: trait and alias rows of the flow, ws.person and ws.people, person.<trait> over raw events."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import sqlglot.expressions as exp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rta
from rta import col
from rta.compiler.people_ddl import ALIASES_TABLE, TRAITS_TABLE
from rta.compiler.sql_filter import Params
from rta.contract.people import PeopleJoin, id_hash
from rta.errors import QueryError
from rta.flows.frames import BatchSource
from rta.flows.people import alias_rows, drop_erased, trait_rows
from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.ingest.segment import validate
from rta.query.bound import bound_sql
from rta.query.console import check_sql, table_aliases
from rta.query.people import person
from rta.store.schema import apply
from tests.conftest import ROOT, clear_store, shop_plan

pytestmark = pytest.mark.core
PLAN = shop_plan()
STREAM = PLAN.stream("events")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T = pl.Datetime("ms", "UTC")


def _at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {"timestamp": T, "user_id": pl.String, "_tr": pl.String, "_type": pl.String, "_anon": pl.String, "_prev": pl.String}
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def test_traits_keep_the_latest_value_per_person_and_key_of_a_batch():
    events = _frame(
        [
            {"timestamp": _at(3), "user_id": "u1", "_tr": '{"plan":"free","email":"a@x"}'},
            {"timestamp": _at(1), "user_id": "u1", "_tr": '{"plan":"pro"}'},
            {"timestamp": _at(2), "user_id": "u1", "_tr": '{"plan":"team"}'},  # older than "pro": loses
            {"timestamp": _at(1), "user_id": "u2", "_tr": "{}"},
            {"timestamp": _at(1), "user_id": "u2", "_tr": '{"plan": 3}'},  # not what the API writes: sets nothing
            {"timestamp": _at(1), "user_id": None, "_tr": '{"plan":"x"}'},  # nobody to keep it for
            {"timestamp": _at(1), "user_id": "u3"},
        ]
    )
    rows = trait_rows(events, STREAM).sort("person", "key")
    assert rows.rows() == [("u1", "email", "a@x", _at(3)), ("u1", "plan", "pro", _at(1))]
    assert rows.schema == {"person": pl.String, "key": pl.String, "value": pl.String, "updated": T}


def test_aliases_link_previous_ids_and_anonymous_ids_of_identified_messages():
    events = _frame(
        [
            {"timestamp": _at(5), "user_id": "a0", "_anon": "a0", "_type": "track"},  # anonymous only: no link
            {"timestamp": _at(4), "user_id": "u1", "_anon": "a1", "_type": "identify"},
            {"timestamp": _at(3), "user_id": "u1", "_prev": "a2", "_type": "alias"},
            {"timestamp": _at(2), "user_id": "u2", "_prev": "a3", "_type": "track"},  # previousId of a non-alias call: ignored
            {"timestamp": _at(1), "user_id": "u9", "_anon": "a1", "_type": "track"},  # a later link of a1 wins
        ]
    )
    rows = alias_rows(events, STREAM).sort("anonymous")
    assert rows.rows() == [("a1", "u9", _at(1)), ("a2", "u1", _at(3))]
    assert alias_rows(events.clear(), STREAM).is_empty() and trait_rows(events.clear(), STREAM).is_empty()


def test_events_of_erased_ids_at_or_before_the_erasure_are_dropped():
    events = _frame(
        [{"timestamp": _at(m), "user_id": u, "_anon": a} for m, u, a in [(9, "u1", None), (1, "u1", None), (9, "x", "a1"), (9, "u2", None)]]
    )
    kept = drop_erased(events, STREAM, {id_hash("u1"): _at(5), id_hash("a1"): _at(5)})
    assert kept.select("user_id", "timestamp").rows() == [("u1", _at(1)), ("u2", _at(9))]
    assert drop_erased(events, STREAM, {}) is events


def _messages() -> list[dict[str, object]]:
    def at(m: float) -> str:
        return _at(m).isoformat()

    return [
        {"type": "track", "event": "page_view", "anonymousId": "a1", "messageId": "m1", "timestamp": at(30), "properties": {"path": "/"}},
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2", "timestamp": at(20),
         "traits": {"plan": "free", "email": "x@y.z"}},
        {"type": "identify", "userId": "u1", "messageId": "m3", "timestamp": at(10), "traits": {"plan": "pro"}},
        {"type": "alias", "userId": "u1", "previousId": "a2", "messageId": "m4", "timestamp": at(5)},
        {"type": "track", "event": "purchase", "userId": "u1", "messageId": "m5", "timestamp": at(1),
         "properties": {"revenue": 10, "coupon": "X"}, "context": {"traits": {"company": {"size": 5}}}},
        {"type": "identify", "userId": "u2", "messageId": "m6", "timestamp": at(3), "traits": {"plan": "free", "company": {"size": 50}}},
        {"type": "track", "event": "page_view", "userId": "u2", "messageId": "m7", "timestamp": at(2)},
    ]  # fmt: skip


def lines(messages: list[dict[str, object]]) -> bytes:
    """The collect API's log lines for Segment messages."""
    checked = validate(json.dumps(messages).encode(), STREAM, now=NOW)
    assert not checked.rejected
    return b"\n".join(checked.lines)


@pytest.fixture
def people_ws(client, store_dsn, tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    shutil.copy(ROOT / "metrics" / "shop.py", tmp_path / "metrics" / "shop.py")
    monkeypatch.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
    ws = rta.connect(tmp_path)
    run_flow(ws.plan, BatchSource([SourceBatch("people:1", "events", lines(_messages()))]), ws.client, clock=lambda: NOW)
    return ws


def test_a_person_has_their_traits_ids_and_timeline(people_ws):
    person = people_ws.person("u1")
    assert person.id == "u1" and person.ids == ("u1", "a1", "a2")
    assert dict(person.traits) == {"email": "x@y.z", "plan": "pro", "company.size": "5"}
    assert (person.first_seen, person.last_seen, person.events) == (_at(30), _at(1), 5)
    timeline = person.timeline
    assert timeline["time"].to_list() == [_at(m) for m in (1, 5, 10, 20, 30)]  # newest first, the anonymous visit too
    assert timeline["event"].to_list()[0] == "purchase" and timeline["id"].to_list()[-1] == "a1"
    assert "coupon=X" in repr(person) and "3 ids" not in repr(person) and "(2 aliased)" in repr(person)
    assert "<table" in person._repr_html_() and "purchase" in person._repr_html_()
    assert people_ws.person("u1", limit=2).timeline.height == 2
    assert people_ws.person("a1").ids == ("u1", "a1", "a2")  # an anonymous id is its person


def test_an_unknown_person_says_so(people_ws):
    with pytest.raises(QueryError, match="no person 'nobody': no events, traits or aliases carry that id"):
        people_ws.person("nobody")
    with pytest.raises(QueryError, match="non-empty string"):
        people_ws.person("")


def test_people_are_listed_and_filtered_by_traits(people_ws):
    everyone = people_ws.people.collect()
    assert everyone.ids == ["u1", "u2"]  # the most recently active first (u1's purchase, with its company.size)
    assert dict(everyone.people[0].traits) == {"email": "x@y.z", "plan": "pro", "company.size": "5"}
    assert [(p.first_seen, p.last_seen, p.events) for p in everyone.people] == [(_at(30), _at(1), 5), (_at(3), _at(2), 2)]
    assert people_ws.people.where(col("person.plan") == "pro").collect().ids == ["u1"]
    assert people_ws.people.where(col("person.company.size") > 10).collect().ids == ["u2"]
    assert people_ws.people.where(col("person.email").is_null()).collect().ids == ["u2"]
    assert people_ws.people.limit(1).collect().ids == ["u1"]
    nobody = people_ws.people.where(col("person.plan") == "enterprise").collect()
    assert len(nobody) == 0 and "nobody" in repr(nobody)
    frame = everyone.to_polars()
    assert frame.columns == ["person", "first_seen", "last_seen", "events", "person.company.size", "person.email", "person.plan"]
    with pytest.raises(QueryError, match="write col\\('person.plan'\\)"):
        people_ws.people.where(col("plan") == "pro")
    with pytest.raises(QueryError, match="positive number of people"):
        people_ws.people.limit(0)


def test_people_seen_only_in_events_are_listed_too(people_ws):
    """A user id that never identified, and a visitor never aliased, are people: listed with their events, no traits."""
    seen = [{"type": "track", "event": "page_view", "messageId": f"s{i}", "timestamp": _at(m).isoformat(), **who}
            for i, (m, who) in enumerate([(0.5, {"userId": "u3"}), (0.2, {"userId": "u3"}), (40, {"anonymousId": "a9"})])]  # fmt: skip
    run_flow(people_ws.plan, BatchSource([SourceBatch("people:2", "events", lines(seen))]), people_ws.client, clock=lambda: NOW)
    everyone = people_ws.people.collect()
    assert everyone.ids == ["u3", "u1", "u2", "a9"]  # a1, aliased to u1, is u1's
    u3 = everyone.people[0]
    assert (u3.traits, u3.first_seen, u3.last_seen, u3.events) == ({}, _at(0.5), _at(0.2), 2)
    assert "u3  last seen" in repr(everyone) and "traits none" in repr(everyone)
    assert people_ws.people.where(col("person.plan").is_null()).collect().ids == ["u3", "a9"]  # no traits: no plan
    assert people_ws.people.where(col("person.plan") == "pro").collect().ids == ["u1"]
    # The statement passes the SQL console, which a workspace asking another process's store goes through.
    sql, params = people_ws.people.where(col("person.company.size") > 10).to_sql()
    check_sql(bound_sql(sql, params), table_aliases(people_ws.plan))


def test_trait_values_are_parameters_never_sql(people_ws):
    sql, params = people_ws.people.where(col("person.plan") == "x' OR 1=1 --").to_sql()
    assert "OR 1=1" not in sql and "x' OR 1=1 --" in params.values() and "plan" not in sql
    assert people_ws.people.where(col("person.plan") == "x' OR 1=1 --").collect().ids == []


def test_events_by_a_trait_of_their_person(people_ws):
    """person.<trait> over raw events: a visitor's events before sign-up count for the person they became."""
    raw = STREAM.raw_table
    params = Params()
    people = PeopleJoin(exp.column("user_id", table="e"), params)
    plan_ = exp.alias_(people.trait("plan"), "plan")
    select = exp.select(plan_, exp.alias_(exp.func("count"), "n")).from_(exp.to_table(raw).as_("e"))
    select = people.join(select).group_by(exp.column("plan")).order_by(exp.column("plan"))
    sql = select.sql(dialect="clickhouse")
    assert people_ws.read(sql, params.values).rows() == [("free", 2), ("pro", 5)]
    # The same statement passes the SQL console, which a workspace asking another process's store goes through.
    check_sql(bound_sql(sql, params.values), table_aliases(people_ws.plan))


def test_replaying_a_batch_adds_no_people_rows(people_ws):
    def counts() -> tuple[int, int]:
        read = people_ws.read
        return tuple(int(read(f"SELECT count() AS n FROM {t}", {})["n"][0]) for t in (TRAITS_TABLE, ALIASES_TABLE))  # type: ignore[return-value]

    before = counts()
    run_flow(people_ws.plan, BatchSource([SourceBatch("people:1", "events", lines(_messages()))]), people_ws.client, clock=lambda: NOW)
    assert counts() == before == (5, 2)  # one row per person and key of the batch


_IDS = st.sampled_from(["u0", "u1", "u2"]) | st.none()
_ANON = st.sampled_from(["a0", "a1", "a2", "a3"]) | st.none()
_TRAITS = st.dictionaries(st.sampled_from(["k0", "k1", "k2"]), st.sampled_from(["v0", "v1", "v2"]), max_size=2)
_MESSAGE = st.tuples(st.sampled_from(["identify", "alias", "track"]), _IDS, _ANON, _TRAITS)


def _segment(kind: str, user: str | None, anon: str | None, traits: dict[str, str], at: datetime, i: int) -> dict[str, object] | None:
    message: dict[str, object] = {"type": kind, "messageId": f"m{i}", "timestamp": at.isoformat()}
    if kind == "alias":
        if user is None or anon is None:
            return None
        return message | {"userId": user, "previousId": anon}
    if user is None and anon is None:
        return None
    message |= {"userId": user} if user else {}
    message |= {"anonymousId": anon} if anon else {}
    if kind == "identify":
        return message | {"traits": traits}
    return message | {"event": "page_view", "context": {"traits": traits}}


def _oracle(messages: list[dict[str, object]]) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    """Each user's ids and traits, brute force: the latest link of each anonymous id wins, then the latest value of each key."""
    links: dict[str, tuple[datetime, str]] = {}
    timed = sorted(messages, key=lambda m: str(m["timestamp"]))
    for m in timed:
        at = datetime.fromisoformat(str(m["timestamp"]))
        anon = m.get("previousId") if m["type"] == "alias" else m.get("anonymousId")
        if anon and m.get("userId") and anon != m["userId"]:
            links[str(anon)] = (at, str(m["userId"]))
    owner = {a: u for a, (_, u) in links.items()}
    users = {str(m["userId"]) for m in messages if m.get("userId")}
    ids = {u: (u, *sorted(a for a, p in owner.items() if p == u)) for u in users}
    traits: dict[str, dict[str, str]] = {u: {} for u in users}
    for m in timed:
        given = m.get("traits") or (m.get("context") or {}).get("traits") or {}  # type: ignore[union-attr]
        who = str(m.get("userId") or m.get("anonymousId"))
        person = owner.get(who, who)
        if m["type"] != "alias" and person in traits:
            traits[person].update(given)  # type: ignore[arg-type]
    return ids, traits


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_MESSAGE, min_size=1, max_size=25), st.integers(1, 3), st.randoms(use_true_random=False))
def test_people_equal_the_brute_force_oracle(client, shown, batches, rng):
    """Any identify/alias/track sequence, in shuffled batches: each user's ids and latest traits are the oracle's."""
    clear_store(client)
    apply(PLAN, client)
    made = [_segment(k, u, a, t, _at(60 - i), i) for i, (k, u, a, t) in enumerate(shown)]
    messages = [m for m in made if m is not None]
    rng.shuffle(messages)
    size = -(-len(messages) // batches) if messages else 1
    source = [SourceBatch(f"p:{i}", "events", lines(messages[i : i + size])) for i in range(0, len(messages), size)]
    run_flow(PLAN, BatchSource(source), client, clock=lambda: NOW)

    def read(sql: str, params):  # type: ignore[no-untyped-def]
        return pl.from_arrow(client.query_arrow(sql, parameters=dict(params)))

    ids, traits = _oracle(messages)
    for user in ids:
        found = person(PLAN, read, user)
        assert (found.ids, dict(found.traits)) == (ids[user], traits[user]), messages
