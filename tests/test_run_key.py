"""The read key `rta run` publishes ends with the run, and a crashed run's key is revoked by the next one."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time

import pytest

from rta.contract.keys import KeyStore, run_key
from tests.ingest_helpers import cli, free_port, make_project, post, start


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.mark.core
def test_a_run_alone_revokes_every_run_key_left_behind_whatever_their_pids_became(tmp_path):
    keys = KeyStore(tmp_path)
    mine, _ = keys.create("read", "dashboards")
    crashed, secret = keys.create("read", f"rta run (pid {_dead_pid()})")
    reused, _ = keys.create("read", "rta run (pid 1)")  # the crashed run's pid now belongs to another process
    older, _ = keys.create("read", "rta run (this process)")  # named by an earlier rta
    published = tmp_path / ".rta" / "run.json"
    published.write_text(json.dumps({"pid": 1, "url": "http://127.0.0.1:1", "key": secret}))
    with run_key(keys, published) as (key, fresh):
        revoked = {k.id for k in keys.list() if k.revoked}
        assert revoked == {crashed.id, reused.id, older.id}
        assert keys.check(fresh) == key and key.name.startswith("rta run (pid ")
    assert keys.check(fresh) is None  # ended with the run
    assert keys.check(secret) is None and not next(k for k in keys.list() if k.id == mine.id).revoked


@pytest.mark.core
def test_beside_a_live_run_only_keys_of_dead_processes_are_revoked(tmp_path):
    keys = KeyStore(tmp_path)
    lock = tmp_path / ".rta" / "run.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a") as other_run:  # another run (on a ClickHouse server) holds the lock
        fcntl.flock(other_run, fcntl.LOCK_SH)
        live, _ = keys.create("read", "rta run (pid 1)")
        dead, _ = keys.create("read", f"rta run (pid {_dead_pid()})")
        older, secret = keys.create("read", "rta run (this process)")
        published = tmp_path / ".rta" / "run.json"
        published.write_text(json.dumps({"pid": _dead_pid(), "url": "http://127.0.0.1:1", "key": secret}))
        with run_key(keys, published):
            revoked = {k.id for k in keys.list() if k.revoked}
    assert revoked == {dead.id, older.id}  # the one the dead run published, too; the live run's key still works
    assert live.id not in revoked


def _published(run_file, *, other_than: str = "") -> str:
    """The key the run wrote in run.json (it answers health checks a moment before writing it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        key = json.loads(run_file.read_text())["key"] if run_file.exists() else ""
        if key and key != other_than:
            return key
        time.sleep(0.05)
    raise AssertionError(f"no new key in {run_file}")


def _opens_sql(url: str, key: str) -> int:
    return post(f"{url}/v1/sql", json.dumps({"sql": "SELECT 1 AS one"}).encode(), None, headers={"Authorization": f"Bearer {key}"})[0]


@pytest.mark.slow
@pytest.mark.store
@pytest.mark.flow
def test_the_key_of_a_run_killed_with_sigkill_stops_working_when_the_next_run_starts(tmp_path):
    project = make_project(tmp_path / "app")
    run_file = project / ".rta" / "run.json"
    port = free_port()
    running = start(project, port=port)
    first = _published(run_file)
    assert _opens_sql(running.url, first) == 200
    running.stop(kill=True)
    assert run_file.exists()  # left behind, with its key
    running = start(project, port=port)
    try:
        second = _published(run_file, other_than=first)
        assert _opens_sql(running.url, first) == 401
        assert _opens_sql(running.url, second) == 200
    finally:
        running.stop(kill=True)
    run_file.unlink()  # even without run.json (deleted, or the run died before writing it), the next run revokes it
    running = start(project, port=port)
    try:
        assert _opens_sql(running.url, second) == 401
        assert _opens_sql(running.url, _published(run_file)) == 200
    finally:
        running.stop()
    listing = cli(project, "keys", "list")
    assert listing.count("rta run (pid") == 3 and "active" not in listing  # all three ended
