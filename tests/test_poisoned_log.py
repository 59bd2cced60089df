"""Nothing in the log can stop the service: damaged frames and unreadable lines are set aside, the rest flows.

``rta run`` over a log holding what an earlier version or a damaged disk could leave: lines
the flow cannot parse (a pretty-printed body written as it came, as the API once did), a frame
whose bytes no longer match its checksum, and a torn end. It starts, counts every readable
event once, moves the rest to ``quarantine.jsonl`` with reasons, counts them ``quarantined`` in
``rta_ingest_stats`` and says so on its live line.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from rta.contract.log_format import HEADER
from rta.ingest.log import EventLog
from tests.ingest_helpers import cli, make_project, post, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]


def _line(i: int, campaign: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps({"type": "track", "event": "buy", "userId": "u", "messageId": f"{campaign}-{i}", "timestamp": now,
                       "properties": {"campaign": campaign, "revenue": 1}}).encode()  # fmt: skip


def test_rta_run_starts_over_a_poisoned_log_and_sets_aside_what_it_cannot_read(tmp_path):
    project = make_project(tmp_path / "app")
    folder = project / ".rta" / "log" / "events"
    log = EventLog(folder, group_seconds=0.01)
    good = [log.submit(0, b"".join(_line(i, "good") + b"\n" for i in range(k, k + 10))) for k in (0, 10)]
    pretty = json.dumps(json.loads(_line(0, "pretty")), indent=2).encode() + b"\n"  # an earlier version wrote bodies as they came
    mixed = log.submit(0, _line(20, "good") + b"\n" + pretty + _line(21, "good") + b"\n")
    damaged = log.submit(0, b"".join(_line(i, "damaged") + b"\n" for i in range(5)))
    after = log.submit(0, b"".join(_line(i, "good") + b"\n" for i in range(22, 32)))
    for future in (*good, mixed, damaged, after):
        future.result()
    log.close()
    segment = next((folder / "p0").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[damaged.result() + HEADER.size + 40] ^= 0xFF  # a flipped bit on disk
    data += HEADER.pack(1000, 0, 0, 0) + b"torn"  # a frame cut short by a crash
    segment.write_bytes(bytes(data))

    running = start(project)
    try:
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'good'", expect=32) == 32
        stats = "SELECT sum(events) FROM rta_ingest_stats WHERE outcome = 'quarantined'"
        assert query_total(project, stats, expect=pretty.count(b"\n") + 5, timeout=30) == pretty.count(b"\n") + 5
        assert query_total(project, "SELECT count() FROM events WHERE campaign != 'good'") == 0
        key = cli(project, "keys", "create", "write")
        status, answer = post(f"{running.url}/v1/batch", json.dumps({"batch": [json.loads(_line(99, "good"))]}, indent=2).encode(), key)
        assert (status, answer["accepted"]) == (200, 1)
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'good'", expect=33) == 33
        time.sleep(1.5)  # a live line or two
    finally:
        running.stop()
    records = [json.loads(line) for line in (folder / "p0" / "quarantine.jsonl").read_text().splitlines()]
    reasons = {r["reason"].split(":")[0] for r in records}
    assert any("checksum" in r for r in reasons) and len(records) == pretty.count(b"\n") + 1
    assert list((folder / "p0" / "torn").iterdir())  # the torn end, moved aside when the writer opened the partition
    assert "quarantined" in (project / "run.log").read_text()
    assert "Traceback" not in running.log()

    restarted = start(project)  # and again: the quarantined frames are behind the flow, the torn end is gone
    try:
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'good'") == 33
    finally:
        restarted.stop()


def test_a_pretty_printed_body_is_counted_and_rta_run_restarts(tmp_path):
    project = make_project(tmp_path / "app")
    key = cli(project, "keys", "create", "write")
    body = {"batch": [{"type": "track", "event": "purchase", "userId": "u1", "messageId": "pp-1",
                       "properties": {"country": "FR", "revenue": 1}}]}  # fmt: skip
    running = start(project)
    try:
        for text in (json.dumps(body, indent=2), json.dumps(body, indent=2).replace("\n", "\r\n").replace("pp-1", "pp-2")):
            assert post(f"{running.url}/v1/batch", text.encode(), key) == (200, {"success": True, "accepted": 1, "duplicates": 0})
        assert query_total(project, "SELECT count() FROM events WHERE country = 'FR'", expect=2) == 2
    finally:
        running.stop()
    again = start(project)  # the insert-id memory is rebuilt from the log: it must start, and still know pp-1
    try:
        assert post(f"{again.url}/v1/batch", json.dumps(body).encode(), key)[1]["duplicates"] == 1
        assert query_total(project, "SELECT count() FROM events WHERE country = 'FR'") == 2
        assert query_total(project, "SELECT sum(events) FROM rta_ingest_stats WHERE outcome != 'accepted'") == 0
    finally:
        again.stop()
