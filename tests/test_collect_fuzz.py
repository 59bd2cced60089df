"""Hostile input for the collect API over real HTTP: never a 5xx, a reason on every 4xx, no hang, nothing acknowledged lost.

Seeded and bounded: the same ~2,500 requests on every run (``tests/fuzz_bodies.py``), sent one
after the other to one ``rta run`` on loopback. Every answer is checked as it comes; a valid
canary follows every few requests, so the server is seen to still work. Then the promise
across the boundary: the raw events table holds exactly what the answers acknowledged (the
``fz-`` ids, one row each; the derived ids through ``campaign = 'fuzz'``; everything through
the whole table), the rollup counts the same, and the flow found nothing invalid to set aside.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fuzz_bodies import CAMPAIGN, TRACKED, Fuzz, Raw, Shot, dump
from tests.ingest_helpers import cli, make_project, query_total, read_to_close, start

pytestmark = [pytest.mark.store, pytest.mark.flow, pytest.mark.slow]

SEED = 20261202
REQUESTS = 2_500
TIMEOUT = 10.0  # seconds; an answer slower than this is a hang
RAW_TIMEOUT = 1.5  # seconds on a socket whose request never ends: silence is the right answer there
CANARY_EVERY = 10
CUT_SHORT, CUT_MARKER = "cut-short", "cut-marker"  # campaigns of the disconnect test
OF_THE_FUZZ = f"campaign NOT IN ('{CUT_SHORT}', '{CUT_MARKER}')"  # every row but the disconnect test's


@dataclass
class Record:
    """What was sent and what the answers said."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    accepted: int = 0  # every answer's ``accepted``
    accepted_fuzz: int = 0  # answers to requests whose messages all carry campaign 'fuzz'
    accepted_canary: int = 0
    acknowledged: set[str] = field(default_factory=set)  # fz- ids the answers acknowledged
    slowest: tuple[float, str] = (0.0, "")
    seconds: float = 0.0

    def problem(self, what: str, detail: object) -> None:
        self.problems.append(f"{what}: {str(detail)[:600]}")


def _request(port: int, shot: Shot) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest(shot.method, shot.path, skip_accept_encoding=True)
        for name, value in shot.headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(shot.body)))
        conn.endheaders()
        try:
            conn.send(shot.body)
        except (BrokenPipeError, ConnectionResetError):  # refused before the end of the body: the answer may be there
            pass
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def _raw(port: int, raw: Raw) -> list[tuple[int, dict[str, str], bytes]] | str:
    """The answers on the socket (1xx skipped), or 'silent' / 'closed'."""
    with socket.create_connection(("127.0.0.1", port), timeout=RAW_TIMEOUT if raw.silent_ok else TIMEOUT) as conn:
        for i, piece in enumerate(raw.pieces):
            if i and raw.pause:
                time.sleep(raw.pause)
            try:
                conn.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        received, silent = read_to_close(conn, close_write=raw.close_write)
    if silent and not received:
        return "silent"
    return _responses(received) if received else "closed"


