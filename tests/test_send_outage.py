"""The SDK through an outage (spill, wait, resume on its own) and `rta send`'s ids, against a small fake server."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from typer.testing import CliRunner

from rta.cli import app
from rta.sdk import Client
from tests.ingest_helpers import free_port
from tests.receivers import Loopback, sdk_body

pytestmark = pytest.mark.core


class Collector(Loopback):
    """Answers POST /v1/batch on a fixed port, keeping every message; ``cut`` answers break off mid-body first."""

    def __init__(self, port: int, *, cut: int = 0) -> None:
        self.messages: list[dict] = []
        self.cut = cut
        super().__init__(port)

    def post(self, request: BaseHTTPRequestHandler) -> None:
        body = sdk_body(request)
        if self.cut:
            self.cut -= 1
            request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{")  # then the connection closes
            request.close_connection = True
            return
        self.messages += json.loads(body)["batch"]
        request.send_response(200)
        request.send_header("content-length", "2")
        request.end_headers()
        request.wfile.write(b"{}")

    @property
    def ids(self) -> list[str]:
        return [m["messageId"] for m in self.messages]


def test_an_outage_spills_the_queue_and_the_client_resends_by_itself_when_the_server_is_back(tmp_path):
    port = free_port()
    client = Client("key", f"http://127.0.0.1:{port}", max_queue=200, batch_size=50, flush_interval=0.01, backoff=0.01,
                    max_backoff=0.05, max_retries=1, block=True, spill_dir=tmp_path / "spill")  # fmt: skip
    for i in range(3_000):  # 15 times the queue: it spills instead of dropping, and track() waits rather than drop
        client.track(f"u{i}", "click")
    assert client.flush(timeout=30)  # with the server away, flushed means on disk
    assert client.outage_since is not None and "refused" in client.last_error.lower()
    assert (client.dropped, client.pending, client.spilled) == (0, 3_000, 3_000)
    server = Collector(port)
    try:
        deadline = time.monotonic() + 30
        while client.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (client.pending, client.sent, client.dropped) == (0, 3_000, 0)
        assert client.outage_since is None and client.running
        assert len(server.ids) == len(set(server.ids)) == 3_000
        assert not list((tmp_path / "spill").glob("*.jsonl"))
    finally:
        client.close()
        server.close()


def test_an_answer_cut_off_midway_is_retried_and_does_not_stop_the_client():
    port = free_port()
    server = Collector(port, cut=2)
    client = Client("key", f"http://127.0.0.1:{port}", batch_size=100, flush_interval=0.01, backoff=0.01)
    try:
        for i in range(300):
            client.track(f"u{i}", "click")
        assert client.flush(timeout=30)
        assert client.running and (client.sent, client.dropped, client.pending) == (300, 0, 0)
        assert set(server.ids) == {m["messageId"] for m in server.messages} and len(set(server.ids)) == 300
    finally:
        client.close()
        server.close()


def test_rta_send_derives_the_same_ids_for_the_same_content_and_keeps_given_ones(tmp_path):
    port = free_port()
    server = Collector(port)
    lines = [
        {"event": "view", "timestamp": "2026-01-01T00:00:00Z", "user_id": "u1"},
        {"event": "view", "timestamp": "2026-01-01T00:00:00Z", "user_id": "u1"},  # the same again: another event
        {"event": "view", "timestamp": "2026-01-01T00:00:01Z", "user_id": "u2", "insert_id": "given"},
        {"type": "track", "event": "buy", "userId": "u3"},
    ]
    path, copy, other = tmp_path / "a.jsonl", tmp_path / "copy.jsonl", tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    copy.write_bytes(path.read_bytes())
    other.write_text("".join(json.dumps(line) + "\n" for line in lines[::-1]))
    runner = CliRunner()
    try:
        sent = []
        for file in (path, path, copy, other):
            server.messages.clear()
            result = runner.invoke(app, ["send", str(file), "--key", "k", "--host", f"http://127.0.0.1:{port}"])
            assert result.exit_code == 0, result.output
            assert "sent 4 events; dropped 0" in result.output
            sent.append(server.ids)
    finally:
        server.close()
    assert sent[0] == sent[1] == sent[2]  # sent twice, or a copy: the same ids
    assert len(set(sent[0])) == 4 and "given" in sent[0]
    assert set(sent[3]) & set(sent[0]) == {"given"}  # other content: other ids (but the one the line gave)


def test_rta_send_refuses_a_bad_max_wait(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n")
    result = CliRunner().invoke(app, ["send", str(path), "--key", "k", "--max-wait", "soon"])
    assert result.exit_code == 2 and "invalid --max-wait: got 'soon'" in result.output
