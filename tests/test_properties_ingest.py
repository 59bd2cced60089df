"""Schema-free properties on the way in: flattening, refusals, the raw table's maps and materialized columns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from rta.compiler.properties import MAX_MATERIALIZED
from rta.contract.properties import MAX_KEY, MAX_PROPERTIES, Flat, PropertyError, flatten
from rta.flows.frames import BatchSource, frame_batches
from rta.flows.runner import run_flow
from rta.ingest.segment import validate
from rta.store import properties as store_properties
from rta.store.schema import apply
from tests.conftest import shop_plan

pytestmark = pytest.mark.core
PLAN = shop_plan()
STREAM = PLAN.stream("events")
RAW = STREAM.raw_table
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
    assert dict(zip(flat.keys, flat.texts, strict=True)) == texts
    assert dict(zip(flat.number_keys, flat.numbers, strict=True)) == numbers


def test_too_many_properties_or_too_long_a_name_refuse_the_event_and_say_why():
    with pytest.raises(PropertyError, match="1,001 properties"):
        flatten({f"k{i}": i for i in range(MAX_PROPERTIES + 1)})
    with pytest.raises(PropertyError, match=f"the limit is {MAX_KEY}"):
        flatten({"x" * (MAX_KEY + 1): 1})
    assert flatten({f"k{i}": i for i in range(MAX_PROPERTIES)}).keys[-1] == f"k{MAX_PROPERTIES - 1}"
    assert not flatten({}) and isinstance(flatten(None), Flat)


def _message(i: int, **properties: object) -> dict[str, object]:
    return {"type": "track", "event": "purchase", "userId": f"u{i}", "messageId": f"m{i}", "timestamp": NOW.isoformat(),
            "properties": {"country": "FR", **properties}}  # fmt: skip


def test_a_bad_property_refuses_only_its_event_and_names_it():
    body = json.dumps([_message(0, plan="pro"), _message(1, **{"y" * 300: 1}), _message(2, **{f"k{i}": i for i in range(1_001)})])
    checked = validate(body.encode(), STREAM, now=NOW)
    assert len(checked.lines) == 1 and b'"_pk":["plan"]' in checked.lines[0]
    fields = [(r.index, r.field) for r in checked.rejected]
    assert fields == [(1, "properties." + "y" * 40 + "..."), (2, "properties")]
    assert "300 characters" in checked.rejected[0].reason and "the limit is 1,000" in checked.rejected[1].reason


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
