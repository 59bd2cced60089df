"""Applying a plan to a store that an older rta created."""

from __future__ import annotations

import pytest
import sqlglot.expressions as exp

from rta.compiler.ddl import STATS_TABLE
from rta.store.schema import apply
from tests.conftest import shop_plan

pytestmark = pytest.mark.store


def test_columns_added_by_newer_releases_are_added_to_old_tables(client):
    client.command(
        f"CREATE TABLE {STATS_TABLE} (minute DateTime('UTC'), stream String, outcome String, events UInt64) "
        "ENGINE = MergeTree ORDER BY (stream, outcome, minute)"
    )
    client.command(f"INSERT INTO {STATS_TABLE} VALUES (now(), 'events', 'accepted', 3)")
    apply(shop_plan(), client)
    apply(shop_plan(), client)  # and again: nothing left to add
    columns = {name for (name,) in client.query(f"SELECT name FROM system.columns WHERE table = '{STATS_TABLE}'").result_rows}
    assert {"last_seen", "newest_event"} <= columns
    assert client.query(f"SELECT sum(events) FROM {STATS_TABLE}").result_rows == [(3,)]


def test_projections_added_by_newer_releases_are_added_and_queries_read_them(client):
    plan = shop_plan()
    audience = next(r for r in plan.rollups if r.name == "audience")
    day = next(t for t in audience.tables if t.grain == "1d")
    old = next(s for s in plan.ddl if isinstance(s.this, exp.Schema) and s.this.this.name == day.table).copy()
    for projection in list(old.this.find_all(exp.ProjectionDef)):
        projection.pop()
    client.command(old.sql(dialect="clickhouse"))  # the table as an older rta made it
    apply(plan, client)
    apply(plan, client)  # and again: nothing left to add
    names = client.query(f"SELECT name FROM system.projections WHERE table = '{day.table}' ORDER BY name").result_rows
    assert names == [("by_country",), ("by_device",)]
    client.command(
        f"INSERT INTO {day.table} (bucket, country, device, visitors__uniq) "
        "SELECT toStartOfDay(now()), ['US', 'FR'][number % 2 + 1], ['mobile', 'desktop'][number % 2 + 1], "
        "uniqCombined64State(12)(toString(number)) FROM numbers(10) GROUP BY number"
    )
    sql = f"SELECT country, uniqCombined64Merge(12)(visitors__uniq) FROM {day.table} GROUP BY country ORDER BY country"
    plan_text = "\n".join(row[0] for row in client.query("EXPLAIN " + sql).result_rows)
    assert "ReadFromMergeTree (by_country)" in plan_text
    assert client.query(sql).result_rows == [("FR", 5), ("US", 5)]


def test_a_server_client_sends_no_session_id_so_queries_can_run_at_once():
    # ClickHouse runs one query at a time per session ("session is locked"), and the query API
    # runs panels and requests side by side: the client must not pin a session.
    import http.server
    import threading

    from rta.store.client import connect

    seen: list[str] = []

    class Answer(http.server.BaseHTTPRequestHandler):  # just enough of ClickHouse's HTTP interface to connect
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            seen.append(self.path)
            out = b"26.1.1.1\tUTC\n" if "version()" in body else b"1\n" if body.strip() == "SELECT 1" else b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = connect(f"http://127.0.0.1:{server.server_address[1]}")
        client.command("SELECT 1")
    finally:
        server.shutdown()
    assert len(seen) >= 4 and not any("session_id" in path for path in seen), seen
