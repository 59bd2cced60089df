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
