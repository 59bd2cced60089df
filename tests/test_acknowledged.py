"""Acknowledged means counted: for every body the collect API answers, the log holds exactly what it accepted.

The property runs the whole promise in-process, through the real pieces: the ASGI app, the
durable log on disk, the flow's reader of the log (``parse_batch``, quarantine on) and the
restart path's reader of insert ids. For any generated batch, in any JSON layout (indentation,
CRLF, escapes, key order, duplicate keys) and any accepted time form: the answer is 200 or 400
(never 5xx), each accepted event is read back once with the values the oracle expects, nothing
is invalid or quarantined, and refused events come back with their index and a reason.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta.contract.keys import KeyStore
from rta.contract.log_format import read_frames
from rta.flows.dataflow import parse_batch
from rta.flows.sources import SourceBatch
from rta.ingest.collect import CollectApi
from rta.ingest.log import EventLog
from rta.ingest.service import _insert_ids
from tests.acknowledged import expected, layout, messages, same_value
from tests.conftest import shop_plan

pytestmark = pytest.mark.core
PLAN = shop_plan()
STREAM = PLAN.stream("events")


class Harness:
    """The collect API on a real log in a folder, and the flow's view of what each request added."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = EventLog(root / "log")
        self.key = KeyStore(root).create("write")[1]
        self.api = CollectApi(STREAM, self.log, KeyStore(root))
        self.offset = 0

    def post(self, body: bytes, *, path: str = "/v1/batch", content_type: str = "application/json",
             extra: dict[str, str] | None = None) -> tuple[int, dict]:  # fmt: skip
        headers = [(b"authorization", f"Bearer {self.key}".encode()), (b"content-type", content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b"", "client": ("10.1.2.3", 5)}
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        asyncio.run(self.api(scope, receive, send))
        self.last_headers = dict(sent[0]["headers"])
        return sent[0]["status"], json.loads(sent[1]["body"])

    def read_new(self):
        """What the flow and the restart path read from the frames written since the last call."""
        frames = read_frames(self.root / "log" / "p0", self.offset)
        if frames:
            self.offset = frames[-1].next_offset
        assert all(f.intact for f in frames)
        payload = b"".join(f.payload for f in frames)
        batch = SourceBatch(f"test:{self.offset}", "events", payload, "p0", True, quarantine=str(self.root / "quarantine.jsonl"))
        return parse_batch(batch, STREAM, datetime.now(UTC)), _insert_ids(payload, "insert_id")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("ack"))
    yield h
    h.log.close()


bodies = st.tuples(st.lists(messages(), min_size=1, max_size=6), st.integers(0, 5), st.sampled_from(["batch", "array", "ndjson", "single"]))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=bodies, seed=st.integers(0, 2**16))
def test_every_accepted_event_is_read_back_once_with_what_was_sent(harness, case, seed):
    batch, style, shape = case
    rnd = random.Random(seed)
    if shape == "ndjson" and style in (1, 2, 4):
        style = 0  # an NDJSON line is one line
    texts = [layout(m, style, rnd) for m in batch]
    path, content_type = "/v1/batch", "application/json"
    if shape == "batch":
        body = '{"batch": [\n' + ",\n".join(texts) + "\n]}"
    elif shape == "array":
        body = "[" + ",".join(texts) + "]"
    elif shape == "ndjson":
        body, content_type = "\r\n".join(texts) + "\n", "application/x-ndjson"
    else:
        batch, body = batch[:1], texts[0]
        path = "/v1/" + batch[0]["type"]
    before = datetime.now(UTC)
    status, answer = harness.post(body.encode(), path=path, content_type=content_type)
    after = datetime.now(UTC)
    read, restart_ids = harness.read_new()
    assert status == 200, (status, answer, body[:500])
    assert answer["accepted"] == len(batch)
    outcomes = {k: v for k, v in read.outcomes.items() if v}
    assert outcomes == {"accepted": len(batch)}, (outcomes, read.errors)
    events = read.events
    assert events.height == len(batch)
    assert len(restart_ids) == len(batch) and restart_ids == events["insert_id"].to_list()
    for message, row in zip(batch, events.iter_rows(named=True), strict=True):
        want = expected(message)
        if message.get("messageId") is not None:
            assert row["insert_id"] == message["messageId"]
        stamp = want.pop("timestamp_ms", None)
        moment = int(row["timestamp"].timestamp() * 1000)
        if stamp is not None:
            assert moment == stamp, (message, row)
        else:  # the API's own clock (no timestamp, or skew-corrected by sentAt)
            assert int(before.timestamp() * 1000) - 1000 <= moment <= int(after.timestamp() * 1000) + 1000
        props, numbers, traits = want.pop("_props"), want.pop("_nums"), want.pop("_traits")
        for field, sent in (("_p", props), ("_tr", traits)):  # JSON objects as text, or null for none
            stored = _object(row[field])
            assert all(type(v) is str for v in stored.values()), (message, row)
            assert stored.keys() == sent.keys() and all(same_value(stored[k], v) for k, v in sent.items()), (message, row)
        stored_numbers = _object(row["_n"])
        assert all(type(v) is float for v in stored_numbers.values()) and stored_numbers == numbers, (message, row)
        got = {k: row[k] for k in want}
        assert got == want, (message, row)


