"""Schema-free properties on the way in: flattening, refusals, the raw table's maps and materialized columns."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta.compiler.properties import MAX_MATERIALIZED
from rta.contract.properties import MAX_KEY, MAX_PROPERTIES, PROPS_JSON, Flat, PropertyError, flatten
from rta.contract.segment import message_types
from rta.flows.frames import BatchSource, frame_batches
from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.ingest.segment import validate
from rta.store import properties as store_properties
from rta.store.client import sibling
from rta.store.schema import apply
from tests.conftest import clear_store, shop_plan

pytestmark = pytest.mark.core
PLAN = shop_plan()
STREAM = PLAN.stream("events")
RAW = STREAM.raw_table
STREAM_DECLARED = message_types(STREAM).declared
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# (what a client sends, the paths with their texts, the numeric paths with their numbers)
FLATTENED = [
    ({"plan": "pro"}, {"plan": "pro"}, {}),
    ({"cart": {"items": 3, "coupon": None, "x": {}}}, {"cart.items": "3"}, {"cart.items": 3.0}),
    ({"beta": True, "off": False}, {"beta": "true", "off": "false"}, {}),
    ({"price": 2.5, "big": 10**30}, {"price": "2.5", "big": "1" + "0" * 30}, {"price": 2.5, "big": 1e30}),
    ({"huge": 10**400}, {"huge": "1" + "0" * 400}, {}),  # beyond a float: text only
    ({"tags": ["a", {"b": 1}], "n": None}, {"tags": '["a",{"b":1}]'}, {}),
    ({"a.b": 1, "a": {"b": "two"}}, {"a.b": "two"}, {}),  # a path written twice keeps the last value, as JSON keys do
    ({"revenue": 5, "country": "FR", "other": 1}, {"other": "1"}, {"other": 1.0}),  # declared ones are columns
    ({"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {"l8": {"l9": 1}}}}}}}}}, {"l1.l2.l3.l4.l5.l6.l7.l8": '{"l9":1}'}, {}),
]


@pytest.mark.parametrize(("sent", "texts", "numbers"), FLATTENED)
def test_properties_are_flattened_to_dotted_paths(sent, texts, numbers):
    flat = flatten(sent, frozenset({"revenue", "country"}))
    assert flat.texts == texts and flat.numbers == numbers


def test_too_many_properties_or_too_long_a_name_refuse_the_event_and_say_why():
    with pytest.raises(PropertyError, match="1,001 properties"):
        flatten({f"k{i}": i for i in range(MAX_PROPERTIES + 1)})
    with pytest.raises(PropertyError, match=f"the limit is {MAX_KEY}"):
        flatten({"x" * (MAX_KEY + 1): 1})
    assert list(flatten({f"k{i}": i for i in range(MAX_PROPERTIES)}).texts)[-1] == f"k{MAX_PROPERTIES - 1}"
    assert not flatten({}) and isinstance(flatten(None), Flat)


def _message(i: int, **properties: object) -> dict[str, object]:
    return {"type": "track", "event": "purchase", "userId": f"u{i}", "messageId": f"m{i}", "timestamp": NOW.isoformat(),
            "properties": {"country": "FR", **properties}}  # fmt: skip


def test_a_bad_property_refuses_only_its_event_and_names_it():
    body = json.dumps([_message(0, plan="pro"), _message(1, **{"y" * 300: 1}), _message(2, **{f"k{i}": i for i in range(1_001)})])
    checked = validate(body.encode(), STREAM, now=NOW)
    assert len(checked.lines) == 1 and checked.lines[0].endswith(b',"_p":"{\\"plan\\":\\"pro\\"}"}')
    fields = [(r.index, r.field) for r in checked.rejected]
    assert fields == [(1, "properties." + "y" * 40 + "..."), (2, "properties")]
    assert "300 characters" in checked.rejected[0].reason and "the limit is 1,000" in checked.rejected[1].reason


# Texts and numbers that break a hand-made reader: escapes, control characters, line and paragraph
# separators, characters beyond the BMP, empty strings and keys, JSON's own punctuation.
TRICKY_TEXTS = ['a"b', "a\\", "x\ny\r\t", "\x00\x01\x1f\x7f", "\u2028\u2029", "Ünï ✓ \U0001f600", "", '":,{}[]', "\\u0041"]
TRICKY_NUMBERS = [0.0, -0.0, 0.1, 1e-7, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e300, 9007199254740993, 2**63, 10**30]


def _stored_properties(client, messages: list[dict[str, object]]) -> dict[str, tuple[dict, dict]]:
    """The collect API's lines of ``messages`` through the flow: each event's maps as the raw table holds them."""
    checked = validate(json.dumps(messages).encode(), STREAM, now=NOW)
    assert not checked.rejected, checked.rejected
    run_flow(PLAN, BatchSource([SourceBatch("tricky:1", "events", b"\n".join(checked.lines))]), client, clock=lambda: NOW)
    rows = client.query(f"SELECT insert_id, props, props_num FROM {RAW}", settings={"output_format_arrow_string_as_string": 1})
    return {i: (p, n) for i, p, n in rows.result_rows}


def test_the_raw_tables_maps_hold_exactly_what_the_api_flattened(client):
    """ClickHouse parses the line's JSON texts at insert: every text and number arrives as the API wrote it."""
    apply(PLAN, client)
    values: list[object] = [*TRICKY_TEXTS, *TRICKY_NUMBERS, True, None, ["a", 1], {"deep": {"er": "x"}}]
    messages = [_message(i, **{"v": v, 'k"ey\\': v, "": v, "ü.ñ": v}) for i, v in enumerate(values)]
    stored = _stored_properties(client, messages)
    for message in messages:
        flat = flatten(message["properties"], STREAM_DECLARED)  # type: ignore[arg-type]
        assert stored[str(message["messageId"])] == (flat.texts, flat.numbers), message


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.text(max_size=6), st.text(max_size=12) | st.floats(allow_nan=False, allow_infinity=False), max_size=4),
                min_size=1, max_size=12))  # fmt: skip