def _responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """HTTP/1.1 responses read off a socket (a garbled one ends the list with status 0)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            out.append((0, {}, data))
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        status = int(parts[1])
        if 100 <= status < 200:
            data = rest
            continue
        if headers.get("transfer-encoding") == "chunked":
            body, rest = _unchunk(rest)
        else:
            size = int(headers.get("content-length", len(rest)))
            body, rest = rest[:size], rest[size:]
        out.append((status, headers, body))
        data = rest
    return out


def _unchunk(data: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            return body, data.partition(b"\r\n")[2]
        body, data = body + data[:size], data[size + 2 :]


def _judge(record: Record, kind: str, status: int, headers: dict[str, str], body: bytes, item: Shot | Raw, ids: tuple | None) -> None:
    """Check one answer and add what it acknowledged."""
    method = item.method if isinstance(item, Shot) else "POST"
    shown = f"{kind} {method} {getattr(item, 'path', '')} -> {status} {body[:300]!r}"
    record.statuses[str(status)] += 1
    if status >= 500 and not (status == 503 and "retry-after" in headers):
        record.problem("5xx", shown)
    if status == 400 and body == b"Invalid HTTP request received." and isinstance(item, Raw):
        return  # the HTTP server's own refusal, before the app: plain text
    answer: object = None
    if method != "HEAD" and status != 204:
        try:
            answer = json.loads(body)
        except ValueError:
            record.problem("not JSON", shown)
            return
    if not isinstance(answer, dict):
        if method != "HEAD" and status != 204:
            record.problem("not a JSON object", shown)
        return
    if 400 <= status < 500 and not (isinstance(answer.get("error"), str) and answer["error"].strip()) and not answer.get("rejected"):
        record.problem("4xx without a reason", shown)
    accepted = answer.get("accepted", 0)
    if not isinstance(accepted, int) or accepted < 0:
        record.problem("odd accepted", shown)
        return
    record.accepted += accepted
    carries_fuzz = ids is not None  # the requests whose messages the test knows all carry campaign 'fuzz'
    if carries_fuzz:
        record.accepted_fuzz += accepted
    if status >= 300 and "rejected" not in answer:
        if accepted:
            record.problem("accepted on a refused request", shown)
        if getattr(item, "clean", False):
            record.problem("a valid request refused", shown)
        return
    if ids is None:
        return
    rejected = answer.get("rejected") or []
    indices = {r.get("index") for r in rejected if isinstance(r, dict)}
    if any(not isinstance(r, dict) or not str(r.get("reason", "")).strip() for r in rejected):
        record.problem("a rejection without a reason", shown)
    if not indices <= set(range(len(ids))):
        record.problem("rejected indices out of range", shown)
    kept = [ids[i] for i in range(len(ids)) if i not in indices]
    duplicates = answer.get("duplicates", 0)
    if accepted + duplicates != len(kept):
        record.problem(f"accepted {accepted} + duplicates {duplicates} != {len(kept)} kept", shown)
    if getattr(item, "again", False):
        if accepted:
            record.problem("a retry acknowledged again", shown)
        return
    if duplicates:
        record.problem("fresh messages taken for duplicates", shown)
    if getattr(item, "clean", False) and (status != 200 or rejected):
        record.problem("a valid request refused", shown)
    record.acknowledged.update(i for i in kept if i is not None)


def _canary(port: int, key: str, n: int, record: Record) -> None:
    """A valid request must still be acknowledged."""
    message = {"type": "track", "event": "canary", "userId": "c", "messageId": f"cn-{n}", "properties": {"campaign": "canary"}}
    shot = Shot("canary", "POST", "/v1/batch", [("Authorization", f"Bearer {key}")], dump({"batch": [message]}).encode())
    try:
        status, _, body = _request(port, shot)
    except OSError as err:
        record.problem("the server stopped answering", f"canary {n}: {err!r}")
        return
    answer = json.loads(body) if status == 200 else {}
    if status != 200 or answer.get("accepted") != 1:
        record.problem("the canary was refused", f"{status} {body[:300]!r}")
    record.accepted += answer.get("accepted", 0)
    record.accepted_canary += answer.get("accepted", 0)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("collect-fuzz") / "app")
    key = cli(project, "keys", "create", "write", "--name", "fuzz")
    running = start(project)
    record = Record()
    items = Fuzz(SEED, key).requests(REQUESTS)
    began = time.monotonic()
    try:
        for n, item in enumerate(items):
            record.sent[item.kind] += 1
            started = time.monotonic()
            if isinstance(item, Shot):
                try:
                    status, headers, body = _request(running.port, item)
                except TimeoutError:
                    record.problem("no answer", f"{item.kind} {item.method} {item.path} within {TIMEOUT}s, {len(item.body):,} bytes")
                    record.statuses["timeout"] += 1
                except OSError as err:
                    record.problem("connection failed", f"{item.kind} {item.method} {item.path}: {err!r}")
                    record.statuses["reset"] += 1
                else:
                    _judge(record, item.kind, status, headers, body, item, item.ids)
            else:
                answers = _raw(running.port, item)
                if isinstance(answers, str):
                    record.statuses[answers] += 1
                    if answers == "silent" and not item.silent_ok:
                        record.problem("no answer on a socket", f"{item.kind}: {item.pieces[0][:200]!r}")
                else:
                    for i, (status, headers, body) in enumerate(answers):
                        if status == 0:
                            record.problem("garbled answer", f"{item.kind}: {body[:200]!r}")
                            continue
                        _judge(record, item.kind, status, headers, body, item, item.ids[i] if i < len(item.ids) else None)
            took = time.monotonic() - started
            if took > record.slowest[0]:
                record.slowest = (took, f"{item.kind} {getattr(item, 'path', '')}")
            if isinstance(item, Raw) or n % CANARY_EVERY == 0:
                _canary(running.port, key, n, record)
        _canary(running.port, key, len(items), record)
        record.seconds = time.monotonic() - began
        yield running, key, record
    finally:
        running.stop()


def test_every_answer_is_under_500_with_a_reason_and_the_server_keeps_answering(fuzzed):
    _, _, record = fuzzed
    assert sum(record.sent.values()) == REQUESTS
    kinds = Counter(p.partition(":")[0] for p in record.problems)
    shown = [next(p for p in record.problems if p.startswith(kind + ":")) for kind in kinds]
    assert not record.problems, f"{len(record.problems)} problems ({dict(kinds)}), the first of each kind:\n" + "\n".join(shown)
    assert record.slowest[0] < TIMEOUT


def _csv(project: Path, sql: str) -> list[str]:
    return cli(project, "sql", sql, "--format", "csv").splitlines()[1:]


def test_every_acknowledged_event_is_stored_once_and_counted_by_the_rollup(fuzzed):
    running, _, record = fuzzed
    project = running.project
    everything = query_total(project, f"SELECT count() FROM events WHERE {OF_THE_FUZZ}", expect=record.accepted, timeout=90)
    fuzz = query_total(project, f"SELECT count() FROM events WHERE campaign = '{CAMPAIGN}'", expect=record.accepted_fuzz, timeout=5)
    canary = query_total(project, "SELECT count() FROM events WHERE campaign = 'canary'", expect=record.accepted_canary, timeout=5)
    stored_ids = _csv(project, f"SELECT arrayStringConcat(groupArray(insert_id), ' ') FROM events WHERE insert_id LIKE '{TRACKED}%'")
    ids = Counter(stored_ids[0].strip('"').split()) if stored_ids and stored_ids[0].strip('"') else Counter()
    rollup_all = query_total(project, f"SELECT sum(events_n__n) FROM traffic_1h WHERE {OF_THE_FUZZ}", expect=record.accepted)
    rollup = query_total(
        project, f"SELECT sum(events_n__n) FROM traffic_1h WHERE campaign = '{CAMPAIGN}'", expect=record.accepted_fuzz, timeout=5
    )
    statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(record.statuses.items()))
    print(
        f"\ncollect fuzz, seed {SEED}: {sum(record.sent.values()):,} requests in {record.seconds:.1f}s "
        f"(slowest {record.slowest[0]:.2f}s, {record.slowest[1]})\n"
        f"  sent      {', '.join(f'{k}: {n:,}' for k, n in sorted(record.sent.items()))}\n"
        f"  statuses  {statuses}\n"
        f"  accepted  {record.accepted:,} in all; {record.accepted_fuzz:,} campaign 'fuzz' ({len(record.acknowledged):,} fz- ids); "
        f"{record.accepted_canary:,} canaries\n"
        f"  stored    {everything:,} in all; {fuzz:,} campaign 'fuzz' ({sum(ids.values()):,} fz- rows, {len(ids):,} ids); "
        f"{canary:,} canaries\n"
        f"  rollup    {rollup_all:,} in all; {rollup:,} campaign 'fuzz'"
    )
    lost = sorted(record.acknowledged - set(ids))
    unacknowledged = sorted(set(ids) - record.acknowledged)
    twice = sorted(i for i, n in ids.items() if n > 1)
    assert (lost[:20], unacknowledged[:20], twice[:20]) == ([], [], [])
    assert (everything, fuzz, canary) == (record.accepted, record.accepted_fuzz, record.accepted_canary)
    assert (rollup_all, rollup) == (record.accepted, record.accepted_fuzz)


def test_the_flow_found_nothing_invalid_and_nothing_raised(fuzzed):
    running, _, record = fuzzed
    project = running.project
    query_total(project, f"SELECT count() FROM events WHERE {OF_THE_FUZZ}", expect=record.accepted, timeout=90)  # the flow is done
    outcomes = dict(
        line.rsplit(",", 1)
        for line in _csv(project, "SELECT outcome, sum(events) FROM rta_ingest_stats WHERE stream = 'events' GROUP BY outcome")
    )
    assert not {"invalid", "quarantined"} & set(outcomes), outcomes
    stored = query_total(project, "SELECT count() FROM events")
    counted = "SELECT sum(events) FROM rta_ingest_stats WHERE stream = 'events' AND outcome = 'accepted'"
    assert query_total(project, counted, expect=stored) == stored  # nothing stored that the stats do not count, and back
    assert not list((project / ".rta" / "log").rglob("quarantine.jsonl"))
    assert "Traceback" not in running.log()


def test_a_body_cut_short_by_a_disconnect_is_not_kept(fuzzed):
    """A request whose body ends before its Content-Length is unfinished: nothing in it may count.

    Otherwise a client that loses its connection mid-upload, and retries, has the first part
    counted twice when its messages have no messageId (the derived ids hash a different body).
    """
    running, key, _ = fuzzed
    for close_write in (True, False):  # the client half-closes, or gives up waiting and closes
        lines = [{"type": "track", "event": "e", "userId": "u", "properties": {"campaign": CUT_SHORT, "n": close_write}}] * 3
        body = "".join(dump(m) + "\n" for m in lines).encode()  # three whole lines of the body's NDJSON
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {len(body) + 500}\r\nConnection: close\r\n\r\n"
        ).encode()
        answers = _raw(running.port, Raw(CUT_SHORT, (head + body,), close_write=close_write, silent_ok=True))
        assert isinstance(answers, str) or all(status >= 400 for status, _, _ in answers), answers
    marker = {"type": "track", "event": "e", "userId": "u", "messageId": CUT_MARKER, "properties": {"campaign": CUT_MARKER}}
    shot = Shot("marker", "POST", "/v1/batch", [("Authorization", f"Bearer {key}")], dump({"batch": [marker]}).encode())
    assert _request(running.port, shot)[0] == 200
    query_total(running.project, f"SELECT count() FROM events WHERE campaign = '{CUT_MARKER}'", expect=1)  # the flow is past them
    stored = query_total(running.project, f"SELECT count() FROM events WHERE campaign = '{CUT_SHORT}'")
    assert stored == 0, f"{stored} events of two unfinished requests were kept"
