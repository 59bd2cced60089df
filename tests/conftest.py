"""Shared fixtures: one embedded ClickHouse data dir per test session (chdb allows one per process)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from clickhouse_connect.driver.client import Client

import rta
from rta.compiler import Plan, compile
from rta.dsl.definitions import definitions
from rta.flows.demo import Population, generate
from rta.flows.runner import run_flow
from rta.project import load_definitions
from rta.store.client import connect
from rta.store.schema import apply
from rta.testing import BatchSource, frame_batches

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "metrics").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="session")
def store_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "chdb://" + str(tmp_path_factory.mktemp("chdb") / "data")


@pytest.fixture(scope="session")
def _session_client(store_dsn: str) -> Iterator[Client]:
    client = connect(store_dsn)
    yield client
    client.close()


def clear_store(client: Client) -> None:
    """Drop every table and view of the session store."""
    for (name,) in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows:
        client.command(f"DROP TABLE IF EXISTS `{name}` SYNC")


@pytest.fixture
def client(_session_client: Client, store_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Client:
    """A client on an empty store; commands run in-process see the same store."""
    clear_store(_session_client)
    monkeypatch.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
    return _session_client


def shop_plan() -> Plan:
    return compile(load_definitions((ROOT / "metrics" / "shop.py",)))


@pytest.fixture
def shop(client: Client) -> Plan:
    plan = shop_plan()
    apply(plan, client)
    return plan


# The query tests' clock: 12:30 UTC yesterday. Near the real one, since ClickHouse applies the rollups'
# TTLs (7 days of minutes) by the wall clock; a fixed date failed once a week had passed. Stable for a day.
QUERY_NOW = datetime.now(UTC).replace(hour=12, minute=30, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture(scope="module")
def shop_events() -> pl.DataFrame:
    """6,000 demo events over the two days before NOW."""
    import numpy as np

    rng = np.random.default_rng(11)
    now_ms = int(QUERY_NOW.timestamp() * 1000)
    return generate(Population(11, users=2_000), 6_000, now_ms - 2 * 86_400_000, now_ms - 60_000, rng, "q")


def shop_project(tmp_path_factory: pytest.TempPathFactory, store_dsn: str, name: str, **options: Any) -> Any:
    """A workspace on a fresh copy of the shop example, on the session's store (``options`` go to ``rta.connect``)."""
    project = tmp_path_factory.mktemp(name)
    (project / "metrics").mkdir()
    shutil.copy(ROOT / "metrics" / "shop.py", project / "metrics" / "shop.py")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
        return rta.connect(project, **options)


@pytest.fixture(scope="module")
def shop_ws(_session_client: Client, store_dsn: str, tmp_path_factory: pytest.TempPathFactory, shop_events: pl.DataFrame):  # type: ignore[no-untyped-def]
    """One loaded store for the module: no test here writes to it."""
    clear_store(_session_client)
    workspace = shop_project(tmp_path_factory, store_dsn, "query")
    frames = [shop_events.slice(i, 1_000) for i in range(0, shop_events.height, 1_000)]
    run_flow(workspace.plan, BatchSource(frame_batches("events", frames)), workspace.client, clock=lambda: QUERY_NOW)
    return workspace


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("POLARS_MAX_THREADS", "2")


__all__ = ["EXAMPLES", "ROOT", "definitions", "shop_plan"]


def require_module(name: str) -> Any:
    """An importable module a service test drives; a skip on a laptop without it, a failure in CI."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("RTA_REQUIRE_SERVICES"):
            pytest.fail(f"{name} is required here (RTA_REQUIRE_SERVICES is set) but not installed; pip install -e '.[dev]'")
        pytest.skip(f"{name} is not installed")


def require_service(binary: str) -> str:
    """The path of a service binary; a skip on a laptop without it, a failure in CI (RTA_REQUIRE_SERVICES)."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("RTA_REQUIRE_SERVICES"):
            pytest.fail(f"{binary} is required here (RTA_REQUIRE_SERVICES is set) but not installed; .ci/run installs it")
        pytest.skip(f"{binary} is not installed")
    return path