def test_any_property_texts_arrive_in_the_maps_as_sent(client, properties):
    clear_store(client)
    apply(PLAN, client)
    messages = [{**_message(i), "properties": {**p, "country": "FR"}} for i, p in enumerate(properties)]
    stored = _stored_properties(client, messages)
    for message in messages:
        flat = flatten(message["properties"], STREAM_DECLARED)  # type: ignore[arg-type]
        assert stored[str(message["messageId"])] == (flat.texts, flat.numbers), message


def _load(client, frames: list[pl.DataFrame]) -> None:
    run_flow(PLAN, BatchSource(frame_batches("events", frames)), client, clock=lambda: NOW)


def _events(n: int, start: int = 0, **extra: list[object]) -> pl.DataFrame:
    base = {
        "timestamp": [NOW - timedelta(minutes=i) for i in range(start, start + n)],
        "event": ["purchase"] * n,
        "user_id": [f"u{i}" for i in range(start, start + n)],
        "insert_id": [f"i{i}" for i in range(start, start + n)],
        "country": ["FR"] * n,
        "revenue": [1.0] * n,
    }
    return pl.DataFrame({**base, **extra})


def test_a_loaded_frames_extra_columns_are_its_properties(client):
    apply(PLAN, client)
    frame = _events(4, plan=["pro", "free", None, "pro"], seats=[1, 2, 3, None], beta=[True, False, True, None])
    _load(client, [frame])
    rows = client.query(
        f"SELECT insert_id, props, props_num FROM {RAW} ORDER BY insert_id", settings={"output_format_arrow_string_as_string": 1}
    ).result_rows
    assert rows == [
        ("i0", {"plan": "pro", "seats": "1", "beta": "true"}, {"seats": 1.0}),
        ("i1", {"plan": "free", "seats": "2", "beta": "false"}, {"seats": 2.0}),
        ("i2", {"seats": "3", "beta": "true"}, {"seats": 3.0}),
        ("i3", {"plan": "pro"}, {}),
    ]


def test_new_keys_get_columns_that_answer_like_the_maps_even_for_rows_written_before(client, monkeypatch):
    apply(PLAN, client)
    monkeypatch.setattr(store_properties, "MAX_MATERIALIZED", 3)
    client.command(f"INSERT INTO {RAW} (timestamp, insert_id, user_id, props) VALUES (now64(3), 'old', 'u', map('plan', 'team'))")
    _load(client, [_events(3, plan=["pro", "pro", "free"], seats=[1, 2, 3]), _events(2, 3, tier=["a", "b"], zone=["x", "y"])])
    materialized = store_properties.materialized(client, RAW)
    # First come, first materialized, within the limit per kind; the rest stays in the maps.
    assert materialized == {"prop.plan", "prop.seats", "prop.tier", "num.seats"}
    by_column = client.query(f"SELECT `prop.plan` AS p, count() FROM {RAW} GROUP BY p ORDER BY p").result_rows
    by_map = client.query(f"SELECT if(mapContains(props, 'plan'), props['plan'], NULL) AS p, count() FROM {RAW} GROUP BY p ORDER BY p")
    assert by_column == by_map.result_rows == [("free", 1), ("pro", 2), ("team", 1), (None, 2)]
    assert client.query(f"SELECT sum(`num.seats`) FROM {RAW}").result_rows == [(6.0,)]
    assert MAX_MATERIALIZED == 64  # the limit in production


