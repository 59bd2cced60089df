"""A project folder: ``rta.toml`` plus metric files, loaded into definitions and a plan."""

from __future__ import annotations

import os
import runpy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rta.compiler import Plan, compile
from rta.dsl.context import collecting
from rta.dsl.definitions import Definitions, definitions
from rta.errors import ConfigError, RtaError
from rta.store.client import resolve_dsn

CONFIG = "rta.toml"
DEFAULT_DSN = "chdb://data"


@dataclass(frozen=True)
class Project:
    """A loaded project: where it lives, its store, its definitions and compiled plan."""

    root: Path
    dsn: str
    metric_files: tuple[Path, ...]
    definitions: Definitions
    plan: Plan
    settings: dict[str, Any] = field(default_factory=dict)


def _read_config(root: Path) -> dict[str, Any]:
    path = root / CONFIG
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: invalid TOML: {err}"
        raise ConfigError(msg) from None


def _metric_files(root: Path, config: dict[str, Any]) -> tuple[Path, ...]:
    folders = config.get("metrics", {}).get("paths", ["metrics"])
    files: list[Path] = []
    for entry in folders:
        path = (root / entry).resolve()
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
    if not files:
        msg = f"no metric files in {root} (looked in {', '.join(folders)}); create one with `rta init {root}` or add metrics/*.py"
        raise ConfigError(msg)
    return tuple(files)


def load_definitions(files: tuple[Path, ...]) -> Definitions:
    """Execute metric files and gather what they define (assigned or not)."""
    with collecting() as items:
        for path in files:
            try:
                runpy.run_path(str(path), run_name=f"rta_metrics_{path.stem}")
            except RtaError as err:
                msg = f"{path}: {err}"
                raise type(err)(msg) from None
    return definitions(items)


def load_project(root: str | Path = ".") -> Project:
    """Load ``root``'s rta.toml and metric files; ``RTA_CLICKHOUSE_DSN`` overrides the store."""
    base = Path(root).resolve()
    if not base.is_dir():
        msg = f"project folder {str(root)!r} does not exist; create one with `rta init {root}`"
        raise ConfigError(msg)
    config = _read_config(base)
    files = _metric_files(base, config)
    defs = load_definitions(files)
    dsn = os.environ.get("RTA_CLICKHOUSE_DSN") or config.get("store", {}).get("dsn", DEFAULT_DSN)
    return Project(base, resolve_dsn(dsn, base), files, defs, compile(defs), config)
