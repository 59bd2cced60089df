"""The planner's raw-events fallback: metric queries no rollup answers, answered from raw events.

Events go in through the collect API's contract (``validate`` makes the log lines the flow reads)
with undeclared properties and people's traits; answers are compared with the brute-force oracle
of ``rta.testing``, and with the rollups' own answers where a rollup answers too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta import col
from rta.errors import QueryError
from rta.flows.demo import Population, generate
from rta.flows.frames import BatchSource
from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.ingest.segment import validate
from rta.query.metric_query import make_query, raw_answered, run_query
from rta.testing import oracle_query
from tests.conftest import clear_store, shop_project

pytestmark = pytest.mark.store
NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
PLANS = ["free", "pro", "team", None]  # None: the property is not sent
TRAIT_PLANS = ["free", "pro", "enterprise"]
USERS = 300


def _messages(events: pl.DataFrame, rng: np.random.Generator) -> tuple[list[dict[str, object]], pl.DataFrame]:
    """Segment messages for ``events`` with undeclared properties, plus identify calls; the events with the oracle's columns."""
    plan = rng.choice(len(PLANS), events.height)
    discount = np.where(rng.random(events.height) < 0.5, np.round(rng.random(events.height) * 30, 1), np.nan)
    messages: list[dict[str, object]] = []
    for i, row in enumerate(events.iter_rows(named=True)):
        properties = {k: row[k] for k in ("country", "device", "campaign", "path") if row[k] is not None}
        properties |= {k: row[k] for k in ("revenue", "load_ms") if row[k] is not None}
        if PLANS[plan[i]] is not None:
            properties["plan"] = PLANS[plan[i]]
        if not np.isnan(discount[i]):
            properties["cart"] = {"discount": float(discount[i])}  # nested: prop.cart.discount
        messages.append(
            {"type": "track", "event": row["event"], "userId": row["user_id"], "messageId": row["insert_id"],
             "timestamp": row["timestamp"].isoformat(), "properties": properties}
        )  # fmt: skip
    users = sorted(set(events["user_id"].to_list()))
    traits: dict[str, str] = {}
    for n, user in enumerate(users):
        if n % 4 == 3:
            continue  # a quarter of the people never identify: their trait is missing
        for step in range(1 + n % 2):  # some change plan: the latest identify wins
            value = TRAIT_PLANS[(n + step) % len(TRAIT_PLANS)]
            at = NOW - timedelta(hours=20 - step)
            messages.append({"type": "identify", "userId": user, "messageId": f"id-{user}-{step}", "timestamp": at.isoformat(),
                             "traits": {"plan": value}})  # fmt: skip
            traits[user] = value
    identified = [m for m in messages if m["type"] == "identify"]  # events of the stream too (event "identify")
    calls = pl.DataFrame(
        {"timestamp": [datetime.fromisoformat(str(m["timestamp"])) for m in identified], "event": "identify",
         "user_id": [m["userId"] for m in identified], "insert_id": [m["messageId"] for m in identified]},
    ).with_columns(pl.col("timestamp").cast(events.schema["timestamp"]))  # fmt: skip
    events = pl.concat([events, calls], how="diagonal")
    plan = np.concatenate([plan, np.full(calls.height, PLANS.index(None))])
    discount = np.concatenate([discount, np.full(calls.height, np.nan)])
    oracle = events.with_columns(
        pl.Series("prop.plan", [PLANS[p] for p in plan], dtype=pl.String),
        pl.Series("prop.cart.discount", discount).fill_nan(None),
        pl.col("user_id").replace_strict(traits, default=None, return_dtype=pl.String).alias("person.plan"),
    )
    return messages, oracle


