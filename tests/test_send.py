"""`rta send FILE` through kill -9 of the server: it waits, resumes, and every event counts once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ingest_helpers import cli, free_port, make_project, query_total, start

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.flow]
COUNTRIES = ["FR", "DE", "US", "BR"]


def _events(path: Path, n: int) -> None:
    """``n`` events, two in three without an id: flat events and Segment messages."""
    now = datetime.now(UTC)
    with path.open("w") as out:
        for i in range(n):
            stamp, user, country = (now - timedelta(seconds=i % 3600)).isoformat(), f"u{i % 500}", COUNTRIES[i % 4]
            if i % 3 == 0:
                line = {"event": "view", "timestamp": stamp, "user_id": user, "insert_id": f"given-{i}", "country": country}
            elif i % 3 == 1:
                line = {"event": "view", "timestamp": stamp, "user_id": user, "country": country, "revenue": 1.0}
            else:
                line = {"type": "track", "event": "buy", "userId": user, "timestamp": stamp, "properties": {"country": "JP"}}
            out.write(json.dumps(line) + "\n")


def _send(path: Path, key: str, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    command = [sys.executable, "-m", "rta.cli", "send", str(path), "--key", key, "--host", url, *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def test_send_waits_out_two_kills_of_the_server_and_counts_each_event_once(tmp_path):
    project = make_project(tmp_path / "app")
    key = cli(project, "keys", "create", "write")
    path = tmp_path / "events.jsonl"
    n = 150_000
    _events(path, n)
    port = free_port()
    running = start(project, port=port)
    sender = _send(path, key, running.url, "--max-wait", "3m")
    try:
        for _ in range(2):
            time.sleep(1.5)  # mid-send: the file takes longer than both kills to go through
            assert sender.poll() is None, "the send ended before the server was killed"
            running.stop(kill=True)
            time.sleep(1.5)  # an outage, not a blip
            running = start(project, port=port)
        _, said = sender.communicate(timeout=600)
        assert sender.returncode == 0, said
        # It waited out the outages (under load a restart can outlast the next kill: then the sender sees one long outage).
        assert "has not answered" in said and "answers again" in said, said
        assert query_total(project, "SELECT count() FROM events", expect=n, timeout=180) == n
        assert query_total(project, "SELECT uniqExact(insert_id) FROM events") == n
        assert query_total(project, "SELECT toUInt64(sum(events_n__n)) FROM traffic_1h", expect=n, timeout=60) == n

        again = _send(path, key, running.url)
        _, said = again.communicate(timeout=600)
        assert again.returncode == 0, said
        copy = tmp_path / "copy.jsonl"  # the same content under another name: the same ids
        copy.write_bytes(path.read_bytes())
        marker = tmp_path / "marker.jsonl"
        last = {"event": "marker", "timestamp": datetime.now(UTC).isoformat(), "insert_id": "marker", "user_id": "u1"}
        marker.write_text(json.dumps(last) + "\n")
        for extra in (copy, marker):
            done = _send(extra, key, running.url)
            _, said = done.communicate(timeout=600)
            assert done.returncode == 0, said
        # The marker came after both: once it is counted, so is anything they added.
        assert query_total(project, "SELECT count() FROM events", expect=n + 1, timeout=120) == n + 1
        assert query_total(project, "SELECT toUInt64(sum(events_n__n)) FROM traffic_1h", expect=n + 1, timeout=60) == n + 1
    finally:
        if sender.poll() is None:
            sender.kill()
        running.stop()


def test_send_gives_up_after_max_wait_and_says_how_many_were_not_acknowledged(tmp_path):
    path = tmp_path / "events.jsonl"
    _events(path, 2_000)
    started = time.monotonic()
    sender = _send(path, "rta_write_x", f"http://127.0.0.1:{free_port()}", "--max-wait", "3s")
    _, said = sender.communicate(timeout=120)
    assert sender.returncode == 75, said
    assert "error: 2,000 events were not acknowledged" in said and "sending the same files again is safe" in said, said
    assert "has not answered for" in said and "giving up in" in said, said
    assert time.monotonic() - started < 60
