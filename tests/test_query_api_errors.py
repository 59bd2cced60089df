"""Client mistakes the query API once answered with 500: each is now a 400 that says what was wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from rta.contract.keys import KeyStore
from rta.errors import BackendError, QueryError
from rta.query.api import QueryApi
from rta.query.metric_query import make_query
from tests.conftest import QUERY_NOW, shop_plan
from tests.test_api import RANGE, _auth, api  # noqa: F401  (the shop workspace served on loopback)

pytestmark = pytest.mark.store


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("metrics=purchases,purchases", "metrics names 'purchases' twice; ask for each metric once"),
        ("metrics=purchases&metrics=purchases", "metrics names 'purchases' twice"),
        ("metrics=purchases&by=country,country", "by names 'country' twice; split by each dimension once"),
        ("metrics=purchases&last=99999999y", "'99999999y' is longer than the longest duration, 1000y"),
        ("metrics=purchases&last=" + "9" * 5000 + "y", "(5,001 characters) is longer than the longest duration"),
        ("metrics=purchases&last=200y", "which is outside the times the store holds; valid times are 1970-01-01"),
        ("metrics=purchases&end=9999-12-31T23:59:59%2B00:00", "end=9999-12-31T23:59:59+00:00 is outside the times the store holds"),
        ("metrics=purchases&end=0001-01-01T00:00:01%2B00:00", "valid times are 1970-01-01 to 2106-01-01 UTC"),
        ("metrics=purchases&start=0001-01-01T00:00:00%2B01:00", "start=0001-01-01T00:00:00+01:00 is outside the times"),
        (
            "metrics=purchases&start=1970-01-02T00:00:00Z&end=1970-02-01T00:00:00Z&compare=previous_year",
            "compare='previous_year' reaches back to 1969-01-03T00:00:00+00:00, which is outside the times the store holds",
        ),
        (
            "metrics=purchases&start=2100-01-01T00:00:00Z&end=2106-01-01T00:00:00Z&grain=1m",
            "filling the gaps makes 3,155,040 rows (3,155,040 buckets of 1m), over the limit of 2,000,000",
        ),
        (
            "metrics=purchases&start=2026-11-27T00:00:00Z&end=2106-01-01T00:00:00Z&grain=1d&by=country,device,campaign",
            "buckets of 1d by ",
        ),
        ("metrics=purchases&by=country&top=99999999999999999999", "top= takes a positive number of groups, got 99999999999999999999"),
        ("metrics=purchases&top=" + "9" * 200, "is not a whole number"),
        ("metrics=purchases&total=maybe", "total takes true or false, got 'maybe'"),
    ],
)
def test_get_parameters(api, query, message):  # noqa: F811
    response = httpx.get(f"{api['url']}/v1/query?{query}", headers=_auth(api["read"]))
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def _post(served: dict[str, Any], body: str | bytes, path: str = "/v1/query") -> httpx.Response:
    return httpx.post(served["url"] + path, content=body, headers={**_auth(served["read"]), "content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"metrics": [1, 2]}', "metrics takes names as a comma-separated string or a list of strings, got [1, 2]"),
        ('{"metrics": [null]}', "metrics takes names as a comma-separated string or a list of strings, got [None]"),
        ('{"metrics": 7}', "metrics takes names"),
        ('{"metrics": ["purchases"], "by": 5}', "by takes names as a comma-separated string or a list of strings, got 5"),
        ('{"metrics": ["purchases"], "where": {"country": 5}}', "where['country'] takes a string or a list of strings, got 5"),
        ('{"metrics": ["purchases"], "where": {"country": [["US"]]}}', "where['country'] takes a string or a list of strings"),
        ('{"metrics": ["purchases"], "where": 5}', "where takes {dim: value or [values]} or dim=value items, got 5"),
        ('{"metrics": ["purchases"], "top": 1e400}', "top=inf is not a whole number"),
        ('{"metrics": ["purchases"], "top": NaN}', "top=nan is not a whole number"),
        ('{"metrics": ["purchases"], "top": true}', "top=True is not a whole number"),
        ('{"metrics": ["purchases"], "grain": 60}', "grain takes a string, got 60"),
        ('{"metrics": ["purchases"], "last": {"days": 7}}', "last takes a string, got {'days': 7}"),
        ('{"metrics": ["purchases"], "start": 0}', "start takes a string, got 0"),
        ('{"metrics": ["purchases"], "fill_gaps": 2}', "fill_gaps takes true or false, got 2"),
        ('{"metrics": ["purchases"], "where": {"country": "\\ud800"}}', "is not valid Unicode (it holds a lone surrogate)"),
        ('{"metrics": ["' + "x" * 100_000 + '"]}', "no metric named 'xxxxx"),
        ("[" * 100_000 + "]" * 100_000, "malformed JSON: it nests deeper than the parser goes"),
        ('{"metrics": ' + "[" * 500 + "]" * 500 + "}", "or a list of strings, got [[[[...]]]]"),
    ],
)
def test_json_bodies_of_the_wrong_types(api, body, message):  # noqa: F811
    response = _post(api, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_the_sql_endpoint_refuses_text_the_store_cannot_take(api):  # noqa: F811
    response = _post(api, '{"sql": "SELECT \'\\ud800\' AS x"}', "/v1/sql")
    assert response.status_code == 400 and "not valid Unicode" in response.json()["error"]


def test_a_valid_query_still_answers_with_the_options_in_json(api):  # noqa: F811
    body = {"metrics": "purchases", "by": "country", "top": 3.0, "total": "yes", "where": "device=mobile,desktop", **RANGE}
    response = httpx.post(api["url"] + "/v1/query", json=body, headers=_auth(api["read"]))
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3


def test_a_malformed_content_length_never_reaches_the_app(api):  # noqa: F811
    host, port = api["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \xb2\r\n\r\n{}")
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metrics": ["purchases", "purchases"]}, "metrics names 'purchases' twice"),
        ({"metrics": "purchases", "by": ["device", "device"]}, "by names 'device' twice"),
        ({"metrics": "purchases", "end": datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC)}, "valid times are 1970-01-01 to 2106-01-01 UTC"),
        ({"metrics": "purchases", "last": "99999999y"}, "longer than the longest duration, 1000y"),
        ({"metrics": "purchases", "top": True}, "top=True is not a whole number"),
    ],
)
def test_make_query_refuses_the_same_in_python(options, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_query(shop_plan(), options.pop("metrics"), now=QUERY_NOW, **options)


def _call(app: QueryApi, path: str, secret: str) -> tuple[int, dict[str, Any]]:
    """One GET through the ASGI app itself: status and JSON body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Bearer {secret}".encode())]
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


@pytest.mark.parametrize(
    ("error", "status", "reply"),
    [
        (QueryError("no metric named 'x'"), 400, "no metric named 'x'"),
        (BackendError("cannot reach ClickHouse"), 503, "cannot reach ClickHouse"),
        (ZeroDivisionError("a bug"), 500, "internal error; see the server log"),
        (ValueError("year 10000 is out of range"), 500, "internal error; see the server log"),
    ],
)
def test_client_mistakes_are_400_and_bugs_are_500(tmp_path, caplog, error, status, reply):
    def freshness() -> None:
        raise error

    keys = KeyStore(tmp_path)
    _, secret = keys.create("read")
    app = QueryApi(SimpleNamespace(freshness=freshness), keys, threads=1)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="rta.api"):
        assert _call(app, "/v1/freshness", secret) == (status, {"error": reply})
    assert ("unexpected error in GET /v1/freshness" in caplog.text) is (status == 500)
