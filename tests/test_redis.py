"""Results shared across API replicas through a real Redis, started here and stopped by PID."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import timedelta

import pytest

from rta.compiler.naming import version_of
from rta.errors import BackendError
from rta.query.cache import QueryCache
from rta.query.shared_cache import RedisResults
from rta.workspace import Workspace
from rta.workspace import workspace as workspace_module
from tests.conftest import QUERY_NOW, require_service

pytestmark = [pytest.mark.services, pytest.mark.store]


@pytest.fixture(scope="module")
def redis_url():
    binary = require_service("redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _replica(shop_ws, redis_url) -> Workspace:
    """Another API replica: same store, its own in-process cache, the shared Redis."""
    scope = version_of(shop_ws.plan.ddl_sql())
    return Workspace(shop_ws.project, shop_ws.client, shop_ws.dsn, cache=QueryCache(), shared=RedisResults(redis_url, scope))


def test_replicas_share_results_through_redis(shop_ws, redis_url, monkeypatch):
    ran = []
    real = workspace_module.run_query
    monkeypatch.setattr(workspace_module, "run_query", lambda *a, **k: ran.append(1) or real(*a, **k))
    first, second = _replica(shop_ws, redis_url), _replica(shop_ws, redis_url)
    options = {"start": QUERY_NOW - timedelta(days=1), "end": QUERY_NOW, "grain": "1h", "by": ["device"], "now": QUERY_NOW}
    a = first.answer(["revenue", "visitors"], **options)
    b = second.answer(["revenue", "visitors"], **options)
    assert not a.cache_hit and b.cache_hit
    assert a.frame.equals(b.frame)
    assert len(ran) == 1  # one ClickHouse query for both replicas


def test_results_expire_with_the_grain_ttl(shop_ws, redis_url):
    replica = _replica(shop_ws, redis_url)
    q = workspace_module.make_query(replica.plan, "page_views", last="1h", grain="1m", now=QUERY_NOW)
    frame = replica.query("page_views", last="1h", grain="1m", now=QUERY_NOW)
    key = replica._cache_key(q, QUERY_NOW)  # the query and the flow's last write
    assert replica.shared.get(key).equals(frame)
    replica.shared.set(key, frame, ttl=0.05)
    time.sleep(0.2)
    assert replica.shared.get(key) is None


def test_an_unreachable_redis_is_a_clear_error():
    with pytest.raises(BackendError, match=r"cannot reach Redis at 'redis://127.0.0.1:1/0' \(RTA_REDIS_URL\).*unset RTA_REDIS_URL"):
        RedisResults("redis://127.0.0.1:1/0", "x")
