"""`rta alerts list | test | silence | history | backtest` in-process, on the embedded store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from rta import connect as rta_connect
from rta.alerts.engine import AlertEngine
from rta.alerts.notify import Notifier
from rta.alerts.ssrf import AllowList
from rta.cli import app
from tests.receivers import Hook

pytestmark = pytest.mark.store
runner = CliRunner()


@pytest.fixture
def hook():
    receiver = Hook()
    yield receiver
    receiver.close()


@pytest.fixture
def project(tmp_path, client, hook):
    root = tmp_path / "app"
    (root / "metrics").mkdir(parents=True)
    (root / "rta.toml").write_text('[alerts]\nallow_hosts = ["127.0.0.1"]\n')
    (root / "metrics" / "app.py").write_text(
        f"""
from rta import stream, metric, rollup, alert, count, col, webhook
events = stream("events", dimensions={{"event": str}})
errors = metric("errors", count(), where=col("event") == "error")
rollup("traffic", [errors], by=["event"], keep={{"1m": "7d"}})
alert("error spike", errors.over("1m") > 5, notify=webhook("{hook.url}"), description="too many errors")
"""
    )
    return root


def rta(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_list_test_silence(project, hook):
    listed = rta("alerts", "list", "-p", str(project), "--format", "json")
    (row,) = json.loads(listed.output)
    assert row["alert"] == "error spike" and row["condition"] == "errors over 1m > 5" and row["notify"] == f"webhook:{hook.url}"
    tested = rta("alerts", "test", "error spike", "-p", str(project))
    assert tested.exit_code == 0 and f"webhook:{hook.url}: delivered" in tested.output
    (note,) = hook.json()
    assert note["test"] is True and note["description"] == "too many errors"
    silenced = rta("alerts", "silence", "error spike", "--for", "2h", "-p", str(project))
    assert silenced.exit_code == 0 and "silenced until" in silenced.output
    assert json.loads(rta("alerts", "list", "-p", str(project), "--format", "json").output)[0]["silenced until"]
    unknown = runner.invoke(app, ["alerts", "silence", "error spkie", "-p", str(project)])
    assert unknown.exit_code == 2 and "did you mean 'error spike'" in unknown.output


def test_refused_targets_fail_at_load_with_the_reason(project):
    (project / "rta.toml").write_text("")
    refused = runner.invoke(app, ["alerts", "test", "error spike", "-p", str(project)])
    assert refused.exit_code == 2 and "refused: loopback address 127.0.0.1" in refused.output and "allow_hosts" in refused.output


def test_backtest_and_history(project):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    lines = [{"timestamp": (start + timedelta(minutes=10, seconds=i)).isoformat(), "event": "error"} for i in range(20)]
    events = project / "events.jsonl"
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert rta("load", str(events), "-p", str(project)).exit_code == 0
    result = rta("alerts", "backtest", "error spike", "--last", "1h", "-p", str(project), "--format", "json")
    told = [(row["status"], row["at"][:16]) for row in json.loads(result.stdout)]
    at = start + timedelta(minutes=11)
    assert told == [("firing", f"{at:%Y-%m-%dT%H:%M}"), ("resolved", f"{at + timedelta(minutes=1):%Y-%m-%dT%H:%M}")]
    assert "Backtest('error spike': 60 evaluations, 1 firing notifications)" in result.stderr

    ws = rta_connect(project)
    engine = AlertEngine(ws, notifier=Notifier(allow=AllowList.parse(["127.0.0.1"])), clock=lambda: start + timedelta(minutes=9))
    for minute in (13, 14):  # no newer events: windows close on the wall clock, 2 minutes late
        engine.run_once(start + timedelta(minutes=minute))
    engine.close()
    history = json.loads(rta("alerts", "history", "-p", str(project), "--format", "json").stdout)
    kinds = pl.DataFrame(history).group_by("kind", "status").len().sort("kind", "status").rows()
    assert kinds == [
        ("evaluation", "firing", 1),
        ("evaluation", "normal", 2),
        ("notification", "firing", 1),
        ("notification", "resolved", 1),
    ]
    only = json.loads(rta("alerts", "history", "--notifications", "--rule", "error spike", "-p", str(project), "--format", "json").stdout)
    assert {row["detail"].split(":")[0] for row in only} == {"sent"}
