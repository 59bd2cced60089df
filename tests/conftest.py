"""Shared fixtures: one embedded ClickHouse data dir per test session (chdb allows one per process)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from rta.compiler import Plan, compile
from rta.dsl.definitions import definitions
from rta.project import load_definitions
from rta.store.client import connect
from rta.store.schema import apply

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "rta" / "examples").glob("*.py") if not p.name.startswith("_"))


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
    return compile(load_definitions((ROOT / "rta" / "examples" / "shop.py",)))


@pytest.fixture
def shop(client: Client) -> Plan:
    plan = shop_plan()
    apply(plan, client)
    return plan


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("POLARS_MAX_THREADS", "2")


__all__ = ["EXAMPLES", "ROOT", "definitions", "shop_plan"]