def test_what_is_remembered_of_a_tables_columns_goes_with_its_client(client):
    """Keyed by id(client), a client made later at a collected one's address took its memory (of maybe another store)."""
    apply(PLAN, client)
    _load(client, [_events(2, plan=["pro", "free"])])
    other = sibling(client)
    assert other is not None
    store_properties.materialize_new(other, RAW, pa.table({PROPS_JSON: ['{"plan":"pro"}']}))
    assert set(store_properties._known[other][RAW][0]) == {"plan"} and RAW in store_properties._looked[other]
    gone = weakref.ref(other)
    other.close()
    del other
    gc.collect()
    assert gone() is None and not [c for c in store_properties._known if c is not client]  # nothing is held for it


def test_numbers_get_columns_after_the_texts_have_no_room_left(client, monkeypatch):
    apply(PLAN, client)
    monkeypatch.setattr(store_properties, "MAX_MATERIALIZED", 1)
    _load(client, [_events(2, plan=["pro", "free"]), _events(2, 2, seats=[1, 2], tier=["a", "b"])])
    assert store_properties.materialized(client, RAW) == {"prop.plan", "num.seats"}
    assert client.query(f"SELECT sum(`num.seats`), count(`prop.plan`) FROM {RAW}").result_rows == [(3.0, 2)]


def test_an_insert_that_gives_neither_the_texts_nor_the_maps_stores_empty_maps(client):
    apply(PLAN, client)
    client.command(f"INSERT INTO {RAW} (timestamp, insert_id, user_id) VALUES (now64(3), 'bare', 'u')")
    client.raw_insert(RAW, ["timestamp", "insert_id", "user_id"], fmt="JSONEachRow", settings={"input_format_skip_unknown_fields": 1},
                      insert_block=b'{"timestamp": "2026-12-01 12:00:00", "insert_id": "flat", "user_id": "u", "plan": "x"}\n')  # fmt: skip
    rows = client.query(f"SELECT insert_id, props, props_num FROM {RAW} ORDER BY insert_id").result_rows
    assert rows == [("bare", {}, {}), ("flat", {}, {})]


def test_a_raw_table_from_an_older_rta_gets_the_maps_at_start(client):
    client.command(
        f"CREATE TABLE {RAW} (timestamp DateTime64(3, 'UTC'), insert_id String, user_id String, event LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY timestamp"
    )
    client.command(f"INSERT INTO {RAW} (timestamp, insert_id, user_id, event) VALUES (now64(3), 'before', 'u', 'purchase')")
    apply(PLAN, client)
    _load(client, [_events(1, plan=["pro"])])
    rows = client.query(f"SELECT insert_id, props FROM {RAW} ORDER BY insert_id").result_rows
    assert rows == [("before", {}), ("i0", {"plan": "pro"})]


def test_a_raw_table_whose_maps_the_flow_filled_itself_parses_the_texts_after_start(client):
    """An rta of before the line's JSON texts made the maps without DEFAULTs: the start adds them, and the texts' source columns."""
    client.command(
        f"CREATE TABLE {RAW} (timestamp DateTime64(3, 'UTC'), insert_id String, user_id String, "
        "props Map(LowCardinality(String), String), props_num Map(LowCardinality(String), Float64)) ENGINE = MergeTree ORDER BY timestamp"
    )
    apply(PLAN, client)
    kinds = dict(client.query(f"SELECT name, default_kind FROM system.columns WHERE table = '{RAW}'").result_rows)
    assert (kinds["_p"], kinds["_n"], kinds["props"], kinds["props_num"]) == ("EPHEMERAL", "EPHEMERAL", "DEFAULT", "DEFAULT")
    _load(client, [_events(1, plan=["pro"], seats=[2])])
    assert client.query(f"SELECT props, props_num FROM {RAW}").result_rows == [({"plan": "pro", "seats": "2"}, {"seats": 2.0})]
    apply(PLAN, client)  # nothing left to change
    again = dict(client.query(f"SELECT name, default_kind FROM system.columns WHERE table = '{RAW}'").result_rows)
    assert {name: again[name] for name in kinds} == kinds


