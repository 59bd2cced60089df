"""Reading JSON lines: nested fields no line has are skipped, and nothing read changes for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rta.flows import events as ev
from tests.conftest import shop_plan

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def stream():
    return shop_plan().streams[0]


def lines(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def full_schema_read(data: bytes, stream) -> pl.DataFrame:  # the way before nested fields were skipped
    return ev.normalize(pl.read_ndjson(data, schema=ev.json_schema(stream)), stream, NOW).events


def test_flat_events_skip_the_nested_fields_and_normalize_alike(stream):
    flat = [
        {"timestamp": NOW.isoformat(), "event": "purchase", "country": "FR", "campaign": "x", "revenue": 3.5, "user_id": "u1"},
        {"timestamp": NOW.isoformat(), "event": "page_view", "device": "mobile", "load_ms": 120, "user_id": "u2"},
    ]
    data = lines(*flat)
    frame, bad, _ = ev.read_json_lines(data, stream)
    assert bad == 0
    assert "properties" not in frame.columns and "context" not in frame.columns
    assert_frame_equal(ev.normalize(frame, stream, NOW).events, full_schema_read(data, stream))


def test_one_nested_line_among_flat_ones_and_braces_in_strings_are_read(stream):
    flat = {"timestamp": NOW.isoformat(), "event": "page_view", "path": "/{id}", "user_id": "u1"}
    nested = {"timestamp": NOW.isoformat(), "event": "purchase", "user_id": "u2", "properties": {"country": "DE"}}
    data = lines(*([flat] * 500), nested)
    frame, _, _ = ev.read_json_lines(data, stream)
    assert "properties" in frame.columns
    events = ev.normalize(frame, stream, NOW).events
    assert events["country"].to_list()[-2:] == ["", "DE"] and events["path"][0] == "/{id}"
    assert_frame_equal(events, full_schema_read(data, stream))
    assert "properties" not in ev.read_json_lines(lines(*([flat] * 500)), stream)[0].columns  # a brace in a string is no object


def test_context_without_properties_still_gives_campaign(stream):
    data = lines({"type": "identify", "userId": "u1", "timestamp": NOW.isoformat(), "context": {"campaign": {"name": "spring"}}})
    frame, _, _ = ev.read_json_lines(data, stream)
    assert "context" in frame.columns and "properties" not in frame.columns
    events = ev.normalize(frame, stream, NOW).events
    assert events.select("event", "campaign").row(0) == ("identify", "spring")


def test_a_key_spelled_with_escapes_is_still_read(stream):
    data = b'{"type":"track","event":"buy","userId":"u1","timestamp":"%s","\\u0070roperties":{"country":"DE"}}\n' % NOW.isoformat().encode()
    frame, _, _ = ev.read_json_lines(data, stream)
    assert ev.normalize(frame, stream, NOW).events["country"].to_list() == ["DE"]


def test_only_the_context_fields_lines_have_are_read_and_enrich_alike(stream):
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    data = lines(
        {"type": "track", "event": "buy", "userId": "u1", "timestamp": NOW.isoformat(), "context": {"userAgent": ua}},
        {"type": "page", "userId": "u2", "timestamp": NOW.isoformat(), "_ip": "81.2.69.160"},  # the API's note of the address
        {"type": "track", "event": "buy", "userId": "u3", "timestamp": NOW.isoformat(), "context": {"location": {"country": "FR"}}},
    )
    frame, _, _ = ev.read_json_lines(data, stream)
    assert {f.name for f in frame.schema["context"].fields} >= {"userAgent", "ip", "location"}
    assert "campaign" not in {f.name for f in frame.schema["context"].fields}  # no line has one
    events = ev.normalize(frame, stream, NOW).events
    assert events.select("event", "device", "country").rows() == [("buy", "mobile", ""), ("page_view", "", "GB"), ("buy", "", "FR")]
    assert_frame_equal(events, full_schema_read(data, stream))


def test_a_nested_name_spelled_with_escapes_is_still_read(stream):
    data = b'{"type":"track","event":"buy","userId":"u1","timestamp":"%s","context":{"loc\\u0061tion":{"country":"FR"}}}\n'
    frame, _, _ = ev.read_json_lines(data % NOW.isoformat().encode(), stream)
    assert ev.normalize(frame, stream, NOW).events["country"].to_list() == ["FR"]


def test_the_address_the_api_noted_gives_the_country_when_no_line_has_a_context(stream):
    data = lines({"type": "track", "event": "buy", "userId": "u1", "timestamp": NOW.isoformat(), "_ip": "81.2.69.160"})
    frame, _, _ = ev.read_json_lines(data, stream)
    assert "context" not in frame.columns
    assert ev.normalize(frame, stream, NOW).events["country"].to_list() == ["GB"]


def test_a_dimension_no_line_states_is_still_implied_from_context(stream):
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    track = {"type": "track", "event": "buy", "timestamp": NOW.isoformat(), "properties": {"campaign": "c"}, "context": {"userAgent": ua}}
    data = lines(*({**track, "userId": f"u{i}"} for i in range(1_000)))
    frame = ev.read_json_lines(data, stream)[0].drop("device", "properties")  # as from a source without them
    assert ev.normalize(frame, stream, NOW).events["device"].unique().to_list() == ["mobile"]
