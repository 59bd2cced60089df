"""The REST query API over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import io
import socket
from datetime import timedelta

import httpx
import polars as pl
import pyarrow as pa
import pytest

from rta.contract.keys import KeyStore
from rta.query.api import ARROW, QueryApi, serve_in_thread
from tests.conftest import QUERY_NOW

pytestmark = pytest.mark.store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api(shop_ws, tmp_path_factory):
    keys = KeyStore(tmp_path_factory.mktemp("keys"))
    _, read = keys.create("read", "dashboards")
    _, write = keys.create("write", "site")
    revoked_key, revoked = keys.create("read", "old")
    keys.revoke(revoked_key.id)
    port = _free_port()
    _, stop = serve_in_thread(QueryApi(shop_ws, keys), port=port)
    yield {"url": f"http://127.0.0.1:{port}", "read": read, "write": write, "revoked": revoked, "ws": shop_ws}
    stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# A fixed range keeps answers comparable with direct queries.
RANGE = {"start": (QUERY_NOW - timedelta(days=2)).isoformat(), "end": QUERY_NOW.isoformat()}


@pytest.mark.parametrize(
    ("who", "status", "message"),
    [
        (None, 401, "missing API key"),
        ("nonsense", 401, "unknown or revoked API key"),
        ("revoked", 401, "unknown or revoked API key"),
        ("write", 403, "a write key cannot read; use a read key"),
        ("read", 200, None),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "body"), [("GET", "/v1/query?metrics=page_views", None), ("POST", "/v1/sql", {"sql": "SELECT 1 AS x"})]
)
def test_auth_matrix(api, who, status, message, method, path, body):
    headers = {} if who is None else _auth(api.get(who, who))
    response = httpx.request(method, api["url"] + path, headers=headers, json=body)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["error"]


def test_basic_auth_with_the_key_as_user_name(api):
    response = httpx.get(api["url"] + "/v1/freshness", auth=(api["read"], ""))
    assert response.status_code == 200 and response.json()["written_at"].startswith(QUERY_NOW.isoformat()[:16])


def test_json_and_arrow_answers_match_the_workspace(api):
    params = {"metrics": "page_views,revenue", "grain": "1d", "by": "country", "where": "device=mobile", **RANGE}
    as_json = httpx.get(api["url"] + "/v1/query", params=params, headers=_auth(api["read"]))
    as_arrow = httpx.get(api["url"] + "/v1/query", params=params, headers={**_auth(api["read"]), "Accept": ARROW})
    assert as_json.status_code == as_arrow.status_code == 200
    assert as_arrow.headers["content-type"] == ARROW
    frame = pl.from_arrow(pa.ipc.open_stream(io.BytesIO(as_arrow.content)).read_all())
    direct = api["ws"].query(
        ["page_views", "revenue"], start=QUERY_NOW - timedelta(days=2), end=QUERY_NOW, grain="1d", by="country", where={"device": "mobile"}
    )
    assert frame.equals(direct)
    records = as_json.json()["data"]
    assert [r["page_views"] for r in records] == direct["page_views"].to_list()
    assert as_json.json()["meta"]["grain"] == "1d"


def test_post_with_a_json_body_and_the_cache(api):
    body = {"metrics": ["purchases"], "grain": "1h", "by": ["device"], "where": {"country": ["US", "DE"]}, **RANGE}
    first = httpx.post(api["url"] + "/v1/query", json=body, headers=_auth(api["read"]))
    second = httpx.post(api["url"] + "/v1/query", json=body, headers=_auth(api["read"]))
    assert first.status_code == 200 and first.json()["meta"]["cache"] == "miss"
    assert second.json()["meta"]["cache"] == "hit" and second.json()["data"] == first.json()["data"]


def test_a_hundred_concurrent_identical_requests_run_one_query(api):
    ws = api["ws"]
    before = ws.cache.computed
    params = {"metrics": "clicks,avg_load_ms", "grain": "1h", "by": "campaign", **RANGE}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api["url"], headers=_auth(api["read"]), timeout=30) as client:
            return await asyncio.gather(*(client.get("/v1/query", params=params) for _ in range(100)))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 100
    assert len({r.content for r in responses}) == 1 or len({str(r.json()["data"]) for r in responses}) == 1
    assert ws.cache.computed == before + 1  # one ClickHouse query for the burst


def test_sql_endpoint(api):
    ok = httpx.post(api["url"] + "/v1/sql", json={"sql": "SELECT count() AS n FROM events"}, headers=_auth(api["read"]))
    assert ok.json()["data"] == [{"n": 6000}]
    refused = httpx.post(
        api["url"] + "/v1/sql", json={"sql": "SELECT * FROM file('/etc/passwd', 'LineAsString')"}, headers=_auth(api["read"])
    )
    assert refused.status_code == 400 and refused.json()["error"].startswith("refused: table function")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    [
        ("GET", "/v1/query?metrics=pageviews", {}, 400, "no metric named 'pageviews'; did you mean 'page_views'?"),
        ("GET", "/v1/query?metrics=page_views&grain=5m", {}, 400, "unknown grain '5m'"),
        ("GET", "/v1/query?metrics=page_views&top=ten", {}, 400, "top='ten' is not a whole number"),
        ("GET", "/v1/query?metrics=page_views&start=yesterday", {}, 400, "start='yesterday' is not an ISO 8601 time"),
        ("GET", "/v1/query?metrics=page_views&where=country", {}, 400, "where takes dim=value or dim=a,b, got 'country'"),
        ("GET", "/v1/query", {}, 400, "metrics is required"),
        ("POST", "/v1/query", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
        ("POST", "/v1/query", {"content": b"[1]", "headers": {"content-type": "application/json"}}, 400, "the JSON body must be an object"),
        ("POST", "/v1/query", {"content": b"metrics=x", "headers": {"content-type": "text/plain"}}, 415, "send JSON"),
        (
            "POST",
            "/v1/query",
            {"content": b'{"a": "' + b"x" * 1_100_000 + b'"}', "headers": {"content-type": "application/json"}},
            413,
            "over the limit",
        ),
        ("GET", "/v1/nothing", {}, 404, "no endpoint /v1/nothing"),
        ("DELETE", "/v1/query", {}, 405, "DELETE is not allowed on /v1/query"),
    ],
)
def test_bad_requests_get_specific_errors(api, method, path, kwargs, status, message):
    headers = {**_auth(api["read"]), **kwargs.pop("headers", {})}
    response = httpx.request(method, api["url"] + path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_openapi_document(api):
    spec = httpx.get(api["url"] + "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and {"/v1/query", "/v1/sql", "/v1/freshness"} <= set(spec["paths"])
    assert httpx.get(api["url"] + "/v1/health").json() == {"ok": True}
    docs = httpx.get(api["url"] + "/docs")
    assert docs.headers["content-type"].startswith("text/html") and "GET /v1/query" in docs.text and "http" not in docs.text


def test_a_taken_port_is_a_clear_error(api, shop_ws, tmp_path):
    from rta.errors import BackendError

    port = int(api["url"].rsplit(":", 1)[1])
    with pytest.raises(BackendError, match=rf"could not listen on 127.0.0.1:{port} \(is the port in use\?\); pass another --port"):
        serve_in_thread(QueryApi(shop_ws, KeyStore(tmp_path)), port=port)
