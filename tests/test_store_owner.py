"""Two processes, one embedded store: a notebook kernel holds it, a second kernel and the CLI ask it.

Each side runs in its own process (chdb allows one data dir per process and one process per
data dir), as two JupyterLab kernels would: no engine text is printed, the answers agree, and
once the holder is killed the next process opens the store itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.flow]

ASK = """
import json, sys
import rta
ws = rta.connect(sys.argv[1])
frame = ws.query(["page_views", "visitors"], last="2d", grain="total", by="device", now=None)
rows = frame.drop("final").sort("device").to_dicts()
print(json.dumps({"kind": type(ws).__name__, "rows": rows, "events": ws.events.last("2d").agg(n=rta.count()).collect()["n"][0]}))
"""
HOLD = """
import json, sys, time
import rta
ws = rta.connect(sys.argv[1], serve=True)
ws.load_demo(3_000, days=1)
frame = ws.query(["page_views", "visitors"], last="2d", grain="total", by="device")
print(json.dumps({"rows": frame.drop("final").sort("device").to_dicts()}), flush=True)
time.sleep(600)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}


def _python(code: str, project: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", textwrap.dedent(code), str(project)]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)


def _quiet(*outputs: str) -> None:
    for text in outputs:
        assert "DB::Exception" not in text and "Cannot lock file" not in text, text


def test_a_second_kernel_and_the_cli_ask_the_kernel_that_holds_the_store(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "metrics").mkdir(parents=True)
    shutil.copy(ROOT / "metrics" / "shop.py", project / "metrics" / "shop.py")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(project)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env())  # fmt: skip
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line, holder.stderr.read() if holder.stderr else "the holder printed nothing"
        held = json.loads(line)["rows"]
        published = json.loads((project / ".rta" / "run.json").read_text())
        assert published["kind"] == "notebook" and published["pid"] == holder.pid

        second = _python(ASK, project)
        assert second.returncode == 0, second.stderr
        _quiet(second.stdout, second.stderr)
        answer = json.loads(second.stdout)
        assert answer["kind"] == "RemoteWorkspace" and answer["rows"] == held and answer["events"] > 0

        cli = subprocess.run([sys.executable, "-m", "rta.cli", "query", "page_views", "-p", str(project), "--last", "2d", "--total",
                              "--format", "json"], capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        _quiet(cli.stdout, cli.stderr)
        assert json.loads(cli.stdout)[0]["page_views"] == sum(r["page_views"] for r in held)
    finally:
        holder.send_signal(signal.SIGKILL)  # as a crashed kernel: no cleanup runs
        holder.wait(timeout=30)

    after = _python(ASK, project)  # the run file names a dead process: the store is opened directly
    assert after.returncode == 0, after.stderr
    _quiet(after.stdout, after.stderr)
    reopened = json.loads(after.stdout)
    assert reopened["kind"] == "Workspace" and reopened["rows"] == held


def test_a_holder_that_serves_no_one_gets_one_clear_sentence(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "metrics").mkdir(parents=True)
    shutil.copy(ROOT / "metrics" / "shop.py", project / "metrics" / "shop.py")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n')
    code = HOLD.replace("serve=True", "serve=False")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(project)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        refused = _python(ASK, project)
        assert refused.returncode != 0
        _quiet(refused.stdout, refused.stderr)
        assert f"is open in another process (pid {holder.pid}" in refused.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
