"""`rta serve ingest --workers N`: several processes on one port, one insert-id memory, their own log partitions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.ingest_helpers import cli, free_port, make_project, post, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]


def serve(project: Path, port: int, workers: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    command = [sys.executable, "-m", "rta.cli", "serve", "ingest", "-p", str(project), "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    said = []
    while not said or "processes are listening" not in said[-1]:  # every process of the group, not just the first
        said.append(process.stderr.readline() if process.stderr else "")
        assert process.poll() is None, "".join(said)
    assert socket.socket().connect_ex(("127.0.0.1", port)) == 0
    return process


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc, so no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def batches(count: int, size: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps({"batch": [
            {"type": "track", "event": "view", "userId": f"u{i}", "messageId": f"w{b}-{i}", "timestamp": now,
             "properties": {"country": "FR", "campaign": "workers"}}
            for i in range(size)
        ]}).encode()
        for b in range(count)
    ]  # fmt: skip


def send(port: int, key: str, bodies: list[bytes]) -> tuple[int, int]:
    """Accepted and duplicate events, each request on a new connection (the kernel picks its process)."""
    accepted = duplicates = 0
    for body in bodies:
        status, answer = post(f"http://127.0.0.1:{port}/v1/batch", body, key)
        assert status == 200, answer
        accepted, duplicates = accepted + answer["accepted"], duplicates + answer["duplicates"]
    return accepted, duplicates


def test_processes_share_one_insert_id_memory_and_the_flow_counts_each_event_once(tmp_path):
    project = make_project(tmp_path / "workers")
    with (project / "rta.toml").open("a") as toml:
        toml.write("[ingest]\npartitions = 2\n")
    key = cli(project, "keys", "create", "write")
    sent = batches(40, 50)
    port = free_port()
    group = serve(project, port, 2)
    shared = [p for p in Path("/dev/shm").glob("rta-insert-ids-*")] if Path("/dev/shm").is_dir() else []
    try:
        assert send(port, key, sent) == (2_000, 0)
        assert send(port, key, sent) == (0, 2_000)  # retries reach either process: both know every id
    finally:
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=60) == 0
    for part in ("p0", "p1"):  # both processes took requests, each appending to its own partition
        assert sum(f.stat().st_size for f in (project / ".rta" / "log" / "events" / part).glob("*.seg")) > 0
    assert not any(p.exists() for p in shared)  # the shared memory went with the group

    group = serve(project, port, 2)  # a new group rebuilds the memory from the log
    try:
        assert send(port, key, sent[:10]) == (0, 500)
    finally:
        group.send_signal(signal.SIGTERM)
        group.wait(timeout=60)
    running = start(project, "--no-collect")  # the flow reads both partitions
    try:
        assert query_total(project, "SELECT count() FROM events WHERE campaign = 'workers'", expect=2_000) == 2_000
    finally:
        running.stop()


def test_a_process_that_dies_stops_the_group(tmp_path):
    project = make_project(tmp_path / "dies")
    with (project / "rta.toml").open("a") as toml:
        toml.write("[ingest]\npartitions = 2\n")
    group = serve(project, free_port(), 2)
    children = children_of(group.pid)
    assert len(children) == 2
    os.kill(children[0], signal.SIGKILL)  # ids it was writing would stay in flight: the group restarts whole
    assert group.wait(timeout=60) != 0
    assert not any(Path(f"/proc/{child}").exists() for child in children)  # the other one was stopped and reaped


def test_more_processes_than_partitions_is_refused_with_the_setting_to_change(tmp_path):
    project = make_project(tmp_path / "few")
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    done = subprocess.run([sys.executable, "-m", "rta.cli", "serve", "ingest", "-p", str(project), "--workers", "3"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "3 collect API processes need at least 3 log partitions" in done.stderr
    assert "partitions = 3" in done.stderr


def test_the_shared_memory_leaves_a_small_tmpfs_for_the_project_folder(tmp_path, monkeypatch):
    from rta.ingest import workers
    from rta.ingest.dedup import InsertIdFilter, SharedTables, memory_bound

    assert memory_bound() >= 3 * 8 * 2**25  # the default bound: two generations of 50M ids, and a doubling
    monkeypatch.setattr(workers, "memory_bound", lambda: 2**62)  # more than any tmpfs holds
    assert workers._memory_folder(tmp_path) == tmp_path / ".rta"
    ids = InsertIdFilter(tables=SharedTables(tmp_path / ".rta" / "ids"))  # files on disk work the same
    ids.confirm(ids.claim(["a"]))
    assert ids.claim(["a", "b"]).fresh == [False, True]
