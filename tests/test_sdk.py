"""The Python SDK against a server that fails, stalls, throttles and refuses."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from rta.sdk import Client
from tests.receivers import Loopback, sdk_body

pytestmark = pytest.mark.core


class Flaky(Loopback):
    """Answers POST /v1/batch from a script of (status, headers, delay); then 200. Keeps every message id it accepted."""

    def __init__(self, script: list[tuple[int, dict[str, str], float]]) -> None:
        self.script = list(script)
        self.accepted: list[str] = []
        self.attempts = 0
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"

    def post(self, request: BaseHTTPRequestHandler) -> None:
        body = sdk_body(request)
        self.attempts += 1
        status, headers, delay = self.script.pop(0) if self.script else (200, {}, 0.0)
        time.sleep(delay)
        if status == 200:
            self.accepted += [m["messageId"] for m in json.loads(body)["batch"]]
        reply = json.dumps({"rejected": [{"index": 0, "reason": "bad"}]} if status == 400 else {}).encode()
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("content-length", str(len(reply)))
        request.end_headers()
        request.wfile.write(reply)


def test_failures_timeouts_and_throttling_are_retried_without_duplicates():
    server = Flaky([(500, {}, 0), (503, {}, 0), (429, {"Retry-After": "0.2"}, 0), (200, {}, 0.6), (408, {}, 0)])
    client = Client("key", server.url, batch_size=50, flush_interval=0.01, backoff=0.01, timeout=0.3)
    for i in range(200):
        client.track(f"u{i}", "click", {"n": i})
    assert client.flush(timeout=30)
    client.close()
    server.close()
    # The stalled 200 timed out on the client and was sent again: the server saw it twice, with the same ids.
    assert len(set(server.accepted)) == 200 and len(server.accepted) == 250
    assert (client.sent, client.dropped) == (200, 0)


def test_client_errors_are_not_retried_and_count_as_dropped():
    server = Flaky([(400, {}, 0), (413, {}, 0)])
    client = Client("key", server.url, batch_size=10, flush_interval=0.01, backoff=0.01)
    for i in range(30):
        client.track(f"u{i}", "click")
    client.flush(timeout=10)
    client.close()
    server.close()
    assert server.attempts == 3  # one each: 400 (1 of 10 rejected), 413 (all 10), then 200
    assert client.dropped == 11 and client.sent == 19 and client.rejected[0]["reason"] == "bad"


def test_the_queue_is_bounded_and_an_outage_spills_to_disk(tmp_path):
    client = Client("key", "http://127.0.0.1:9", max_queue=100, batch_size=50, flush_interval=0.01, backoff=0.01, max_retries=2,
                    spill_dir=tmp_path / "spill")  # fmt: skip
    for i in range(1_000):
        client.track(f"u{i}", "click")
    # Nothing drains while every send fails, so memory stays bounded: most of the 1,000 are dropped (a batch
    # spills only after >= 30 ms of retries; the margin is for a loaded machine, where this once saw 800s).
    assert client.dropped >= 500
    client.close(timeout=10)
    spilled = [json.loads(line) for path in (tmp_path / "spill").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(spilled) == 1_000 - client.dropped
    server = Flaky([])
    again = Client("key", server.url, spill_dir=tmp_path / "spill", flush_interval=0.01)
    again.close()
    server.close()
    assert sorted(server.accepted) == sorted(m["messageId"] for m in spilled)
    assert not list((tmp_path / "spill").glob("*.jsonl"))


def test_a_message_needs_someone():
    with pytest.raises(ValueError, match="user id or anonymous_id"):
        Client("key", start=False).track(None, "click")