def test_loaded_json_lines_keep_their_properties_unless_declared_only(client, tmp_path):
    from rta.flows.sources import FileSource

    apply(PLAN, client)
    path = tmp_path / "history.jsonl"
    lines = [
        {"timestamp": NOW.isoformat(), "event": "purchase", "user_id": "u1", "insert_id": "f1", "country": "FR", "plan": "pro"},
        {"type": "track", "event": "purchase", "userId": "u2", "messageId": "f2", "timestamp": NOW.isoformat(),
         "properties": {"revenue": 3, "cart": {"items": 2}}, "traits": {"email": "x@example.com"}},
        "not json",
    ]  # fmt: skip
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    for keep in (False, True):
        client.command(f"TRUNCATE TABLE {RAW}")
        run_flow(PLAN, FileSource([path], STREAM, properties=keep), client, clock=lambda: NOW)
        rows = client.query(f"SELECT insert_id, props, props_num, revenue FROM {RAW} ORDER BY insert_id").result_rows
        if keep:
            assert rows == [("f1", {"plan": "pro"}, {}, None), ("f2", {"cart.items": "2"}, {"cart.items": 2.0}, 3.0)]
        else:
            assert rows == [("f1", {}, {}, None), ("f2", {}, {}, 3.0)]


def test_ad_hoc_queries_filter_and_break_down_by_any_property(client, tmp_path):
    from rta.dsl.aggregates import count, distinct, total
    from rta.dsl.expr import col
    from rta.query.adhoc import events_query

    apply(PLAN, client)
    frame = _events(6, plan=["pro", "free", "pro", None, "pro", "free"], seats=[1, 2, 3, 4, 5, 6])
    _load(client, [frame])

    def run(sql: str, params: dict[str, object]) -> pl.DataFrame:
        return pl.from_arrow(client.query_arrow(sql, parameters=params))  # type: ignore[return-value]

    events = events_query(PLAN, STREAM, run)
    by_plan = (
        events.where(col("prop.seats") > 1)
        .group_by("prop.plan")
        .agg(n=count(), seats=total("prop.seats"), users=distinct("user_id"))
        .order_by("prop.plan")
        .collect()
    )
    assert by_plan.rows() == [("free", 2, 8.0, 2), ("pro", 2, 8.0, 2), (None, 1, 4.0, 1)]
    assert events.where(col("prop.plan").is_null()).agg(n=count()).collect().item() == 1
    assert events.where(col("prop.plan").startswith("fr"), col("prop.seats").between(2, 6)).agg(n=count()).collect().item() == 2
    with pytest.raises(Exception, match="undeclared properties are prop.<name>"):
        events.group_by("plan")
    # The load found both keys and gave them columns: a builder told so reads them, with the same answers.
    from rta.store.properties import materialized

    columns = materialized(client, RAW)
    assert {"prop.plan", "num.seats"} <= columns
    fast = events_query(PLAN, STREAM, run, columns)
    query = fast.where(col("prop.seats") > 1).group_by("prop.plan").agg(n=count(), seats=total("prop.seats"), users=distinct("user_id"))
    sql, _ = query.to_sql()
    assert '."prop.plan"' in sql and '."num.seats"' in sql and "props[" not in sql and "props_num[" not in sql, sql
    assert query.order_by("prop.plan").collect().rows() == by_plan.rows()


def test_ws_properties_lists_every_property_with_its_type_and_share(client, tmp_path):
    from rta.query.properties import properties

    apply(PLAN, client)
    frame = _events(4, plan=["pro", "free", None, "pro"], seats=[1, 2, 3, None], beta=[True, False, True, None])
    frame = frame.with_columns(code=pl.Series(["7", "x", "9", "y"]))
    _load(client, [frame])

    def run(sql: str, params: Mapping[str, object]) -> pl.DataFrame:
        return pl.from_arrow(client.query_arrow(sql, parameters=dict(params)))  # type: ignore[return-value]

    found = properties(STREAM, run, NOW + timedelta(minutes=1))
    rows = {r["name"]: (r["type"], r["declared"], r["events"], r["share"]) for r in found.iter_rows(named=True)}
    assert rows["country"] == ("string", True, 4, 1.0) and rows["revenue"] == ("number", True, 4, 1.0)
    assert rows["load_ms"] == ("number", True, 0, 0.0)
    assert rows["prop.plan"] == ("string", False, 3, 0.75)
    assert rows["prop.seats"] == ("number", False, 3, 0.75)
    assert rows["prop.beta"] == ("boolean", False, 3, 0.75)
    assert rows["prop.code"] == ("string", False, 4, 1.0)
    assert found.filter(pl.col("name") == "prop.plan")["examples"].to_list() == [["free", "pro"]]
