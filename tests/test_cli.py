"""The `rta` command, as a user types it: results and error messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from rta.cli import app

runner = CliRunner()


def rta(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def project(tmp_path):
    result = rta("init", str(tmp_path / "shop"))
    assert result.exit_code == 0, result.output
    return tmp_path / "shop"


def _events(n: int) -> pl.DataFrame:
    now = datetime.now(UTC)
    return pl.DataFrame(
        {
            "event": ["page_view"] * (n - 2) + ["purchase", "purchase"],
            "timestamp": [(now - timedelta(minutes=i % 90)).isoformat() for i in range(n)],
            "user_id": [f"u{i % 7}" for i in range(n)],
            "properties": [
                {"country": "US" if i % 3 else "DE", "device": "mobile" if i % 2 else "desktop", "revenue": 10.0} for i in range(n)
            ],
        }
    )


@pytest.mark.core
def test_init_refuses_an_existing_project(project):
    assert (project / "metrics" / "shop.py").is_file()
    result = runner.invoke(app, ["init", str(project)])
    assert result.exit_code == 2 and "rta.toml already exists" in result.output


@pytest.mark.core
def test_compile_prints_ddl_and_flow(project):
    result = rta("compile", "-p", str(project))
    assert result.exit_code == 0
    assert "ENGINE=AggregatingMergeTree" in result.output and "uniqCombined64ArrayState(12)" in result.output
    assert "TTL bucket + INTERVAL 7 DAY" in result.output and "store__write" in result.output


@pytest.mark.core
def test_compile_reports_definition_errors_with_file(project):
    (project / "metrics" / "zz_broken.py").write_text("from rta import metric, total\nmetric('x', total('revnue'))\n")
    result = runner.invoke(app, ["compile", "-p", str(project)])
    assert result.exit_code == 2
    assert "zz_broken.py: metric 'x': stream 'events' has no field 'revnue'; did you mean 'revenue'?" in result.output


@pytest.mark.core
def test_missing_project(tmp_path):
    result = runner.invoke(app, ["compile", "-p", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist; create one with `rta init" in result.output
    result = runner.invoke(app, ["compile", "-p", str(tmp_path)])
    assert result.exit_code == 2 and "no metric files in" in result.output


@pytest.mark.store
@pytest.mark.flow
def test_load_then_query_in_every_format(project, client, tmp_path):
    path = tmp_path / "events.jsonl"
    _events(100).write_ndjson(path)
    result = rta("load", str(path), "-p", str(project))
    assert result.exit_code == 0, result.output
    assert "outcomes: accepted 100" in result.output

    result = rta("query", "page_views", "-p", str(project), "--last", "1d", "--grain", "1d", "--format", "json")
    assert sum(row["page_views"] for row in json.loads(result.output)) == 98

    result = rta(
        "query",
        "page_views",
        "-p",
        str(project),
        "--last",
        "1d",
        "--grain",
        "1d",
        "--by",
        "country",
        "--where",
        "device=mobile",
        "--format",
        "csv",
    )
    frame = pl.read_csv(result.output.encode())
    assert frame.columns == ["bucket", "country", "page_views", "final"]
    assert frame["page_views"].sum() == 49

    result = rta("query", "revenue", "-p", str(project), "--last", "1d", "--grain", "1h", "--where", "country=US,DE")
    assert result.exit_code == 0 and "revenue" in result.output and "20" in result.output

    result = rta("query", "page_views", "revenue", "-p", str(project), "--last", "1d", "--by", "country", "--total", "--format", "json")
    rows = json.loads(result.output)
    assert {"bucket"}.isdisjoint(rows[0]) and len(rows) == len({r["country"] for r in rows})  # one row per group
    assert sum(r["page_views"] for r in rows) == 98 and all(isinstance(r["page_views"], int) for r in rows)  # counts are whole
    assert rta("query", "page_views", "-p", str(project), "--last", "1d", "--grain", "total", "--format", "csv").output.splitlines()[
        1:
    ] == ["98,false"]

    # Loading the same file again adds nothing.
    rta("load", str(path), "-p", str(project))
    result = rta("query", "purchases", "-p", str(project), "--last", "1d", "--grain", "1d", "--format", "json")
    assert sum(row["purchases"] for row in json.loads(result.output)) == 2


@pytest.mark.store
def test_a_query_no_rollup_answers_is_answered_from_raw_events_and_says_so(project, client):
    result = runner.invoke(app, ["query", "page_views", "--by", "path", "--where", "revenue>10", "--last", "1d", "-p", str(project)])
    assert result.exit_code == 0, result.output
    assert "note: answered from raw events (rta_events_raw_" in result.stderr and "splits or filters by path" in result.stderr
    assert "path" in result.stdout


@pytest.mark.store
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "pageviews"], "no metric named 'pageviews'; did you mean 'page_views'?"),
        (["query", "page_views", "--by", "contry"], "cannot split or filter page_views by 'contry'; did you mean 'country'?"),
        (["query", "page_views", "--by", "path", "--last", "45d"], "no rollup answers 'page_views' at grain '1d' by ['path']"),
        (["query", "page_views", "--grain", "5m"], "unknown grain '5m'; valid grains are: auto, 1m, 1h, 1d"),
        (["query", "page_views", "--last", "a week"], "invalid time range (last): got 'a week'"),
        (["query", "page_views", "--where", "country"], "where takes dim=value or dim=a,b, got 'country'"),
        (["query", "page_views", "--top", "3"], "top=3 keeps the biggest groups, but the query has none; add by="),
        (["load", "missing.jsonl"], "cannot load 'missing.jsonl': no such file"),
        (["run", "--watch", "no-such-folder"], "cannot watch 'no-such-folder': no such folder"),
    ],
)
def test_error_messages(project, client, args, message):
    result = runner.invoke(app, [*args, "-p", str(project)])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.store
@pytest.mark.flow
def test_run_demo_for_a_few_seconds(project, client):
    result = rta("run", "-p", str(project), "--demo", "--duration", "3", "--rate", "20000", "--history", "1d", "--history-events", "50000")
    assert result.exit_code == 0, result.output
    assert "in " in result.output and "ev/s" in result.output and "newest event lag" in result.output
    assert "outcomes: accepted" in result.output
    stored = client.query("SELECT sum(events) FROM rta_ingest_stats WHERE outcome = 'accepted'").result_rows[0][0]
    assert stored >= 50_000
    result = rta("query", "visitors", "-p", str(project), "--last", "2d", "--grain", "1d", "--format", "json")
    assert sum(row["visitors"] for row in json.loads(result.output)) > 1_000


@pytest.mark.store
@pytest.mark.flow
def test_a_demo_with_history_streams_at_the_historys_own_rate(project, client):
    def accepted() -> int:  # the store's tables appear with the first run
        if not client.command("EXISTS TABLE rta_ingest_stats"):
            return 0
        return int(client.query("SELECT sum(events) FROM rta_ingest_stats WHERE outcome = 'accepted'").result_rows[0][0] or 0)

    before = accepted()
    result = rta("run", "-p", str(project), "--demo", "--duration", "3", "--history", "1h", "--history-events", "36000", "--port", "0")
    assert result.exit_code == 0, result.output
    assert "demo backfills 36,000 events over 1h, then streams 10 events/s" in result.output
    # A week of history then a flood at 20,000 events/s made the last bucket tower over every chart.
    assert 36_000 <= accepted() - before <= 36_000 + 100


@pytest.mark.store
def test_a_second_process_is_told_who_owns_the_embedded_store(project, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    # Keep the client referenced: a collected client closes the store and releases its lock.
    hold = "import sys, time; from rta.store.client import connect; c = connect(sys.argv[1]); c.command('SELECT 1')"
    hold += "; print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, f"chdb://{project / 'data'}"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = subprocess.run(
            [sys.executable, "-m", "rta.cli", "query", "page_views", "-p", str(project)], capture_output=True, text=True, env=env
        )
        assert result.returncode == 2, (result.stdout, result.stderr, sorted(p.name for p in project.iterdir()))
        assert f"is open in another process (pid {holder.pid})" in result.stderr
        assert "stop `rta run` there, or point RTA_CLICKHOUSE_DSN at a ClickHouse server" in result.stderr
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def loaded(project, client, tmp_path):
    """The project with 100 events loaded: 98 page views and 2 purchases."""
    path = tmp_path / "events.jsonl"
    _events(100).write_ndjson(path)
    assert rta("load", str(path), "-p", str(project)).exit_code == 0
    return project


@pytest.mark.store
@pytest.mark.flow
def test_query_explain_compare_and_top(loaded):
    project = loaded
    options = [
        "--last",
        "1d",
        "--grain",
        "1h",
        "--by",
        "country",
        "--top",
        "1",
        "--compare",
        "previous_day",
        "--explain",
        "--format",
        "json",
    ]
    result = runner.invoke(app, ["query", "page_views", "revenue", "-p", str(project), *options])
    assert result.exit_code == 0, result.output
    assert "rta_traffic_1h_" in result.output and "rows" in result.output and "cache miss" in result.output
    rows = json.loads(result.output[result.output.index("[") :])
    assert {r["country"] for r in rows} == {"US"}  # the top country by page views
    assert {"page_views", "revenue", "page_views_previous", "revenue_previous", "final"} <= set(rows[0])


@pytest.mark.store
@pytest.mark.flow
def test_sql_console(loaded, caplog):
    project = loaded
    result = rta("sql", "SELECT event, count() AS n FROM events GROUP BY event ORDER BY event", "-p", str(project), "--format", "csv")
    assert result.output == "event,n\npage_view,98\npurchase,2\n"
    result = runner.invoke(app, ["sql", "DROP TABLE events", "-p", str(project)])
    assert result.exit_code == 2 and "refused: DROP statements are not allowed" in result.output
    with caplog.at_level("WARNING"):
        listed = rta("sql", "SHOW TABLES", "-p", str(project), "--format", "csv").output
    assert listed.startswith("name,stored_as\n") and "\nevents," in listed and "\ntraffic_1h," in listed
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")] and "Falling back" not in listed  # no parser warning


@pytest.mark.core
def test_keys_create_list_revoke(project):
    created = runner.invoke(app, ["keys", "create", "read", "-p", str(project), "--name", "dashboards"])
    assert created.exit_code == 0 and created.stdout.startswith("rta_read_")
    listing = rta("keys", "list", "-p", str(project)).output
    key_id = listing.split()[0]
    assert "read" in listing and "dashboards" in listing and "active" in listing and created.stdout.strip() not in listing
    assert "revoked read key" in rta("keys", "revoke", key_id, "-p", str(project)).output
    assert "revoked 20" in rta("keys", "list", "-p", str(project)).output
    bad = runner.invoke(app, ["keys", "create", "root", "-p", str(project)])
    assert bad.exit_code == 2 and "unknown key kind 'root'; valid kinds are: read, write, share, admin" in bad.output
    missing = runner.invoke(app, ["keys", "revoke", "nope", "-p", str(project)])
    assert missing.exit_code == 2 and "no key with id 'nope'" in missing.output


@pytest.mark.store
@pytest.mark.flow
def test_other_processes_query_through_the_running_flow(project, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    cmd = [sys.executable, "-m", "rta.cli", "run", "--demo", "-p", str(project), "--rate", "2000", "--port", str(port), "--history", "1h"]
    runner_process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run_file = project / ".rta" / "run.json"
    try:
        deadline = time.monotonic() + 60
        while not run_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run_file.exists(), runner_process.stderr.read() if runner_process.poll() is not None else "no run file"
        time.sleep(2)  # let the backfill land
        query = [
            sys.executable,
            "-m",
            "rta.cli",
            "query",
            "page_views",
            "-p",
            str(project),
            "--last",
            "2h",
            "--grain",
            "1h",
            "--format",
            "json",
        ]
        result = subprocess.run(query, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert sum(r["page_views"] for r in json.loads(result.stdout)) > 0
        sql = [sys.executable, "-m", "rta.cli", "sql", "SELECT count() AS n FROM events", "-p", str(project), "--format", "csv"]
        result = subprocess.run(sql, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0 and int(result.stdout.splitlines()[1]) > 0, result.stderr
        # Links and senders find the run's real address (not :8765) in its run file.
        link = subprocess.run(
            [sys.executable, "-m", "rta.cli", "share", "shop", "-p", str(project)], capture_output=True, text=True, env=env
        )
        assert link.stdout.startswith(f"http://127.0.0.1:{port}/d/shop?token="), link.stdout + link.stderr
        made = subprocess.run(
            [sys.executable, "-m", "rta.cli", "keys", "create", "write", "-p", str(project)], capture_output=True, text=True, env=env
        )
        write_key = next(word for word in (made.stdout + made.stderr).split() if word.startswith("rta_write_"))
        sent_file = tmp_path / "sent.jsonl"
        sent_file.write_text('{"type": "track", "event": "page_view", "userId": "u1", "properties": {"country": "US"}}\n')
        sent = subprocess.run([sys.executable, "-m", "rta.cli", "send", str(sent_file), "--key", write_key, "-p", str(project)],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert sent.returncode == 0 and f"127.0.0.1:{port}" in sent.stdout + sent.stderr, sent.stdout + sent.stderr
    finally:
        runner_process.send_signal(signal.SIGTERM)
        runner_process.wait(timeout=30)
    assert not run_file.exists()  # gone with the process, and its key revoked
    assert "revoked" in rta("keys", "list", "-p", str(project)).output


@pytest.mark.core
def test_suggest(project):
    result = rta("suggest", "-p", str(project), "--filter", "path")
    assert "no rollup answers page_views" in result.output and 'rollup("by_path"' in result.output
    assert "every metric answers" in rta("suggest", "-p", str(project), "--filter", "country").output
    missing = runner.invoke(app, ["suggest", "-p", str(project)])
    assert missing.exit_code == 2 and "no dashboard filters" in missing.output


@pytest.mark.core
def test_bench_command_checks_its_argument():
    result = runner.invoke(app, ["bench", "speed"])
    assert result.exit_code == 2 and "unknown benchmark 'speed'; valid benchmarks are: flow, query, ingest" in result.output
    for which in ("flow", "query", "ingest"):
        result = runner.invoke(app, ["bench", which, "--", "--help"])
        assert result.exit_code == 0, which


@pytest.mark.core
def test_demo_history_covers_its_window_evenly():
    from rta.flows.demo import DemoSource

    source = DemoSource("events", history_seconds=7 * 86_400, history_events=400_000, rate=1)
    part = source.build("input", 0, 1)
    events = pl.concat([b.payload for _ in range(4) for b in part.next_batch()])
    per_day = events["timestamp"].dt.date().value_counts().sort("timestamp")["count"].to_list()
    assert len(per_day) >= 7
    for count in per_day[1:-1]:  # whole days (the first and last are partial) hold a seventh each
        assert 400_000 / 7 * 0.8 < count < 400_000 / 7 * 1.2
    assert events["timestamp"].max() <= datetime.now(UTC) + timedelta(seconds=1)