def _object(text: str | None) -> dict:
    """A line's property object (``_p``, ``_n``, ``_tr``): a JSON object written as text, never an empty one (left out)."""
    if text is None:
        return {}
    value = json.loads(text)
    assert isinstance(value, dict) and value, text
    return value


def test_a_pretty_printed_body_is_counted(harness):
    message = {"type": "track", "event": "purchase", "userId": "u1", "messageId": "pp-1", "properties": {"country": "FR", "revenue": 1}}
    crlf = json.dumps({"batch": [{**message, "messageId": "pp-2"}]}, indent=2).replace("\n", "\r\n")
    for text in (json.dumps({"batch": [message]}, indent=2), crlf):
        status, answer = harness.post(text.encode())
        read, ids = harness.read_new()
        assert (status, answer["accepted"]) == (200, 1)
        assert read.outcomes["accepted"] == 1 and read.events["country"].to_list() == ["FR"] and len(ids) == 1


def test_lower_case_time_separators_are_counted_at_their_time(harness):
    moment = datetime.now(UTC).replace(microsecond=0)
    message = {"type": "track", "event": "purchase", "userId": "u1", "timestamp": moment.strftime("%Y-%m-%dt%H:%M:%Sz"),
               "properties": {"country": "FR"}}  # fmt: skip
    status, answer = harness.post(json.dumps({"batch": [message]}).encode())
    read, _ = harness.read_new()
    assert (status, answer["accepted"]) == (200, 1)
    assert read.outcomes["accepted"] == 1 and read.events["timestamp"].to_list() == [moment]


def test_a_null_message_id_is_derived_on_every_endpoint(harness):
    message = {"type": "track", "event": "purchase", "userId": "u1", "messageId": None}
    for path, body in (("/v1/track", message), ("/v1/batch", {"batch": [message]})):
        status, answer = harness.post(json.dumps(body).encode(), path=path)
        read, _ = harness.read_new()
        assert (status, answer["accepted"]) == (200, 1), (path, answer)
        assert read.events["insert_id"].to_list()[0]


def test_numbers_no_float_holds_are_refused_as_measures_and_ignored_elsewhere(harness):
    huge = "1" + "0" * 400
    bad = '{"batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"revenue": ' + huge + "}}]}"
    status, answer = harness.post(bad.encode())
    assert status == 400 and answer["accepted"] == 0 and answer["rejected"][0]["field"] == "properties.revenue"
    ignored = '{"batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"other": %s}, "traits": {"n": %s}}]}'
    status, answer = harness.post((ignored % (huge, huge)).encode())
    read, _ = harness.read_new()
    assert (status, answer["accepted"], read.outcomes["accepted"]) == (200, 1, 1)


def test_every_member_of_a_gzip_body_is_read(harness):
    import gzip

    parts = [json.dumps({"type": "track", "event": "e", "userId": "u", "messageId": f"gz-{i}"}).encode() + b"\n" for i in range(3)]
    body = b"".join(gzip.compress(p) for p in parts)  # what `cat a.gz b.gz c.gz` makes
    scope_headers = {"content-encoding": "gzip"}
    status, answer = harness.post(body, content_type="application/x-ndjson", extra=scope_headers)
    read, _ = harness.read_new()
    assert (status, answer["accepted"], read.outcomes["accepted"]) == (200, 3, 3)
    status, answer = harness.post(gzip.compress(parts[0]) + b"trailing", content_type="application/x-ndjson", extra=scope_headers)
    assert status == 400 and "after the end of its gzip data" in answer["error"]


