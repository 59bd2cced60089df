"""kill -9, many times: nothing acknowledged is lost, nothing is counted twice."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from rta.ingest.log import EventLog
from tests.ingest_helpers import cli, free_port, make_project, post, query_total, start

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.flow]
COUNTRIES = ["FR", "DE", "US", "BR", "JP", "IN", "GB", "ES"]


def test_the_flow_killed_ten_times_while_a_million_events_stream_from_the_log_counts_each_once(tmp_path):
    project = make_project(tmp_path / "app")
    rng = np.random.default_rng(5)
    n = 1_000_000
    now = datetime.now(UTC)
    frame = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                now - timedelta(days=2), now - timedelta(minutes=1), interval=timedelta(milliseconds=172), eager=True, time_zone="UTC"
            )[:n].dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            "event": rng.choice(["view", "click", "purchase"], n),
            "country": rng.choice(COUNTRIES, n),
            "user_id": [f"u{i % 5000}" for i in range(n)],
            "insert_id": [f"e{i}" for i in range(n)],
            "revenue": rng.integers(0, 100, n).astype(float),
        }
    )
    assert frame.height == n
    log = EventLog(project / ".rta" / "log" / "events", group_seconds=0.05)
    lines = frame.write_ndjson().encode().splitlines(keepends=True)
    for i in range(0, n, 5_000):  # frames of 5,000 events, as the collect API would have written them
        log.submit(0, b"".join(lines[i : i + 5_000])).result()
        if i % 50_000 == 0:
            time.sleep(0.06)  # let groups close now and then
    log.close()

    port = free_port()
    kills = 0
    rnd = random.Random(3)
    while kills < 10:
        running = start(project, port=port)
        time.sleep(rnd.uniform(0.2, 3.0))  # mid-batch, mid-insert, mid-snapshot: wherever it is
        running.stop(kill=True)
        kills += 1
    running = start(project, port=port)
    try:
        assert query_total(project, "SELECT count() FROM events", expect=n, timeout=300) == n
        # Raw events and rollups are written side by side (two writers): wait for the rollup too.
        assert query_total(project, "SELECT sum(events_n__n) FROM traffic_1h", expect=n, timeout=120) == n
        got = cli(
            project,
            "sql",
            "SELECT country, sum(events_n__n) AS n, sum(revenue__sum) AS r FROM traffic_1h GROUP BY country ORDER BY country",
            "--format",
            "json",
        )
    finally:
        running.stop()
    want = frame.group_by("country").agg(pl.len().alias("n"), pl.col("revenue").sum().alias("r")).sort("country")
    assert [(r["country"], r["n"], r["r"]) for r in json.loads(got)] == want.rows()


def test_the_api_killed_right_after_answering_loses_no_acknowledged_event_and_counts_retries_once(tmp_path):
    project = make_project(tmp_path / "app")
    key = cli(project, "keys", "create", "write")
    port = free_port()
    batches: dict[int, bytes] = {}
    now = datetime.now(UTC)
    for b in range(400):
        batch = [
            {
                "type": "track",
                "event": "view",
                "userId": f"u{i}",
                "messageId": f"b{b}-{i}",
                "timestamp": now.isoformat(),
                "properties": {"country": "FR"},
            }
            for i in range(100)
        ]
        batches[b] = json.dumps({"batch": batch}).encode()
    acked: set[int] = set()
    rnd = random.Random(11)
    for _ in range(8):
        running = start(project, port=port)
        stop = threading.Event()

        def sender(worker: int, running=running, stop=stop) -> None:  # noqa: ANN001
            for b in range(worker, 400, 3):
                if stop.is_set():
                    return
                if b in acked:
                    continue
                try:
                    status, _ = post(f"{running.url}/v1/batch", batches[b], key)
                except (urllib.error.URLError, OSError):
                    return  # the server died mid-request: the batch will be sent again
                if status == 200:
                    acked.add(b)

        threads = [threading.Thread(target=sender, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.3, 2.0))
        running.stop(kill=True)  # right after some responses, maybe mid-write
        stop.set()
        for t in threads:
            t.join()
    running = start(project, port=port)
    try:
        for b in range(400):  # what was never acknowledged is sent again, like an SDK retries
            if b not in acked:
                assert post(f"{running.url}/v1/batch", batches[b], key)[0] == 200
        total = query_total(project, "SELECT count() FROM events", expect=40_000, timeout=120)
        distinct = query_total(project, "SELECT uniqExact(insert_id) FROM events")
    finally:
        running.stop()
    assert (total, distinct) == (40_000, 40_000)


def test_a_two_process_cluster_shares_the_log_partitions_and_counts_exactly(tmp_path):
    project = make_project(tmp_path / "app")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\npartitions = 4\n')
    now = datetime.now(UTC)
    log = EventLog(project / ".rta" / "log" / "events", partitions=4, group_seconds=0.01)
    for i in range(200):
        lines = [
            json.dumps(
                {
                    "timestamp": (now - timedelta(seconds=i)).isoformat(),
                    "event": "view",
                    "country": COUNTRIES[i % 8],
                    "insert_id": f"c{i}-{j}",
                }
            )
            for j in range(500)
        ]
        log.submit(i % 4, ("\n".join(lines) + "\n").encode()).result()
    time.sleep(0.05)
    log.close()
    running = start(project, "--processes", "2")
    try:
        assert query_total(project, "SELECT count() FROM events", expect=100_000, timeout=120) == 100_000
    finally:
        running.stop()
    worker = [line for line in running.log().splitlines() if line.startswith("rta flow worker 1:")]
    assert worker and "events read 0 " not in worker[0], running.log()  # the second process read its share
