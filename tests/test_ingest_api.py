"""The collect API over real HTTP on loopback: SDKs -> API -> log -> flow -> ClickHouse, exact counts."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rta.sdk import Client
from tests.ingest_helpers import cli, make_project, post, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("ingest") / "app")
    write_key = cli(project, "keys", "create", "write", "--name", "tests")
    read_key = cli(project, "keys", "create", "read", "--name", "tests")
    running = start(project)
    yield running, write_key, read_key
    running.stop()


def message(i: int, **extra) -> dict:
    return {
        "type": "track", "event": "purchase", "userId": f"u{i % 50}", "messageId": f"m-{uuid.uuid4()}",
        "timestamp": datetime.now(UTC).isoformat(), "properties": {"revenue": 2.0, "country": "FR", "device": "mobile"}, **extra,
    }  # fmt: skip


def count_where(server, where: str = "1") -> int:
    running, _, _ = server
    return query_total(running.project, f"SELECT count() FROM events WHERE {where}")


def test_sdk_events_arrive_exactly_once(server):
    running, write_key, _ = server
    before = count_where(server, "campaign = 'sdk'")
    client = Client(write_key, running.url, batch_size=500, flush_interval=0.05)
    for i in range(5_000):
        client.track(f"user-{i % 97}", "purchase", {"revenue": 1.5, "country": "DE", "device": "desktop", "campaign": "sdk"})
    assert client.flush(timeout=60)
    client.close()
    assert (client.sent, client.dropped) == (5_000, 0)
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'sdk'", expect=before + 5_000) == before + 5_000
    revenue = query_total(running.project, "SELECT toInt64(sum(revenue__sum)) FROM traffic_1h WHERE campaign = 'sdk'")
    assert revenue >= 7_500  # the rollups got them too (1.5 each)


def test_the_official_segment_python_client_works_unchanged(server):
    from segment.analytics.client import Client as Segment

    running, write_key, _ = server
    segment = Segment(write_key, host=running.url, sync_mode=False, upload_size=100, max_retries=3)
    for i in range(1_000):
        segment.track(f"seg-{i}", "signup", {"country": "US", "campaign": "segment-python"}, context={"userAgent": "Mozilla/5.0 (iPhone)"})
    segment.page("seg-x", "Docs", "Install", {"path": "/docs", "campaign": "segment-python"})
    segment.flush()
    segment.join()
    total = query_total(running.project, "SELECT count() FROM events WHERE campaign = 'segment-python'", expect=1_001)
    assert total == 1_001
    devices = cli(
        running.project,
        "sql",
        "SELECT DISTINCT device FROM events WHERE campaign = 'segment-python' AND event = 'signup'",
        "--format",
        "csv",
    )
    assert devices.splitlines()[1:] == ["mobile"]  # from context.userAgent
    assert query_total(running.project, "SELECT count() FROM events WHERE event = 'page_view' AND campaign = 'segment-python'") == 1


def test_retried_batches_and_repeated_insert_ids_count_once(server):
    running, write_key, _ = server
    batch = [message(i, properties={"campaign": "retry", "country": "FR"}) for i in range(300)]
    body = json.dumps({"batch": batch}).encode()
    first = post(f"{running.url}/v1/batch", body, write_key)
    again = post(f"{running.url}/v1/batch", gzip.compress(body), write_key, headers={"Content-Encoding": "gzip"})
    assert first == (200, {"success": True, "accepted": 300, "duplicates": 0})
    assert again == (200, {"success": True, "accepted": 0, "duplicates": 300})
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'retry'", expect=300) == 300


def test_keys_decide_who_may_ingest_and_who_may_read(server):
    running, write_key, read_key = server
    body = json.dumps({"batch": [message(1)]}).encode()
    assert post(f"{running.url}/v1/batch", body, None)[0] == 401
    assert post(f"{running.url}/v1/batch", body, "not-a-key")[0] == 401
    status, answer = post(f"{running.url}/v1/batch", body, read_key)
    assert status == 403 and "use a write key" in answer["error"]
    status, answer = post(f"{running.url}/v1/query", json.dumps({"metrics": ["revenue"]}).encode(), write_key)
    assert status == 403 and "cannot read" in answer["error"]


def test_a_batch_with_bad_events_keeps_the_good_ones_and_says_why(server):
    running, write_key, _ = server
    good = [message(i, properties={"campaign": "partial"}) for i in range(3)]
    bad = [
        {**message(0), "properties": {"revenue": "lots", "campaign": "partial"}},
        {**message(0), "timestamp": (datetime.now(UTC) - timedelta(days=5)).isoformat()},
        {**message(0), "shoeSize": 42},
    ]
    status, answer = post(
        f"{running.url}/v1/batch", json.dumps({"batch": [good[0], bad[0], good[1], bad[1], bad[2], good[2]]}).encode(), write_key
    )
    assert status == 400 and answer["accepted"] == 3
    assert [(r["index"], r["insert_id"], r["field"]) for r in answer["rejected"]] == [
        (1, bad[0]["messageId"], "properties.revenue"), (3, bad[1]["messageId"], "timestamp"), (4, bad[2]["messageId"], "shoeSize"),
    ]  # fmt: skip
    assert "expected a number, got 'lots'" in answer["rejected"][0]["reason"]
    assert query_total(running.project, "SELECT count() FROM events WHERE campaign = 'partial'", expect=3) == 3
