"""The notebooks run top to bottom on a fresh kernel against the embedded store, as a reader would run them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_module

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
pytestmark = [pytest.mark.store, pytest.mark.flow, pytest.mark.slow]


def test_every_notebook_is_tested_and_stored_without_outputs():
    import nbformat

    assert [p.stem for p in NOTEBOOKS] == ["alerts", "custom-queries", "dashboard", "quickstart"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in book.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbclient = require_module("nbclient")
    import nbformat

    monkeypatch.delenv("RTA_CLICKHOUSE_DSN", raising=False)  # the notebook's own project store
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env={**os.environ})
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # What it leaves where it ran is ignored by git where a reader runs it (notebooks/ of the checkout).
    left = sorted(f"notebooks/{p.relative_to(tmp_path)}" for p in tmp_path.rglob("*") if p.is_file())
    check = ["git", "check-ignore", "--no-index", "--stdin"]
    ignored = subprocess.run(check, input="\n".join(left), cwd=ROOT, capture_output=True, text=True)
    unignored = sorted(set(left) - set(ignored.stdout.splitlines()))
    assert left and unignored == [], f"running {path.name} leaves {unignored[:5]} in notebooks/, not ignored: add them to .gitignore"
    if path.stem == "dashboard":
        assert (tmp_path / "shop-report.html").stat().st_size > 500_000  # Vega inline
        assert len(list((tmp_path / "charts").glob("*.png"))) == 7  # four metric charts, the checkout funnel, retention and paths