@pytest.fixture(scope="module")
def loaded(_session_client, store_dsn, tmp_path_factory):
    clear_store(_session_client)
    ws = shop_project(tmp_path_factory, store_dsn, "fallback")
    rng = np.random.default_rng(7)
    now_ms = int(NOW.timestamp() * 1000)
    events = generate(Population(7, users=USERS), 3_000, now_ms - 26 * 3_600_000, now_ms - 60_000, rng, "f")
    messages, oracle = _messages(events, rng)
    stream = ws.plan.stream("events")
    batches, refused = [], set()
    for start in range(0, len(messages), 1_000):  # requests of up to 1,000 messages, one flow batch each
        checked = validate(json.dumps(messages[start : start + 1_000]).encode(), stream, now=NOW)
        refused |= {start + r.index for r in checked.rejected}  # too late for the stream's window: the oracle leaves them out too
        batches.append(SourceBatch(f"fb:{start}", "events", b"\n".join(checked.lines)))
    kept = [i for i in range(oracle.height) if i not in refused]  # the oracle's rows are the messages, in order
    run_flow(ws.plan, BatchSource(batches), ws.client, clock=lambda: NOW)
    return ws, oracle[kept]


def _assert_same(
    got: pl.DataFrame, want: pl.DataFrame, keys: list[str], metrics: list[str], sketched: frozenset[str] = frozenset()
) -> None:
    # Raw events skip the events no metric counts: groups (and buckets) where every value is 0 or
    # empty exist only in the oracle's (and a rollup's) answer, so both sides are compared without them.
    counted = pl.any_horizontal(pl.col(m).fill_null(0) != 0 for m in metrics)
    got, want = got.filter(counted).sort(keys, nulls_last=True), want.filter(counted).sort(keys, nulls_last=True)
    assert got.select(keys).equals(want.select(keys)), (got.select(keys), want.select(keys))
    for name in metrics:
        for g, w in zip(got[name].to_list(), want[name].to_list(), strict=True):
            tolerance = {"rel": 0.05, "abs": 1} if name in sketched else {"rel": 1e-9, "abs": 1e-9}
            assert (g is None and w is None) or g == pytest.approx(w, **tolerance), (name, g, w)


def _oracle(ws, oracle, metrics, grain, last, by=(), where=None):  # type: ignore[no-untyped-def]
    q = make_query(ws.plan, metrics, last=last, grain=grain, by=by, where=where, now=NOW)
    want = oracle_query(ws.plan, metrics, grain, oracle, NOW, by=by, where=where)
    return want.filter((pl.col("bucket") >= q.start) & (pl.col("bucket") < q.end))


def test_purchases_by_an_undeclared_property_equal_the_oracle(loaded):
    ws, oracle = loaded
    got = ws.query(["purchases", "revenue"], last="24h", grain="1h", by="prop.plan", now=NOW, fill_gaps=False)
    want = _oracle(ws, oracle, ["purchases", "revenue"], "1h", "24h", by=["prop.plan"])
    assert set(got["prop.plan"].to_list()) == {"free", "pro", "team", None}  # events without it are a group of their own
    assert got.schema["purchases"] == pl.Int64
    assert got.summary().endswith(
        "answered from raw events (rta_events_raw_692edbae): no rollup of purchases splits or filters by prop.plan"
    )
    _assert_same(got.drop("final"), want, ["bucket", "prop.plan"], ["purchases", "revenue"])


def test_a_numeric_comparison_on_a_measure_and_a_nested_property(loaded):
    ws, oracle = loaded
    where = (col("revenue") > 40) & (col("prop.cart.discount") >= 10)
    got = ws.query(["purchases", "revenue"], last="24h", grain="1d", by="country", where=where, now=NOW, fill_gaps=False)
    want = _oracle(ws, oracle, ["purchases", "revenue"], "1d", "24h", by=["country"], where=where)
    _assert_same(got.drop("final"), want, ["bucket", "country"], ["purchases", "revenue"])


