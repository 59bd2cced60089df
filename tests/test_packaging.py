"""The package lists every subpackage, and the examples in metrics/ ship as ``rta.examples``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


@pytest.mark.core
def test_every_subpackage_is_declared() -> None:
    found = set(find_packages(str(ROOT), include=["rta*"]))
    missing = found - _declared()
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.core
def test_the_examples_are_the_metrics_folder() -> None:
    shipped = resources.files("rta.examples")
    for name in ("shop.py", "web.py"):
        assert shipped.joinpath(name).read_text() == (ROOT / "metrics" / name).read_text()


@pytest.mark.slow
def test_the_wheel_holds_the_examples_and_the_static_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("rta-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"rta/examples/shop.py", "rta/examples/web.py", "rta/ingest/static/rta.js"} <= names
    packages = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert packages == _declared()
