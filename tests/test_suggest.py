"""Rollup suggestions from dashboard filters."""

from __future__ import annotations

import pytest

from rta import col, count, distinct, metric, rollup, stream
from rta.compiler import compile
from rta.dsl import definitions
from rta.errors import QueryError
from rta.query.suggest import suggest_rollups
from tests.conftest import shop_plan

pytestmark = pytest.mark.core


def test_the_shop_example_answers_its_own_dashboard_filters():
    assert suggest_rollups(shop_plan(), ["country", "device"]) == []


def test_missing_and_slow_combinations_are_named():
    events = stream("events", dimensions={"event": str, "country": str, "device": str, "campaign": str})
    views = metric("views", count(), where=col("event") == "page_view", stream=events)
    users = metric("users", distinct("user_id"), stream=events)
    plan = compile(
        definitions([rollup("wide", [views, users], by=["event", "country", "device", "campaign"]), rollup("geo", [views], by=["country"])])
    )
    found = {(s.by, s.metrics): s for s in suggest_rollups(plan, ["country", "device"], together=1)}
    assert found[((), ("users",))].reason == "distinct counts users would merge sketches from a wide rollup"
    assert found[(("country",), ("users",))].code() == "rollup(\"by_country\", [users], by=['country'])"
    assert (("country",), ("views",)) not in found  # geo answers it narrowly enough


def test_unknown_filter():
    with pytest.raises(QueryError, match=r"dashboard filter 'contry' is not a dimension; did you mean 'country'\?"):
        suggest_rollups(shop_plan(), ["contry"])