def test_a_person_trait_splits_and_filters_with_the_latest_trait(loaded):
    ws, oracle = loaded
    got = ws.query(["purchases", "visitors"], last="24h", grain="1d", by="person.plan", now=NOW, fill_gaps=False)
    want = _oracle(ws, oracle, ["purchases", "visitors"], "1d", "24h", by=["person.plan"])
    assert set(got["person.plan"].to_list()) == {"free", "pro", "enterprise", None}
    _assert_same(got.drop("final"), want, ["bucket", "person.plan"], ["purchases", "visitors"], frozenset({"visitors"}))
    filtered = ws.query("revenue", last="24h", grain="1h", where=col("person.plan") == "pro", now=NOW, fill_gaps=False)
    _assert_same(
        filtered.drop("final"), _oracle(ws, oracle, ["revenue"], "1h", "24h", where=col("person.plan") == "pro"), ["bucket"], ["revenue"]
    )


def test_totals_top_compare_formulas_and_gaps_work_on_raw_events(loaded):
    ws, oracle = loaded
    totals = ws.query(["purchases", "conversion"], last="24h", by="prop.plan", total=True, now=NOW)
    want = _oracle(ws, oracle, ["purchases"], "1h", "24h", by=["prop.plan"]).group_by("prop.plan").agg(pl.col("purchases").sum())
    _assert_same(totals.select("prop.plan", "purchases"), want, ["prop.plan"], ["purchases"])
    assert totals["purchases"].is_sorted(descending=True) and totals.schema["conversion"] == pl.Float64
    top = ws.query("purchases", last="24h", grain="1h", by="prop.plan", top=2, now=NOW)
    leaders = totals.filter(pl.col("prop.plan").is_not_null() | True).head(2)["prop.plan"].to_list()
    assert set(top["prop.plan"].unique().to_list()) == set(leaders)
    assert top.height == 2 * 25  # gaps filled: every hour of the range (the current one included) for each group
    compared = ws.query("purchases", last="6h", grain="1h", by="prop.plan", compare="previous_period", now=NOW)
    assert "purchases_previous" in compared.columns and compared["purchases_previous"].null_count() < compared.height


def test_explain_says_raw_events_why_and_what_it_scanned(loaded):
    ws, _ = loaded
    told = ws.explain("purchases", last="24h", by="prop.plan", now=NOW, cache=False)
    (read,) = told.executed
    assert read.table == ws.plan.stream("events").raw_table and read.rows_read > 0
    assert read.raw_because == "no rollup of purchases splits or filters by prop.plan"
    assert "raw events" in str(told) and "no rollup of purchases splits or filters by prop.plan" in repr(told)
    q = make_query(ws.plan, "purchases", last="24h", by="prop.plan", now=NOW)
    assert raw_answered(ws.plan, q, NOW).startswith("answered from raw events (")
    assert raw_answered(ws.plan, make_query(ws.plan, "purchases", last="24h", by="country", now=NOW), NOW) is None


def test_beyond_raw_retention_the_error_names_the_rollup_to_add(loaded):
    ws, _ = loaded
    with pytest.raises(QueryError, match=r"raw events of 'events' are kept 30d and this range starts 4\dd ago; add rollup\(\"by_path\""):
        ws.query("revenue", last="45d", grain="1d", by="path", now=NOW)
    with pytest.raises(QueryError, match="only raw events answer by prop.plan"):
        ws.query("revenue", last="45d", grain="1d", by="prop.plan", now=NOW)
    with pytest.raises(QueryError, match="undeclared properties are prop.<name>"):
        ws.query("revenue", last="1d", by="plan", now=NOW)


queries = st.fixed_dictionaries(
    {
        "metrics": st.lists(st.sampled_from(["page_views", "purchases", "revenue", "biggest_order", "avg_load_ms", "visitors"]),
                            min_size=1, max_size=3, unique=True),
        "grain": st.sampled_from(["1m", "1h", "1d"]),
        "last": st.sampled_from(["3h", "1d"]),
        "by": st.lists(st.sampled_from(["country", "device"]), max_size=2, unique=True),
        "where": st.sampled_from([None, col("device") == "mobile", col("country").isin(["US", "DE"]), ~(col("device") == "tablet")]),
        "total": st.booleans(),
    }
)  # fmt: skip


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asked=queries)
def test_raw_events_answer_what_the_rollups_answer(loaded, asked):
    """Any query a rollup answers gets the same answer from raw events (the same sketch for distinct counts)."""
    ws, _ = loaded
    q = make_query(ws.plan, asked["metrics"], now=NOW, **{k: v for k, v in asked.items() if k != "metrics"})
    from_rollups = run_query(ws.client, ws.plan, q, now=NOW)
    raw_only = replace(ws.plan, rollups=())  # no rollup: every metric falls back to raw events
    assert raw_answered(raw_only, q, NOW) is not None and raw_answered(ws.plan, q, NOW) is None
    from_raw = run_query(ws.client, raw_only, q, now=NOW)
    keys = [c for c in ("bucket", *q.by) if c in from_rollups.columns]
    assert from_raw.schema == from_rollups.schema
    _assert_same(from_raw, from_rollups, keys, list(q.metrics))  # less the all-zero groups only rollups keep


