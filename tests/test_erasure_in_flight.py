"""Erasure is final under `rta run`: a person's events still in flight when they are erased never land.

Over loopback HTTP: the victim's events are stored, then a backlog (the victim's events among
others') is acknowledged by the collect API and the erasure is asked for at once, while the flow is
behind. Once the flow has drained the backlog no raw event, trait or alias of the victim is left,
every other person's event is counted, and the victim's events sent after the erasure are kept.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ingest_helpers import Running, cli, make_project, post, query_total, start

pytestmark = [pytest.mark.store, pytest.mark.flow]
VICTIM = "victim"
REQUESTS, PER_REQUEST = 40, 2_000  # the backlog: 80,000 events, the limit per request each
EVERY = 20  # one event in EVERY of the backlog is the victim's


def _message(i: int, user: str, at: datetime, prefix: str) -> dict[str, object]:
    message: dict[str, object] = {"type": "track", "event": "view", "userId": user, "messageId": f"{prefix}-{i}",
                                  "timestamp": at.isoformat(), "properties": {"country": "FR"}}  # fmt: skip
    if user == VICTIM and i % 100 == 0:  # the victim's traits and a visitor id of theirs come in flight too
        message |= {"type": "identify", "anonymousId": f"anon-{i}", "traits": {"email": "victim@example.com"}}
    return message


def _body(messages: list[dict[str, object]]) -> bytes:
    return json.dumps({"batch": messages}).encode()


def _backlog(at: datetime) -> tuple[list[bytes], int]:
    """The requests of the backlog, and how many of their events are the victim's."""
    bodies, victims = [], 0
    for r in range(REQUESTS):
        users = [VICTIM if (r * PER_REQUEST + i) % EVERY == 0 else f"u{i % 500}" for i in range(PER_REQUEST)]
        victims += users.count(VICTIM)
        bodies.append(_body([_message(r * PER_REQUEST + i, u, at, "backlog") for i, u in enumerate(users)]))
    return bodies, victims


def _count(project: Path, where: str, table: str = "events", *, expect: int | None = None, timeout: float = 30.0) -> int:
    return query_total(project, f"SELECT count() FROM {table} WHERE {where}", expect=expect, timeout=timeout)


def _erase_while_in_flight(running: Running, write_key: str, admin_key: str) -> None:
    project, url = running.project, running.url
    before = datetime.now(UTC) - timedelta(minutes=1)
    first = [_message(i, VICTIM if i % 2 else "u0", before, "first") for i in range(200)]
    assert post(f"{url}/v1/batch", _body(first), write_key)[0] == 200
    assert _count(project, f"user_id = '{VICTIM}'", expect=100) == 100  # stored before the erasure

    bodies, in_flight = _backlog(datetime.now(UTC))
    with ThreadPoolExecutor(4) as pool:  # acknowledged (in the log) as fast as the API takes them
        assert {s for s, _ in pool.map(lambda b: post(f"{url}/v1/batch", b, write_key), bodies)} == {200}
    status, erased = post(f"{url}/v1/people/delete", json.dumps({"id": VICTIM}).encode(), None,
                          headers={"Authorization": f"Bearer {admin_key}"})  # fmt: skip
    assert status == 200, erased
    removed = sum(n for table, n in erased["rows"].items() if "person" not in table)  # the raw events' table
    assert removed < 100 + in_flight, f"the flow was not behind: all {removed:,} of the victim's events were stored before the erasure"

    # Sent after the erasure: new data, kept (only events at or before the erasure are dropped).
    after = datetime.fromisoformat(erased["at"]) + timedelta(seconds=1)
    later = [_message(i, VICTIM, after, "after") for i in range(1, 51)]  # no identify among them (i % 100 != 0)
    assert post(f"{url}/v1/batch", _body(later), write_key)[0] == 200
    others = 100 + REQUESTS * PER_REQUEST - in_flight
    assert _count(project, f"user_id != '{VICTIM}'", expect=others, timeout=240) == others  # drained, everyone else counted
    assert _count(project, f"user_id = '{VICTIM}'", expect=50, timeout=60) == 50
    assert _count(project, f"user_id = '{VICTIM}' AND timestamp <= parseDateTime64BestEffort('{erased['at']}', 3)") == 0
    assert _count(project, f"person = '{VICTIM}'", "person_traits") == 0
    assert _count(project, f"person = '{VICTIM}' OR anonymous LIKE 'anon-%'", "person_aliases") == 0
    # Rollups hold no personal data and stay: every other event is counted; the victim's in flight are unless the
    # flow's early drop (its erased ids, read every 10 s) saw the erasure before parsing them.
    deadline = time.monotonic() + 60
    while (rollup := query_total(project, "SELECT toInt64(sum(events_n__n)) FROM traffic_1m")) < others + 150:
        assert time.monotonic() < deadline, f"the rollup counts {rollup:,} events, fewer than the {others + 150:,} kept"
        time.sleep(0.3)
    assert rollup <= others + 150 + in_flight


def _keys(project: Path) -> tuple[str, str]:
    return cli(project, "keys", "create", "write"), cli(project, "keys", "create", "admin")


def test_events_in_flight_when_a_person_is_erased_never_land(tmp_path):
    project = make_project(tmp_path / "app")
    running = start(project)
    try:
        _erase_while_in_flight(running, *_keys(project))
    finally:
        running.stop()


@pytest.mark.slow
def test_every_process_of_a_cluster_honours_an_erasure(tmp_path):
    project = make_project(tmp_path / "app")
    (project / "rta.toml").write_text('[store]\ndsn = "chdb://data"\n[ingest]\npartitions = 2\n')
    running = start(project, "--processes", "2")
    try:
        _erase_while_in_flight(running, *_keys(project))
    finally:
        running.stop()
    worker = [line for line in running.log().splitlines() if line.startswith("rta flow worker 1:")]
    assert worker and "events read 0 " not in worker[0], running.log()  # the second process flowed its share
