"""Hostile input for the query API over real HTTP: never a 5xx, every 4xx a JSON error, no hang.

Seeded and bounded: the same requests on every run (``random.Random(SEED)``), sent one after
the other to the shop workspace served on loopback, then a burst from several threads at once.
Raw-socket cases go below the HTTP client (bad Content-Length, broken request lines); there the
server may refuse in plain text or close the connection, but never with a 5xx.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from tests.ingest_helpers import read_to_close
from tests.test_api import RANGE, _auth, api  # noqa: F401  (the shop workspace served on loopback)

pytestmark = [pytest.mark.store, pytest.mark.slow]

SEED = 20261128
SEQUENTIAL = 3_000  # requests sent one at a time
BURST = 600  # then these, from BURST_THREADS threads at once
BURST_THREADS = 4
TIMEOUT = 20.0  # seconds; a reply slower than this is a hang
CONTROLS = bytes(range(32)) + b"\x7f"

METRICS = ["page_views", "clicks", "add_to_carts", "purchases", "revenue", "biggest_order", "avg_load_ms"]
METRICS += ["p95_load_ms", "visitors", "buyers", "conversion", "revenue_per_visitor"]
DIMS = ["event", "country", "device", "campaign", "path"]
OPTIONS = ["metrics", "last", "start", "end", "grain", "by", "where", "compare", "top", "order_by", "fill_gaps", "total"]
ODD = ["", " ", ",", ",,", "'", '"', "\\", "`", "\x00", "\n", "\r\n", "\t", "%", "%00", "%zz", "é", "日本", "\u202e", "🙂", "\ufeff"]
ODD += ["\ud800", "NaN", "null", "None", "-1", "0", "1e400", "[]", "{}", "' OR 1=1 --", "${jndi:x}", "../../etc/passwd"]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to send through httpx."""

    kind: str
    method: str
    path: str
    query: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes to write on a socket; ``close_write`` half-closes it (a body shorter than declared)."""

    kind: str
    data: bytes
    close_write: bool = False


class Hostile:
    """Builds hostile values from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: list[Any]) -> Any:
        return self.rng.choice(options)

    def junk(self, longest: int = 12) -> str:
        alphabet = string.ascii_letters + string.digits + string.punctuation + " " + "éß日🙂\u0301"
        text = "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, longest)))
        return text + self.pick(ODD) if self.rng.random() < 0.3 else text

    def long(self) -> str:
        return self.pick(["x", "é", "9", ",", "a,"]) * self.pick([1_000, 10_000, 60_000])

    def name(self, known: list[str]) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return self.pick(known)
        if roll < 0.7:
            return self.pick(known).upper() if self.rng.random() < 0.5 else self.pick(known) + self.pick(["s", "_", " "])
        if roll < 0.97:
            return self.junk()
        return self.long()

    def names(self, known: list[str]) -> str:
        chosen = [self.name(known) for _ in range(self.rng.randint(1, 4))]
        if self.rng.random() < 0.25:  # duplicates
            chosen.append(chosen[0])
        return ",".join(chosen)

    def duration(self) -> str:
        number = self.pick([0, 1, 7, 90, 137, 1000, 1001, 99_999_999, 10**30, -5, 3.5])
        unit = self.pick(["s", "m", "h", "d", "w", "y", "", "x", "d ", " d", "D", "mo", "ms"])
        if self.rng.random() < 0.1:
            return self.pick(["9" * 5000 + "y", "٣d", "7d7d", "P7D", "-7d", "7 d", "\x007d", self.junk()])
        return f"{number}{unit}"

    def time(self) -> str:
        if self.rng.random() < 0.15:
            return self.pick(["yesterday", "now", "0", "-1", "1e10", "9999999999", "2026-13-01", "2026-02-30T00:00:00Z", self.junk()])
        year = self.pick([1, 2, 1969, 1970, 2000, 2026, 2105, 2106, 2107, 2200, 9999])
        month, day = self.rng.randint(1, 12), self.rng.randint(1, 28)
        clock = self.pick(["00:00:00", "23:59:59", "12:30:00.123456", "24:00:00", ""])
        zone = self.pick(["Z", "+00:00", "-23:59", "+23:59", "+14:00", "", "+99:00", " UTC"])
        stamp = f"{year:04d}-{month:02d}-{day:02d}" + (f"T{clock}" if clock else "")
        return stamp + zone

    def option(self, name: str) -> str:
        values: dict[str, Callable[[], str]] = {
            "metrics": lambda: self.names(METRICS),
            "by": lambda: self.names(DIMS),
            "order_by": lambda: self.name(METRICS),
            "last": self.duration,
            "start": self.time,
            "end": self.time,
            "grain": lambda: self.pick(["auto", "1m", "1h", "1d", "5m", "1w", "", "1M", self.junk()]),
            "compare": lambda: self.pick(["previous_period", "previous_day", "previous_week", "previous_year", "next", self.junk()]),
            "top": lambda: self.pick(["1", "5", "0", "-3", "2.5", "1e3", "10" * 30, "ten", "", " 7 ", "٣", self.junk()]),
            "fill_gaps": lambda: self.pick(["true", "false", "1", "0", "yes", "no", "", "maybe", "TRUE", self.junk()]),
            "total": lambda: self.pick(["true", "false", "1", "0", "", "on", "off", self.junk()]),
            "where": lambda: f"{self.name(DIMS)}={','.join(self.junk(6) for _ in range(self.rng.randint(0, 3)))}",
        }
        return values[name]()

    def json_value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth > 3 or roll < 0.45:
            return self.pick(
                [None, True, False, 0, -1, 1, 2**63, 10**400, 1.5, -0.0, 1e308, "", "7d", self.junk(), self.pick(METRICS), self.pick(DIMS)]
            )
        if roll < 0.75:
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 4))]
        return {self.pick([*DIMS, self.junk(6)]): self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def headers(self, read_key: str) -> dict[str, str]:
        roll = self.rng.random()
        if roll < 0.85:
            headers = _auth(read_key)
        else:
            bad = [
                "",
                "Bearer",
                "Bearer ",
                f"bearer {read_key}",
                f"Bearer {read_key}x",
                f"Bearer  {read_key}",
                "Basic !!!",
                "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
                "Basic " + base64.b64encode(f"{read_key}:".encode()).decode(),
                "Token abc",
                "Bearer " + "k" * 8_000,
                "Bearer é",
            ]
            headers = {"Authorization": self.pick(bad)}
        if self.rng.random() < 0.2:
            headers["Accept"] = self.pick(["application/vnd.apache.arrow.stream", "*/*", "text/html", "application/json;q=0", self.junk()])
        return headers


def _query_request(h: Hostile, read_key: str) -> Request:
    pairs = [(name, h.option(name)) for name in h.rng.sample(OPTIONS, h.rng.randint(0, 6))]
    if h.rng.random() < 0.7:
        pairs.insert(0, ("metrics", h.names(METRICS)))
    if h.rng.random() < 0.2:  # repeated parameters
        pairs += [(name, h.option(name)) for name, _ in pairs[: h.rng.randint(0, 2)]]
    query = urlencode(pairs, quote_via=quote, errors="surrogatepass").encode()
    if h.rng.random() < 0.1:  # raw garbage in the query string
        query += h.pick([b"&%zz", b"&%ff%fe=%c0%af", b"&&&==", b"&metrics", b"&=x", b"&where=%00%00", b"&metrics=%e2%80"])
    return Request("get-query", "GET", "/v1/query", query, h.headers(read_key))


def _plausible_request(h: Hostile, read_key: str) -> Request:
    """A query that mostly parses, so hostile values reach the store: odd filter values, ranges, splits."""
    options: dict[str, Any] = {"metrics": ",".join(h.rng.sample(METRICS, h.rng.randint(1, 3)))}
    if h.rng.random() < 0.6:
        options |= RANGE if h.rng.random() < 0.7 else {"start": h.time(), "end": h.time()}
        options["grain"] = h.pick(["auto", "1h", "1d"])  # minutes of two days by dimensions take seconds: no fuzzing
    else:
        options["last"] = h.pick(["1h", "6h", "2d", "7d", "90d", "5y", "100y", h.duration()])
        options["grain"] = h.pick(["auto", "1m", "1h", "1d"] if options["last"] in ("1h", "6h") else ["auto", "1h", "1d"])
    if h.rng.random() < 0.5:
        options["by"] = ",".join(h.rng.sample(DIMS[1:4], h.rng.randint(1, 2)))
    if h.rng.random() < 0.5:
        values = [h.pick(["US", "DE", "mobile", "desktop", "", h.junk(8), h.pick(ODD), h.long()]) for _ in range(h.rng.randint(1, 3))]
        options["where"] = f"{h.pick(DIMS[1:4])}={','.join(values)}"
    for name, value in (("compare", "previous_period"), ("top", str(h.rng.randint(1, 5))), ("total", "true"), ("fill_gaps", "false")):
        if h.rng.random() < 0.25:
            options[name] = h.pick([value, h.option(name)])
    if h.rng.random() < 0.5:
        query = urlencode(options, quote_via=quote, errors="surrogatepass").encode()
        return Request("plausible-get", "GET", "/v1/query", query, _auth(read_key))
    body = options | ({"where": {k: v.split(",") for k, _, v in [options["where"].partition("=")]}} if "where" in options else {})
    headers = {**_auth(read_key), "Content-Type": "application/json"}
    if h.rng.random() < 0.2:
        headers["Accept"] = "application/vnd.apache.arrow.stream"
    return Request("plausible-post", "POST", "/v1/query", b"", headers, json.dumps(body).encode())


def _json_request(h: Hostile, read_key: str) -> Request:
    if h.rng.random() < 0.15:
        raw = h.pick(
            [
                b"",
                b"{",
                b"null",
                b"[]",
                b'"metrics"',
                b"\xff\xfe{}",
                b"\xef\xbb\xbf{}",
                b'{"metrics": NaN}',
                b'{"metrics": "purchases", "top": Infinity}',
                b'{"metrics": "purchases", "top": ' + b"9" * 5_000 + b"}",
                b"[" * 50_000 + b"]" * 50_000,
                b'{"metrics": ' + b"[" * 900 + b"]" * 900 + b"}",
                b'{"metrics": "\\ud800"}',
                b'{"metrics": "purchases", "where": {"country": "\\udfff"}}',
                b'{"a": 1, "a": 2}',
            ]
        )
    else:
        body: dict[str, Any] = {}
        for name in h.rng.sample(OPTIONS, h.rng.randint(0, 7)):
            body[name] = h.option(name) if h.rng.random() < 0.4 else h.json_value()
        if h.rng.random() < 0.5:
            body["metrics"] = [h.name(METRICS) for _ in range(h.rng.randint(0, 3))]
        raw = json.dumps(body).encode()
    content_type = h.pick(["application/json"] * 8 + ["", "text/plain", "application/json; charset=latin-1", "multipart/form-data"])
    headers = h.headers(read_key) | ({"Content-Type": content_type} if content_type else {})
    return Request("post-query", "POST", "/v1/query", b"", headers, raw)


def _sql_request(h: Hostile, read_key: str) -> Request:
    sql = h.pick(
        [
            "SELECT count() AS n FROM events",
            "SELECT 1",
            "SELECT * FROM system.tables",
            "DROP TABLE events",
            "SELECT (" * 2_000 + "1" + ")" * 2_000,
            "SELECT '\\' AS x",
            "SELECT toDateTime(99999999999999)",
            "SELECT 1; SELECT 2",
            "SELECT * FROM url('http://127.0.0.1/', CSV)",
            h.junk(40),
            h.long(),
        ]
    )
    value = sql if h.rng.random() < 0.8 else h.json_value()
    body = json.dumps({"sql": value} if h.rng.random() < 0.9 else h.json_value()).encode()
    return Request("sql", "POST", "/v1/sql", b"", h.headers(read_key) | {"Content-Type": "application/json"}, body)


def _odd_request(h: Hostile, read_key: str) -> Request:
    method = h.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    path = h.pick(
        [
            "/",
            "/v1",
            "/v1/",
            "/v1/query/",
            "//v1/query",
            "/v1/Query",
            "/v1/query%00",
            "/v1/%2e%2e/keys",
            "/v1/health",
            "/v1/freshness",
            "/v1/definitions",
            "/openapi.json",
            "/docs",
            "/" + quote(h.junk(30), safe="/", errors="surrogatepass"),
            "/" + "a" * 8_000,
        ]
    )
    body = None if method in ("GET", "HEAD") else h.pick([b"", b"{}", b"\x00" * 100, json.dumps(h.json_value()).encode()])
    return Request("odd", method, path, b"", h.headers(read_key), body)


def _raw_request(h: Hostile, read_key: str) -> Raw:
    auth = f"Authorization: Bearer {read_key}\r\n".encode()
    head = b"POST /v1/query HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Type: application/json\r\n" + auth
    body = b'{"metrics": "purchases"}'
    choice = h.rng.randint(0, 7)
    if choice == 0:
        length = h.pick([b"abc", b"-1", b"\xb2", b"1e3", b" ", b"0x10", b"99999999999999999999999", b"12, 12"])
        return Raw("raw-length", head + b"Content-Length: " + length + b"\r\n\r\n" + body)
    if choice == 1:  # declares more than it sends, then stops writing
        return Raw("raw-short-body", head + b"Content-Length: 500\r\n\r\n" + body, close_write=True)
    if choice == 2:  # declares less than it sends: the rest is a broken next request
        return Raw("raw-long-body", head + b"Content-Length: 5\r\n\r\n" + body)
    if choice == 3:
        return Raw("raw-two-lengths", head + b"Content-Length: 24\r\nContent-Length: 3\r\n\r\n" + body)
    if choice == 4:
        chunks = h.pick([b"zz\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"ffffffffffff\r\n"])
        return Raw("raw-chunked", head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks, close_write=True)
    if choice == 5:
        many_headers = b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n" + b"X: y\r\n" * 200 + b"\r\n"
        return Raw("raw-line", h.pick([b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00", many_headers]))
    if choice == 6:
        header = h.pick([b"Authorization: Bearer \xff\xfe\r\n", b"Authorization: Basic \x80\x81\r\n", b"X-Odd: \x00\r\n"])
        return Raw("raw-header", b"GET /v1/query?metrics=purchases HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n" + header + b"\r\n")
    query = h.pick([b"metrics=\xff\xfe", b"metrics=purchases&where=country%3D\xe9", b"metrics=%C0%AF", b"metrics=" + bytes(range(33, 127))])
    return Raw("raw-query", b"GET /v1/query?" + query + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n" + auth + b"\r\n")


MAKERS: list[tuple[float, Callable[[Hostile, str], Request | Raw]]] = [
    (0.35, _query_request),
    (0.20, _plausible_request),
    (0.25, _json_request),
    (0.06, _sql_request),
    (0.08, _odd_request),
    (0.06, _raw_request),
]


def _requests(seed: int, count: int, read_key: str) -> list[Request | Raw]:
    h = Hostile(seed)
    weights = [w for w, _ in MAKERS]
    return [h.rng.choices([m for _, m in MAKERS], weights)[0](h, read_key) for _ in range(count)]


def _send(client: httpx.Client, request: Request) -> tuple[int, str]:
    """The status, and what is wrong with the reply ('' when nothing)."""
    # Header values go as bytes (any octet but controls, which the client refuses; raw cases send those).
    values = {k: v.encode("utf-8", "surrogatepass").translate(None, CONTROLS).strip() for k, v in request.headers.items()}
    if len(request.query) > 60_000:  # over httpx's limit for a URL component: through http.client
        host, port = str(client.base_url).removeprefix("http://").rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request(request.method, f"{request.path}?{request.query.decode()}", body=request.body, headers=values)
            answer = conn.getresponse()
            status, content = answer.status, answer.read()
        finally:
            conn.close()
    else:
        url = httpx.URL(client.base_url.join(request.path), query=request.query) if request.query else request.path
        reply = client.request(request.method, url, headers={k.encode(): v for k, v in values.items()}, content=request.body)
        status, content = reply.status_code, reply.content
    if status >= 500:
        return status, f"{status}: {content[:300]!r}"
    if status == 400 and content == b"Invalid HTTP request received." and len(request.query) > 60_000:
        return status, ""  # the HTTP server's own limit on a request line (llhttp), before the app
    if 400 <= status < 500 and request.method != "HEAD":
        try:
            error = json.loads(content)["error"]
        except (ValueError, KeyError, TypeError):
            return status, f"{status} without a JSON error: {content[:300]!r}"
        if not isinstance(error, str) or not error.strip():
            return status, f"{status} with an empty error: {content[:300]!r}"
    return status, ""


def _send_raw(url: str, raw: Raw) -> tuple[str, str]:
    """What the server answered on the socket: a status, 'closed' or 'silent'; and what is wrong."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
        conn.sendall(raw.data)
        received, silent = read_to_close(conn, close_write=raw.close_write)
    if silent:
        return "silent", "" if raw.close_write else f"no reply within {TIMEOUT}s"
    if not received:
        return "closed", ""
    status = received.split(b" ", 2)[1].decode() if received.startswith(b"HTTP/1.1 ") else "garbled"
    for line in received.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 5"):
            return status, f"5xx on a socket: {received[:300]!r}"
    return status, ""


_CLIENTS = threading.local()
_OPENED: list[httpx.Client] = []


def _run(url: str, item: Request | Raw) -> tuple[str, str, str]:
    """(kind, status, problem) for one item; each thread keeps one client (building one costs ~40 ms)."""
    if isinstance(item, Raw):
        status, problem = _send_raw(url, item)
        return item.kind, status, problem
    client = getattr(_CLIENTS, url, None)
    if client is None:
        client = httpx.Client(base_url=url, timeout=TIMEOUT)
        setattr(_CLIENTS, url, client)
        _OPENED.append(client)
    try:
        code, problem = _send(client, item)
    except (httpx.TimeoutException, TimeoutError):
        return item.kind, "timeout", f"no reply within {TIMEOUT}s to {item.method} {item.path}?{item.query[:200]!r}"
    except (httpx.RemoteProtocolError, http.client.HTTPException, ConnectionError) as err:  # the HTTP server dropped it
        return item.kind, "dropped", "" if len(item.path) > 1000 or len(item.query) > 1000 else f"dropped: {err}"
    sent = f"{item.method} {item.path}?{item.query[:300]!r} body={(item.body or b'')[:300]!r}"
    return item.kind, str(code), problem and f"{problem} <- {sent}"


def _valid_query_answers(url: str, read_key: str) -> None:
    params = {"metrics": "purchases,revenue", "grain": "1h", "by": "country", **RANGE}
    reply = httpx.get(url + "/v1/query", params=params, headers=_auth(read_key), timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    assert sum(row["purchases"] for row in reply.json()["data"]) > 0


def test_hostile_requests_get_4xx_with_a_reason_and_the_server_keeps_answering(api):  # noqa: F811
    url, read_key = api["url"], api["read"]
    items = _requests(SEED, SEQUENTIAL + BURST, read_key)
    started = time.monotonic()
    try:
        results = [_run(url, item) for item in items[:SEQUENTIAL]]
        _valid_query_answers(url, read_key)
        with ThreadPoolExecutor(BURST_THREADS) as pool:
            results += list(pool.map(lambda item: _run(url, item), items[SEQUENTIAL:]))
    finally:
        while _OPENED:
            _OPENED.pop().close()
    seconds = time.monotonic() - started
    _valid_query_answers(url, read_key)

    statuses = Counter(status for _, status, _ in results)
    by_kind = Counter(f"{kind} {status}" for kind, status, _ in results)
    print(f"\nfuzz: {len(results)} requests in {seconds:.1f}s; statuses {dict(sorted(statuses.items()))}")
    print("by kind: " + ", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items())))
    problems = [problem for _, _, problem in results if problem]
    assert not problems, f"{len(problems)} bad replies, the first ones:\n" + "\n".join(problems[:10])
    assert statuses["200"] > 50 and sum(n for s, n in statuses.items() if s.startswith("4")) > 500  # it tried both