raw_filters = st.sampled_from(
    [
        None,
        col("prop.plan") == "pro",
        col("prop.plan").isin(["free", "team"]),
        col("prop.plan").is_null(),
        col("prop.cart.discount") > 12.5,
        col("prop.cart.discount").between(5, 20) & (col("country") != "US"),
        col("revenue") >= 30,
        ~(col("revenue") < 50),
        col("person.plan") == "enterprise",
        col("person.plan").is_null() | (col("prop.plan") == "free"),
        col("path").startswith("/p"),
    ]
)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metrics=st.lists(
        st.sampled_from(["page_views", "purchases", "revenue", "biggest_order", "avg_load_ms"]), min_size=1, max_size=3, unique=True
    ),
    grain=st.sampled_from(["1h", "1d"]),
    by=st.lists(st.sampled_from(["prop.plan", "person.plan", "country", "path"]), max_size=2, unique=True),
    where=raw_filters,
)
def test_any_raw_events_query_equals_the_oracle(loaded, metrics, grain, by, where):
    """Random splits and filters by properties, traits, measures and dimensions, over events some of which came late."""
    ws, oracle = loaded
    got = ws.query(metrics, last="24h", grain=grain, by=by, where=where, now=NOW, fill_gaps=False, cache=False)
    want = _oracle(ws, oracle, metrics, grain, "24h", by=by, where=where)
    _assert_same(got.drop("final"), want, ["bucket", *by], metrics)


def test_the_rest_api_answers_from_raw_events_and_says_so_in_meta(loaded, tmp_path):
    import socket

    import httpx

    from rta.contract.keys import KeyStore
    from rta.query.api import QueryApi, serve_in_thread

    ws, oracle = loaded
    keys = KeyStore(tmp_path / "keys")
    _, read = keys.create("read", "test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, stop = serve_in_thread(QueryApi(ws, keys), port=port)
    try:
        where = json.dumps({"and": [{"field": "revenue", "op": ">", "value": 20}, {"field": "person.plan", "op": "==", "value": "pro"}]})
        params = {"metrics": "purchases,revenue", "by": "prop.plan", "grain": "total", "where": where,
                  "start": (NOW - timedelta(hours=24)).isoformat(), "end": NOW.isoformat()}  # fmt: skip
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/query", params=params, headers={"Authorization": f"Bearer {read}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["meta"]["notice"].startswith("answered from raw events (") and "prop.plan" in body["meta"]["notice"]
        got = pl.DataFrame(body["data"]).select("prop.plan", "purchases", "revenue")
        filtered = (col("revenue") > 20) & (col("person.plan") == "pro")
        want = ws.query(["purchases", "revenue"], start=NOW - timedelta(hours=24), end=NOW, grain="total", by="prop.plan", where=filtered)
        _assert_same(got, want.select("prop.plan", "purchases", "revenue"), ["prop.plan"], ["purchases", "revenue"])
        assert want["purchases"].sum() > 0
        bad = httpx.get(
            f"http://127.0.0.1:{port}/v1/query", params={"metrics": "revenue", "by": "prop."}, headers={"Authorization": f"Bearer {read}"}
        )
        assert bad.status_code == 400 and "prop.<name>" in bad.json()["error"]
    finally:
        stop()