def test_a_disk_that_fills_at_write_time_answers_503_and_acknowledges_nothing(harness, monkeypatch):
    import errno
    import os

    import rta.ingest.log as log_module

    def full(fd, buffers):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(log_module.os, "writev", full)
    message = {"type": "track", "event": "e", "userId": "u", "messageId": "enospc-1"}
    status, answer = harness.post(json.dumps({"batch": [message]}).encode())
    assert status == 503 and "No space left on device" in answer["error"] and "retry later" in answer["error"]
    assert harness.last_headers.get(b"retry-after") == b"5"
    monkeypatch.undo()
    read, _ = harness.read_new()
    assert read.events.height == 0  # nothing written, nothing acknowledged
    status, answer = harness.post(json.dumps({"batch": [message]}).encode())  # the retry is kept
    read, _ = harness.read_new()
    assert (status, answer["accepted"], read.events["insert_id"].to_list()) == (200, 1, ["enospc-1"])


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(messages(), min_size=1, max_size=5))
def test_both_ways_through_the_api_write_the_same_lines(batch):
    from rta.ingest.fast_path import FastPath
    from rta.ingest.segment import Limits, validate

    for message in batch:  # what the fast path declines (integer ids, numbers over 64 bits) goes the one way only
        message.update({k: str(message[k]) for k in ("userId",) if k in message})
        message.pop("integrations", None)
        props = message.get("properties", {})
        props.update({k: str(props[k]) for k in ("country", "device", "campaign", "path") if k in props})
        props.pop("huge", None)
        message.update(_within_64_bits({k: message[k] for k in ("properties", "traits", "context") if k in message}))
    body = json.dumps({"batch": batch}).encode()
    now = datetime.now(UTC)
    fast = FastPath(STREAM).lines(body, now, Limits(), "10.1.2.3", lambda: "seed")
    slow = validate(body, STREAM, now=now, client_ip="10.1.2.3", request_id="seed")
    assert not slow.rejected
    if fast is not None:
        assert fast == (slow.lines, slow.insert_ids)
    TAKEN.append(fast is not None)


TAKEN: list[bool] = []


def _within_64_bits(value):
    """``value`` with integers clamped to 64 bits (msgspec declines bigger ones: the batch goes the other way)."""
    if isinstance(value, dict):
        return {k: _within_64_bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_within_64_bits(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-(2**63), min(2**63 - 1, value))
    return value


def test_the_fast_path_took_most_of_those_batches():
    TAKEN.clear()
    test_both_ways_through_the_api_write_the_same_lines()  # the comparison is not vacuous
    assert TAKEN and sum(TAKEN) >= 0.8 * len(TAKEN), f"{sum(TAKEN)} of {len(TAKEN)}"


def test_a_number_beyond_any_float_refuses_only_its_event(harness):
    body = b'{"batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"revenue": 1e400}, "traits": {"n": -2E+999}},' \
           b' {"type": "track", "event": "e", "userId": "u", "messageId": "beside-1e400", "traits": {"n": 1e400}}]}'  # fmt: skip
    status, answer = harness.post(body)
    read, _ = harness.read_new()
    assert status == 400 and answer["accepted"] == 1 and [r["index"] for r in answer["rejected"]] == [0]
    assert "64-bit float" in answer["rejected"][0]["reason"] and read.events["insert_id"].to_list() == ["beside-1e400"]


def test_a_batch_context_beside_a_message_context_that_is_no_object(harness):
    body = {"batch": [{"type": "track", "event": "e", "userId": "u", "context": True},
                      {"type": "track", "event": "e", "userId": "u", "messageId": "ctx-ok", "context": {"locale": "de"}}],
            "context": {"locale": "fr", "page": {"path": "/shared"}}}  # fmt: skip
    status, answer = harness.post(json.dumps(body).encode())
    read, _ = harness.read_new()
    assert status == 400 and [(r["index"], r["field"]) for r in answer["rejected"]] == [(0, "context")]
    assert read.events["path"].to_list() == ["/shared"]


def test_ndjson_lines_end_at_newlines_only(harness):
    line = json.dumps({"type": "track", "event": "e", "userId": "u", "messageId": "ls-1", "properties": {"device": "a\u2028b\u2029c\x85"}},
                      ensure_ascii=False)  # fmt: skip
    status, answer = harness.post(line.encode() + b"\r\n", content_type="application/x-ndjson")
    read, _ = harness.read_new()
    assert (status, answer["accepted"], read.events["device"].to_list()) == (200, 1, ["a\u2028b\u2029c\x85"])
