"""A running `rta run` for ingest tests: its project, URL, keys; stopped by PID. And the loopback socket helpers tests share."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

METRICS = """
from rta import stream, metric, rollup, count, total, distinct, col
events = stream("events", dimensions={"event": str, "country": str, "device": str, "campaign": str},
                measures={"revenue": float}, user="user_id", insert_id="insert_id", keep_raw="30d")
events_n = metric("events_n", count())
revenue = metric("revenue", total("revenue"))
rollup("traffic", [events_n, revenue], by=["event", "country", "device", "campaign"], keep={"1m": "7d", "1h": "90d"})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_to_close(conn: socket.socket, *, close_write: bool) -> tuple[bytes, bool]:
    """What the server sends on ``conn`` until it closes (after shutting our side when ``close_write``),
    and whether it fell silent (the socket's timeout) instead; a reset ends the reading too."""
    if close_write:
        conn.shutdown(socket.SHUT_WR)
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except TimeoutError:
        return received, True
    except ConnectionResetError:
        pass
    return received, False


def make_project(root: Path) -> Path:
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    (root / "metrics" / "app.py").write_text(METRICS)
    return root


def cli(project: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    done = subprocess.run(
        [sys.executable, "-m", "rta.cli", *args, "-p", str(project)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Running:
    project: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=60)

    def log(self) -> str:
        text = (self.project / "run.log").read_text().replace("\r", "\n")
        return "\n".join(line for line in text.splitlines() if not line.startswith("in "))


def start(project: Path, *args: str, port: int | None = None, extra_env: dict[str, str] | None = None) -> Running:
    port = port or free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}, **(extra_env or {})}
    log = (project / "run.log").open("a")
    cmd = [sys.executable, "-m", "rta.cli", "run", "-p", str(project), "--port", str(port), *args]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    running = Running(project, port, process)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{running.url}/v1/health", timeout=1):
                return running
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                raise AssertionError(f"rta run did not start:\n{running.log()}") from None
            time.sleep(0.1)


def post(url: str, body: bytes, key: str | None, *, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    import base64

    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    request = urllib.request.Request(url, data=body, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"raw": raw.decode("utf-8", "replace")}


def query_total(project: Path, sql: str, *, expect: int | None = None, timeout: float = 30.0) -> int:
    """A number from the running process's SQL console, waiting until it equals ``expect``."""
    deadline = time.monotonic() + timeout
    while True:
        value = int(cli(project, "sql", sql, "--format", "csv").splitlines()[1] or 0)
        if expect is None or value == expect or time.monotonic() > deadline:
            return value
        time.sleep(0.3)
