"""Opening the notebooks as the README says: JupyterLab comes with the dev extra, serves them, and a
notebook run again on its store adds nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_module


@pytest.mark.core
def test_the_dev_extra_brings_jupyterlab_and_the_readme_says_how_to_open_the_notebooks():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["notebook"])
    assert "rta[notebook]" in extras["dev"]
    readme = (ROOT / "README.md").read_text()
    assert "jupyter lab notebooks/" in readme and "pip install -e '.[notebook]'" in readme


@pytest.mark.slow
def test_jupyterlab_serves_the_notebooks_on_loopback():
    require_module("jupyterlab")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "rta-test"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT / 'notebooks'}"]  # fmt: skip
    lab = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, listing = time.monotonic() + 60, None
        while listing is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=5) as answer:
                    listing = json.load(answer)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 60 s"
        names = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
        assert names == {"alerts.ipynb", "custom-queries.ipynb", "dashboard.ipynb", "quickstart.ipynb"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
    finally:
        lab.terminate()
        lab.wait(timeout=30)


@pytest.mark.store
@pytest.mark.flow
@pytest.mark.slow
def test_a_notebook_run_again_on_its_store_adds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbclient = require_module("nbclient")
    import nbformat

    monkeypatch.delenv("RTA_CLICKHOUSE_DSN", raising=False)  # the notebook's own project store
    shutil.copy(ROOT / "notebooks" / "custom-queries.ipynb", tmp_path)
    printed = []
    for _ in range(2):  # a fresh kernel each time, as after a restart in Lab
        book = nbformat.read(tmp_path / "custom-queries.ipynb", as_version=4)
        nbclient.NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
            env={**os.environ}
        )
        printed.append("".join(o.get("text", "") for o in book.cells[1].outputs))
    first, again = printed
    assert "outcomes: accepted" in first and "load_demo" in book.cells[1].source
    loaded = int(first.split("events read ")[1].split(" ")[0].replace(",", ""))
    read = int(again.split("events read ")[1].split(" ")[0].replace(",", ""))
    assert loaded > 100_000 and "demo events loaded before" in again, again
    assert read <= 60, again  # only the minutes since the first run (~5 events a minute); was: the whole demo again
