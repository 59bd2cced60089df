"""The SQL console refuses everything but one read-only SELECT over the project's tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rta import col
from rta.errors import QueryError
from tests.conftest import QUERY_NOW

pytestmark = pytest.mark.store
OUTFILE = Path("/tmp/rta-console-attack.txt")

ATTACKS = [
    # writes and schema changes
    "INSERT INTO events SELECT * FROM events",
    "INSERT INTO rta_ingest_stats VALUES (now(), 'events', 'accepted', 1, now())",
    "DROP TABLE events",
    "DROP TABLE IF EXISTS rta_ingest_stats",
    "TRUNCATE TABLE events",
    "ALTER TABLE events DELETE WHERE 1",
    "ALTER TABLE events UPDATE event = 'x' WHERE 1",
    "ALTER TABLE events DROP COLUMN event",
    "DELETE FROM events WHERE 1",
    "CREATE TABLE evil (a Int8) ENGINE = Memory",
    "CREATE TABLE evil ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM events",
    "CREATE VIEW v AS SELECT 1",
    "CREATE DATABASE evil",
    "RENAME TABLE events TO gone",
    "OPTIMIZE TABLE events FINAL",
    "ATTACH TABLE evil",
    "DETACH TABLE events",
    "EXCHANGE TABLES events AND rta_ingest_stats",
    # settings, sessions and server control
    "SET readonly = 0",
    "SET max_execution_time = 0",
    "SELECT count() FROM events SETTINGS max_result_rows = 0",
    "SELECT count() FROM events SETTINGS readonly = 0",
    "SYSTEM SHUTDOWN",
    "SYSTEM DROP DNS CACHE",
    "KILL QUERY WHERE 1",
    "GRANT ALL ON *.* TO default",
    "CREATE USER evil IDENTIFIED BY 'x'",
    # several statements, hidden statements
    "SELECT 1; DROP TABLE events",
    "SELECT 1;SELECT 2",
    "SELECT 1 /* ; */ ; DROP TABLE events",
    "SELECT 1 -- \n; DROP TABLE events",
    # files and the network
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://169.254.169.254/latest/meta-data/', 'LineAsString')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)",
    "SELECT * FROM s3('http://127.0.0.1/bucket/x.csv')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1/x', 'TSV')",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
    "SELECT * FROM jdbc('jdbc:x', 't')",
    "SELECT * FROM odbc('DSN=x', 't')",
    "SELECT * FROM executable('ls', 'TSV', 'x String')",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM input('x String')",
    "SELECT * FROM sqlite('/tmp/x.db', 't')",
    "SELECT * FROM events WHERE event IN (SELECT * FROM file('/etc/passwd', 'LineAsString'))",
    "SELECT * FROM events JOIN url('http://127.0.0.1/', 'CSV') AS u ON 1",
    "WITH x AS (SELECT * FROM file('/etc/hosts', 'LineAsString')) SELECT * FROM x",
    "SELECT 1 UNION ALL SELECT * FROM file('/etc/passwd', 'LineAsString')",
    f"SELECT 1 INTO OUTFILE '{OUTFILE}'",
    f"SELECT * FROM events INTO OUTFILE '{OUTFILE}' FORMAT CSV",
    "SELECT dictGet('d', 'x', toUInt64(1))",
    "SELECT joinGet('j', 'x', 1)",
    "SELECT count() FROM events FORMAT JSON",
    # outside the project's tables
    "SELECT * FROM system.users",
    "SELECT * FROM `system`.`tables`",
    "SELECT name FROM system.tables",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM other_db.events",
    "SELECT * FROM numbers(1000000000000)",
    "SELECT * FROM merge(currentDatabase(), '^rta')",
    "SELECT * FROM generateRandom('a Int8')",
    "SELECT * FROM not_a_table",
    # scope: a CTE name stands for the CTE only where its WITH is visible
    "SELECT * FROM (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS a, rta_alert_state AS b LIMIT 3",
    "SELECT * FROM rta_alert_state JOIN (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS s ON 1",
    "SELECT * FROM rta_alert_state WHERE 1 IN (WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state)",
    "SELECT 1 FROM rta_alert_state UNION ALL (WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state)",
    "WITH t AS (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) SELECT * FROM t, rta_alert_state",
    "WITH rta_alert_state AS (SELECT * FROM rta_alert_state) SELECT * FROM rta_alert_state",
    "WITH (SELECT 1) AS rta_alert_state SELECT * FROM rta_alert_state",
    "SELECT count() FROM events WHERE 'x' IN rta_alert_state",
    "SELECT count() FROM events WHERE 'x' IN (default.rta_alert_state)",
    "SELECT * FROM (SELECT 1 AS x) AS rta_alert_state, rta_alert_state",
    # server probes and functions off the allow-list
    "SELECT getServerSetting('max_server_memory_usage')",
    "SELECT getSetting('readonly')",
    "SELECT hasColumnInTable('default', 'rta_alert_state', 'state')",
    "SELECT currentDatabase()",
    "SELECT currentUser()",
    "SELECT version()",
    "SELECT `version`()",
    "SELECT hostName()",
    "SELECT uptime()",
    "SELECT file('/etc/passwd')",
    "SELECT * APPLY(file) FROM events",
    "SELECT toString(currentDatabase()) FROM events",
    "SELECT arrayMap(x -> hostName(), [1, 2])",
    "SELECT sleep(3)",
    "SELECT globalIn('x', rta_alert_state)",
    "SELECT map(x)",
    "SELECT " + "(" * 5_000 + "1" + ")" * 5_000,
    # junk
    "",
    "   ",
    "SELEC 1",
    "SELECT * FROM events WHERE",
    "x" * 100_001,
]


def test_the_attack_corpus_is_refused(shop_ws):
    assert len(ATTACKS) >= 50
    OUTFILE.unlink(missing_ok=True)
    for attack in ATTACKS:
        with pytest.raises(QueryError, match="refused: ") as refusal:
            shop_ws.sql(attack)
        assert len(str(refusal.value)) > len("refused: ") + 5, attack  # says why
    assert not OUTFILE.exists()
    # Everything is still there.
    assert shop_ws.sql("SELECT count() AS n FROM events")["n"][0] == 6_000


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("DROP TABLE events", "DROP statements are not allowed; the console is read-only"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function \"file('/etc/passwd', 'LineAsString')\""),
        ("SELECT count() FROM events SETTINGS max_result_rows = 0", "a SETTINGS clause; limits and output format are fixed by rta"),
        ("SELECT 1; DROP TABLE events", "2 statements given; send one SELECT at a time"),
        ("SELECT * FROM evnts", "unknown table 'evnts'; did you mean 'events'?"),
        ("SELECT * FROM system.users", "table 'system.users' is outside the project"),
        ("SELECT dictGet('d', 'x', toUInt64(1))", "function 'dictGet' reaches outside the database"),
    ],
)
def test_refusals_say_why(shop_ws, statement, reason):
    with pytest.raises(QueryError, match="refused: " + reason.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        shop_ws.sql(statement)


def test_show_tables_lists_the_names_to_query_and_no_statement_makes_sqlglot_warn(shop_ws, caplog):
    with caplog.at_level(logging.WARNING):
        listed = shop_ws.sql("show tables;")
        for statement in ("SHOW CREATE TABLE events", "DESCRIBE events", "EXPLAIN SELECT 1", "SELECT 1; SHOW TABLES"):
            with pytest.raises(QueryError, match="refused: ") as refused:
                shop_ws.sql(statement)
            assert "SHOW TABLES lists the tables" in str(refused.value) or "SHOW" not in statement.split()[0]
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("sqlglot")]
    names = dict(listed.select("name", "stored_as").iter_rows())
    assert names["events"] == shop_ws.plan.stream("events").raw_table and names["ingest_stats"] == "rta_ingest_stats"
    assert "rta_ingest_stats" not in names and listed["name"].to_list() == sorted(names)  # real names only where none is friendlier
    for name in names:  # every name listed is one the console takes
        assert shop_ws.sql(f"SELECT count() AS n FROM {name}").height == 1


def test_analysts_query_raw_events_and_rollups_by_friendly_names(shop_ws):
    by_event = shop_ws.sql("SELECT event, count() AS n FROM events GROUP BY event ORDER BY n DESC")
    assert by_event["n"].sum() == 6_000 and by_event["event"][0] == "page_view"
    rollup = shop_ws.sql(
        "SELECT sum(page_views__n) AS views, uniqCombined64Merge(12)(visitors__uniq) AS v FROM traffic_1d, audience_1d LIMIT 1"
    )
    assert rollup.height == 1
    with_cte = shop_ws.sql("WITH t AS (SELECT country, count() AS n FROM events GROUP BY country) SELECT max(n) AS top FROM t")
    assert with_cte["top"][0] > 0


def test_limits_are_enforced_by_clickhouse(shop_ws):
    with pytest.raises(QueryError, match="the query failed: .*Limit for result exceeded"):
        shop_ws.sql("SELECT number FROM events ARRAY JOIN range(100) AS number")


@pytest.mark.parametrize(
    "value",
    ["US' OR '1'='1", "US\\' OR 1=1 --", "'; DROP TABLE rta_ingest_stats; --", 'US") OR ("1"="1', "{p0:String}", "US\x00", "%' OR 1=1 #"],
)
def test_filter_values_are_data_not_sql(shop_ws, value):
    frame = shop_ws.query("page_views", last="2d", grain="1d", where={"country": value}, now=QUERY_NOW, fill_gaps=False, cache=False)
    assert frame.height == 0  # no country has that name; nothing was injected
    frame = shop_ws.query("page_views", last="2d", grain="1d", where=col("country").isin(["US", value]), now=QUERY_NOW, cache=False)
    us = shop_ws.query("page_views", last="2d", grain="1d", where={"country": "US"}, now=QUERY_NOW, cache=False)
    assert frame["page_views"].to_list() == us["page_views"].to_list()
    assert shop_ws.sql("SELECT count() AS n FROM ingest_stats")["n"][0] > 0


def test_the_corpus_statements_that_pass_run(shop_ws):
    from tests.test_console_corpus import analyst_statements, read_corpus

    statements = [c.statement for c in read_corpus() if not c.expected.startswith("refused: ")] + analyst_statements()
    failed = {}
    for statement in statements:
        try:
            shop_ws.sql(statement)
        except QueryError as err:
            failed[statement] = str(err)
    assert not failed


def test_a_cte_shadows_a_table_only_inside_its_own_query(shop_ws):
    inside = "WITH events AS (SELECT 1 AS x) SELECT count() AS n FROM events"
    assert shop_ws.sql(inside)["n"][0] == 1
    sibling = "SELECT a.n, b.n FROM (WITH events AS (SELECT 1 AS n) SELECT n FROM events) AS a, (SELECT count() AS n FROM events) AS b"
    assert shop_ws.sql(sibling).row(0) == (1, 6_000)
    nested = "WITH events AS (SELECT 1 AS x) SELECT (SELECT count() FROM events) AS n"
    assert shop_ws.sql(nested)["n"][0] == 1
    both = "WITH t AS (SELECT country FROM events) SELECT count() AS n FROM t UNION ALL SELECT count() AS n FROM t"
    assert shop_ws.sql(both)["n"].to_list() == [6_000, 6_000]
    with_rollup = "SELECT uniqCombined64Merge(12)(visitors__uniq) AS v FROM audience_1d"
    assert 0 < shop_ws.sql(with_rollup)["v"][0] <= 2_000


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            "SELECT * FROM (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS a, rta_alert_state AS b",
            "unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here",
        ),
        ("SELECT getServerSetting('max_server_memory_usage')", "function 'getServerSetting' reads the server's settings or metadata"),
        ("SELECT currentDatabase()", "function 'currentDatabase' reads the server's settings or metadata"),
        ("SELECT file('/etc/passwd')", "function 'file' reaches outside the database"),
        ("SELECT 'x' IN rta_alert_state", "IN 'rta_alert_state': ClickHouse reads a bare name after IN as a table"),
        ("SELECT sleep(3)", "function 'sleep' is not on the console's list of analyst functions"),
        ("SELECT map(x)", "cannot parse the statement"),
        ("SELECT " + "(" * 5_000 + "1" + ")" * 5_000, "the statement nests too deeply to parse"),
    ],
)
def test_the_api_refuses_with_a_400_that_names_the_problem(shop_ws, tmp_path, statement, reason):
    import asyncio

    import httpx

    from rta.contract.keys import KeyStore
    from rta.query.api import QueryApi

    keys = KeyStore(tmp_path)
    _, read = keys.create("read", "console")

    app = QueryApi(shop_ws, keys)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://rta") as client:
            return await client.post("/v1/sql", json={"sql": statement}, headers={"Authorization": f"Bearer {read}"})

    response = asyncio.run(post())
    app.pool.shutdown()
    assert response.status_code == 400 and response.json()["error"].startswith("refused: " + reason)
