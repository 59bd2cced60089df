"""Erasure end to end: after `rta people delete`, the REST erasure or erase(), nothing about the id is returned anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from rta import col
from rta.cli import app
from rta.compiler.people_ddl import ERASURES_TABLE
from rta.contract.keys import KeyStore
from rta.contract.people import id_hash
from rta.flows.frames import BatchSource
from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.query.people import UnknownPerson
from rta.store.people import ROLLUPS_STAY, erase
from rta.workspace.owner import RUN_FILE
from tests.test_people import NOW, STREAM, _messages, lines
from tests.test_people import people_ws as people_ws  # a fixture, used by name

pytestmark = pytest.mark.core
U1_IDS = ("u1", "a1", "a2")  # u1, the visitor id it identified with, the id it was aliased from
runner = CliRunner()


def _nothing_about(ws, ids: tuple[str, ...]) -> None:
    """No row of any table rta keeps ids in (raw events, traits, aliases, erasures, tallies) holds one of ``ids``."""
    for person_id in ids:
        with pytest.raises(UnknownPerson, match=f"no person {person_id!r}"):
            ws.person(person_id)
    assert not set(ws.people.limit(1000).collect().ids) & set(ids)
    assert ws.events.where(col("user_id").isin(list(ids))).collect().is_empty()
    assert ws.sql(f"SELECT count() AS n FROM events WHERE user_id IN {list(ids)!r}")["n"][0] == 0
    assert ws.sql(f"SELECT count() AS n FROM person_traits WHERE person IN {list(ids)!r}")["n"][0] == 0
    assert ws.sql(f"SELECT count() AS n FROM person_aliases WHERE has({list(ids)!r}, person) OR has({list(ids)!r}, anonymous)")["n"][0] == 0
    tables = ws.read("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
                     "AND engine NOT LIKE 'Aggregating%'", {})["name"].to_list()  # fmt: skip
    assert ERASURES_TABLE in tables and STREAM.raw_table in tables
    for table in tables:  # every row as text: no id anywhere (rollups hold sketches, not ids, and are left out)
        rows = ws.read(f"SELECT toString(tuple(*)) AS row FROM `{table}`", {})["row"].to_list()
        assert not [r for r in rows for i in ids if f"'{i}'" in r], table


def test_erasing_removes_every_id_and_replays_are_dropped(people_ws):
    ws = people_ws
    assert ws.person("u1").ids == U1_IDS
    done = erase(ws.client, ws.plan, "u1", "the test", now=NOW)
    assert done.ids == U1_IDS and dict(done.rows) == {"rta_person_traits": 3, "rta_person_aliases": 2, STREAM.raw_table: 5}
    assert ROLLUPS_STAY in str(done) and "13 rows removed" not in str(done) and "10 rows removed" in str(done)
    _nothing_about(ws, U1_IDS)
    record = ws.read(f"SELECT person_hash, id_hashes, requested_by, rows FROM {ERASURES_TABLE}", {}).row(0)
    assert record == (id_hash("u1"), [id_hash(i) for i in U1_IDS], "the test", 10)
    assert ws.person("u2").traits == {"plan": "free", "company.size": "50"}  # others are untouched
    # The log replays the batch under another key (its insert tokens would hide a replay under the same one):
    # the erased person's events at or before the erasure are dropped, the others' written again; a new visit counts.
    later = {
        "type": "track",
        "event": "page_view",
        "userId": "u1",
        "messageId": "m9",
        "timestamp": (NOW + timedelta(minutes=1)).isoformat(),
    }
    replay = SourceBatch("people:replay", "events", lines([*_messages(), later]))
    run_flow(ws.plan, BatchSource([replay]), ws.client, clock=lambda: NOW + timedelta(minutes=2))
    _nothing_about(ws, ("a1", "a2"))
    assert ws.person("u1").timeline["time"].to_list() == [NOW + timedelta(minutes=1)] and ws.person("u1").traits == {}


def _call(url: str, path: str, key: str | None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers=headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_rest_erasure_needs_an_admin_key(people_ws):
    ws = people_ws
    url = ws.serve()
    try:
        read_key = json.loads((ws.project.root / RUN_FILE).read_text())["key"]
        status, shown = _call(url, "/v1/person?id=a1", read_key)
        assert status == 200 and shown["person"] == "u1" and shown["ids"] == list(U1_IDS) and shown["traits"]["plan"] == "pro"
        assert shown["timeline"][0]["event"] == "purchase" and shown["timeline"][0]["properties"] == {"coupon": "X"}
        assert _call(url, "/v1/people/delete", None, {"id": "u1"})[0] == 401
        status, refused = _call(url, "/v1/people/delete", read_key, {"id": "u1"})
        assert status == 403 and "a read key cannot erase people; use an admin key" in refused["error"]
        _, admin = KeyStore(ws.project.root).create("admin", "privacy desk")
        assert _call(url, "/v1/sql", admin, {"sql": "SELECT 1"})[0] == 403  # an admin key erases and nothing else
        status, body = _call(url, "/v1/people/delete", admin, {"no": "id"})
        assert status == 400 and "send the person's id once as 'id'" in body["error"]
        status, done = _call(url, "/v1/people/delete", admin, {"id": "u1"})
        assert status == 200 and done["total"] == 10 and done["ids"] == list(U1_IDS) and "privacy desk" in done["requested_by"]
        status, gone = _call(url, "/v1/person?id=u1", read_key)
        assert status == 404 and "no person 'u1'" in gone["error"]
        status, counted = _call(url, "/v1/sql", read_key, {"sql": "SELECT count() AS n FROM events WHERE user_id IN ('u1', 'a1', 'a2')"})
        assert status == 200 and counted["data"] == [{"n": 0}]
    finally:
        ws.stop_serving()
    _nothing_about(ws, U1_IDS)


def _cli(*args: str) -> str:
    """`rta` in a process of its own: it finds this one holding the store in the run file."""
    done = subprocess.run([sys.executable, "-m", "rta.cli", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_erases_through_the_running_process_or_the_store(people_ws):
    ws, project = people_ws, str(people_ws.project.root)
    ws.serve()
    try:
        shown = _cli("people", "show", "a2", "-p", project)
        assert "Person u1" in shown and "plan=pro" in shown
        erased = _cli("people", "delete", "u1", "--yes", "-p", project)
        assert "erased person 'u1' (u1, a1, a2) through http://127.0.0.1:" in erased and ROLLUPS_STAY in erased
        assert all(k.revoked for k in KeyStore(ws.project.root).list() if k.kind == "admin")  # the call's key is gone with it
    finally:
        ws.stop_serving()
    _nothing_about(ws, U1_IDS)
    result = runner.invoke(app, ["people", "delete", "u2", "--yes", "-p", project])  # nobody serves: the store itself
    assert result.exit_code == 0 and "erased person 'u2' (1 id: u2): 4 rows removed" in result.output and ROLLUPS_STAY in result.output
    _nothing_about(ws, ("u2",))
    missing = runner.invoke(app, ["people", "show", "u2", "-p", project])
    assert missing.exit_code == 2 and "no person 'u2'" in missing.output
