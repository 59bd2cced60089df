"""Definitions validate when created: errors name the metric, the bad value and valid options."""

from __future__ import annotations

import pytest

from rta import average, col, count, distinct, maximum, metric, minimum, quantile, rollup, stream, total
from rta.dsl import definitions
from rta.errors import DefinitionError

pytestmark = pytest.mark.core


@pytest.fixture
def events():
    return stream("events", dimensions={"event": str, "country": str}, measures={"revenue": float, "load_ms": float})


def test_unknown_field_lists_valid_ones(events):
    with pytest.raises(DefinitionError, match=r"metric 'rev': stream 'events' has no field 'revnue'; did you mean 'revenue'\?"):
        metric("rev", total("revnue"), stream=events)


@pytest.mark.parametrize("agg", [total, minimum, maximum, average])
def test_numeric_aggregation_on_dimension_is_refused(events, agg):
    with pytest.raises(DefinitionError, match=rf"metric 'bad': {agg.__name__}\(\) needs a numeric measure, but 'country' is a dimension"):
        metric("bad", agg("country"), stream=events)


def test_filter_on_unknown_field(events):
    with pytest.raises(DefinitionError, match=r"metric 'p' where=: stream 'events' has no field 'evnt'"):
        metric("p", count(), where=col("evnt") == "x", stream=events)


def test_duplicate_metric_name_in_project(events):
    a = metric("views", count(), stream=events)
    b = metric("views", count(), where=col("event") == "page_view", stream=events)
    with pytest.raises(DefinitionError, match="two different metrics are named 'views'"):
        definitions([a, b])


def test_same_definition_twice_is_fine(events):
    a = metric("views", count(), stream=events)
    assert definitions([a, metric("views", count(), stream=events)]).metrics == (a,)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ({"5m": "1d"}, r"rollup 'r': unknown grain '5m'; valid grains are: 1m, 1h, 1d"),
        ({"1h": "ninety days"}, r"invalid retention of grain '1h' in rollup 'r': got 'ninety days'"),
        ({}, r"keep= is empty"),
    ],
)
def test_bad_grain_or_retention(events, keep, message):
    with pytest.raises(DefinitionError, match=message):
        rollup("r", [metric("v", count(), stream=events)], keep=keep)


def test_rollup_by_unknown_dimension(events):
    with pytest.raises(DefinitionError, match=r"by= names 'contry', which is not a dimension of stream 'events'; did you mean 'country'"):
        rollup("r", [metric("v", count(), stream=events)], by=["contry"])


def test_rollup_by_measure_is_refused(events):
    with pytest.raises(DefinitionError, match=r"'revenue', which is not a dimension"):
        rollup("r", [metric("v", count(), stream=events)], by=["revenue"])


@pytest.mark.parametrize("name", ["Page Views", "1views", "views__n", "", "x" * 64])
def test_bad_metric_names(events, name):
    with pytest.raises(DefinitionError, match="invalid metric name"):
        metric(name, count(), stream=events)


def test_quantile_bounds():
    with pytest.raises(DefinitionError, match=r"quantile\('load_ms', q\) needs 0 < q < 1, got 95"):
        quantile("load_ms", 95)


def test_stream_type_errors():
    with pytest.raises(DefinitionError, match="dimension 'n' has type <class 'int'>; dimensions are strings"):
        stream("s", dimensions={"n": int})
    with pytest.raises(DefinitionError, match="measure 'm' has type <class 'str'>; measures are int or float"):
        stream("s", measures={"m": str})
    with pytest.raises(DefinitionError, match="field name 'minute' is reserved by rta"):
        stream("s", dimensions={"minute": str})
    with pytest.raises(DefinitionError, match="field 'a' is declared twice"):
        stream("s", dimensions={"a": str}, measures={"a": float})


def test_formulas_expand_to_stored_metrics(events):
    buys = metric("buys", count(), where=col("event") == "purchase", stream=events)
    users = metric("users", distinct("user_id"), stream=events)
    conv = metric("conv", buys / users * 100)
    assert conv.is_derived and conv.base_metrics() == (buys, users)
    assert rollup("r", [conv]).metrics == (buys, users)
    with pytest.raises(DefinitionError, match="a formula cannot take where="):
        metric("c2", buys / users, where=col("event") == "x")


def test_filters_refuse_python_boolean_operators():
    with pytest.raises(DefinitionError, match="combine filters with & | ~"):
        (col("a") == "x") and (col("b") == "y")  # noqa: B015


def test_metric_without_stream_in_scope():
    from rta.dsl.context import collecting

    with collecting(), pytest.raises(DefinitionError, match="no stream to read from"):
        metric("v", count())


def test_metric_reads_the_latest_stream(events):
    assert metric("v", count()).stream == events


def test_definitions_are_values(events):
    a = metric("v", count(), where=col("country").isin(["US", "DE"]), stream=events)
    b = metric("v", count(), where=col("country").isin(["US", "DE"]), stream=events)
    assert a == b and hash(a) == hash(b)
