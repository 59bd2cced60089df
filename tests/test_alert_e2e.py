"""Alerts end to end: events flow through `rta run`; real loopback receivers get the notifications."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.receivers import Hook, Smtp

pytestmark = [pytest.mark.store, pytest.mark.flow]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_second(low: int, high: int) -> None:
    """Wait until the wall clock's second is in [low, high]: tests that cross minute boundaries stay exact."""
    while not low <= datetime.now(UTC).second <= high:
        time.sleep(0.2)


def start_run(project: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    cmd = [sys.executable, "-m", "rta.cli", "run", "-p", str(project), "--port", str(port), *args]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=(project / "run.log").open("w"), text=True, env=env)
    run_file = project / ".rta" / "run.json"
    deadline = time.monotonic() + 60
    while not run_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"rta run did not start: {(project / 'run.log').read_text()}")
        time.sleep(0.1)
    return process, port


def stop_run(process: subprocess.Popen[str], project: Path) -> str:
    """Stop it; what it said on stderr, progress lines left out."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    lines = (project / "run.log").read_text().replace("\r", "\n").splitlines()
    return "\n".join(line for line in lines if not line.startswith("in "))


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    return subprocess.run([sys.executable, "-m", "rta.cli", *args, "-p", str(project)], capture_output=True, text=True, env=env, timeout=60)


def test_a_breach_notifies_once_then_recovers_by_webhook_and_email(tmp_path):
    hook, smtp = Hook(), Smtp()
    project = tmp_path / "app"
    (project / "metrics").mkdir(parents=True)
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[alerts]\nallow_hosts = ["127.0.0.1"]\n')
    (project / "metrics" / "app.py").write_text(
        f"""
from rta import stream, metric, rollup, alert, count, col, webhook, email
events = stream("events", dimensions={{"event": str, "country": str}})
errors = metric("errors", count(), where=col("event") == "error")
views = metric("views", count(), where=col("event") == "view")
rollup("traffic", [errors, views], by=["event", "country"], keep={{"1m": "7d"}})
alert("error spike", errors.over("1m") > 50, by="country",
      notify=[webhook("{hook.url}", secret="hush"), email("oncall@example.com", smtp="{smtp.url}")])
"""
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    wait_for_second(5, 40)
    process, _ = start_run(project, "--watch", str(inbox))
    try:
        wait_for_second(12, 50)  # the newest event then closes the current minute's predecessor
        now = datetime.now(UTC)
        breach_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=2)

        def event(at: datetime, name: str, country: str) -> dict[str, str]:
            return {"timestamp": at.isoformat(), "event": name, "country": country}

        lines = [event(breach_minute + timedelta(seconds=i % 60), "error", "FR") for i in range(80)]
        lines += [event(breach_minute + timedelta(minutes=1, seconds=i), "error", "FR") for i in range(3)]
        lines += [event(now - timedelta(seconds=1), "view", "DE")]  # moves the watermark to now
        staged = inbox / "batch.tmp"
        staged.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        dropped = time.time()
        staged.rename(inbox / "batch.jsonl")
        hook.wait(lambda notes: len(notes) >= 2, timeout=30)
        latency = hook.requests[0]["t"] - dropped
        print(f"\nalert latency, events ingested -> webhook received: {latency:.2f}s")
        time.sleep(2.5)  # nothing more may come
        got = hook.json()
        assert [(n["status"], n["groups"]) for n in got] == [
            ("firing", [{"group": {"country": "FR"}, "value": 80.0}]),
            ("resolved", [{"group": {"country": "FR"}, "value": 3.0}]),
        ]
        assert got[0]["at"] == (breach_minute + timedelta(minutes=1)).isoformat()
        assert "x-rta-signature" in hook.requests[0]["headers"]
        deadline = time.monotonic() + 10
        while len(smtp.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [m["Subject"].split(":")[0] for m in smtp.messages] == ["[rta] FIRING", "[rta] RESOLVED"]
        history = cli(project, "alerts", "history", "--notifications", "--format", "json")
        assert history.returncode == 0, history.stderr
        outcomes = {(row["status"], row["channel"], row["detail"].split(":")[0]) for row in json.loads(history.stdout)}
        assert ("firing", f"webhook:{hook.url}", "sent") in outcomes and ("resolved", "mailto:oncall@example.com", "sent") in outcomes
        assert latency < 5
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nrta run said:\n{stop_run(process, project)}") from None
    finally:
        err = stop_run(process, project)
        hook.close()
        smtp.close()
    assert "evaluating 1 alert rule(s)" in err


@pytest.mark.slow
def test_no_events_fires_when_the_demo_generator_stops(tmp_path):
    hook = Hook()
    project = tmp_path / "shop"
    (project / "metrics").mkdir(parents=True)
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[alerts]\nallow_hosts = ["127.0.0.1"]\n')
    shop = (ROOT / "metrics" / "shop.py").read_text()
    rule = f'alert("demo stopped", no_events(events, "1m"), notify=webhook("{hook.url}"))'
    (project / "metrics" / "shop.py").write_text(f"{shop}\nfrom rta import alert, no_events, webhook\n{rule}\n")
    wait_for_second(10, 40)
    process, _ = start_run(project, "--demo", "--rate", "500", "--demo-for", "3")
    stopped = time.time() + 3
    try:
        got = hook.wait(lambda notes: any(n["status"] == "firing" for n in notes), timeout=150)
        firing = [n for n in got if n["status"] == "firing"]
        assert len(firing) == 1 and firing[0]["alert"] == "demo stopped"
        assert datetime.fromisoformat(firing[0]["at"]).timestamp() >= stopped  # judged on a window after the demo stopped
        print(f"\nno-traffic alert received {hook.requests[0]['t'] - stopped:.0f}s after the demo stopped")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nrta run said:\n{stop_run(process, project)}") from None
    finally:
        stop_run(process, project)
        hook.close()
