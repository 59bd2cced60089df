"""`rta load` honours insert ids: the same events in another order, split otherwise or re-exported, count once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from rta.cli import app
from rta.compiler.plan import StreamPlan
from rta.flows.runner import run_flow
from rta.flows.sources import FileSource, LoadedIds

runner = CliRunner()
SUMS = "sum(page_views__n) AS v, sum(purchases__n) AS p, round(sum(revenue__sum), 2) AS r"
QUERIES = {
    "raw": "SELECT count() AS n, uniqExact(insert_id) AS ids, round(sum(revenue), 2) AS r FROM events",
    **{f"{name}_{grain}": f"SELECT {SUMS} FROM {name}_{grain}" for name in ("traffic", "traffic_overall") for grain in ("1m", "1h", "1d")},
}


def rta(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def project(tmp_path, client):
    rta("init", str(tmp_path / "shop"))
    return tmp_path / "shop"


def _events(n: int, *, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    return pl.DataFrame(
        {
            "event": rng.choice(["page_view", "page_view", "purchase"], n).tolist(),
            "timestamp": [(now - timedelta(minutes=int(m))).isoformat() for m in rng.integers(1, 2 * 24 * 60, n)],
            "user_id": [f"u{i % 97}" for i in range(n)],
            "insert_id": [f"e{i}" for i in range(n)],
            "country": rng.choice(["FR", "DE", "US"], n).tolist(),
            "revenue": rng.integers(1, 100, n).astype(float).tolist(),
        }
    )


def _state(project) -> dict[str, list]:
    return {name: json.loads(rta("sql", sql, "-p", str(project), "--format", "json")) for name, sql in QUERIES.items()}


@pytest.mark.store
@pytest.mark.flow
def test_the_same_events_shuffled_split_and_re_exported_count_once(project, tmp_path):
    events = _events(3_000)
    first = tmp_path / "events.jsonl"
    events.write_ndjson(first)
    rta("load", str(first), "-p", str(project))
    once = _state(project)
    assert once["raw"] == [{"n": 3_000, "ids": 3_000, "r": round(events["revenue"].sum(), 2)}]
    assert once["traffic_1h"][0]["v"] + once["traffic_1h"][0]["p"] == 3_000

    shuffled = tmp_path / "shuffled.jsonl"
    events.sample(fraction=1.0, shuffle=True, seed=7).write_ndjson(shuffled)
    output = runner.invoke(app, ["load", str(shuffled), "-p", str(project)]).output
    assert "skipped 3,000 events whose insert id was already loaded" in output, output
    assert _state(project) == once

    # A re-export split otherwise: part JSON lines, part Parquet, and a line repeated within a file.
    mixed = events.sample(fraction=1.0, shuffle=True, seed=8)
    head, tail = tmp_path / "head.jsonl", tmp_path / "tail.parquet"
    pl.concat([mixed.head(1_234), mixed.head(5)]).write_ndjson(head)
    mixed.tail(3_000 - 1_234).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC")).write_parquet(tail)
    rta("load", str(tail), str(head), "-p", str(project))
    assert _state(project) == once


@pytest.mark.store
@pytest.mark.flow
def test_new_events_in_a_re_export_are_added_once_and_repeats_within_a_load_count_once(project, tmp_path):
    events = _events(2_000)
    old, more = events.head(1_500), events.tail(500)
    path = tmp_path / "old.jsonl"
    old.write_ndjson(path)
    rta("load", str(path), "-p", str(project))
    export = tmp_path / "export.jsonl"
    pl.concat([more, old, more]).write_ndjson(export)  # everything, the new events twice
    rta("load", str(export), "-p", str(project))
    assert _state(project)["raw"] == [{"n": 2_000, "ids": 2_000, "r": round(events["revenue"].sum(), 2)}]
    again = tmp_path / "fresh.jsonl"
    _events(2_000).write_ndjson(again)  # in one load with another copy: once as well
    fresh = _state(project)
    rta("load", str(again), str(export), "-p", str(project))
    assert _state(project) == fresh


@pytest.mark.store
@pytest.mark.flow
def test_events_without_an_id_count_once_per_file_and_late_events_are_not_recorded(project, tmp_path):
    now = datetime.now(UTC)
    lines = [{"event": "page_view", "timestamp": (now - timedelta(minutes=i)).isoformat(), "user_id": "u1"} for i in range(50)]
    lines.append({"event": "purchase", "timestamp": (now - timedelta(days=40)).isoformat(), "user_id": "u2", "insert_id": "late"})
    path = tmp_path / "anonymous.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rta("load", str(path), "-p", str(project))
    rta("load", str(path), "-p", str(project))  # the same file: its id-less events are known by their place in it
    assert _state(project)["raw"][0]["n"] == 50
    lines[-1]["timestamp"] = now.isoformat()  # the late one, fixed: not skipped, it was never stored
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(json.dumps(lines[-1]) + "\n")
    rta("load", str(fixed), "-p", str(project))
    assert _state(project)["raw"][0]["n"] == 51


@pytest.mark.store
@pytest.mark.flow
def test_repeats_across_the_batches_and_flush_groups_of_a_file_count_once(shop, client, tmp_path):
    events = _events(3_000)
    path = tmp_path / "events.jsonl"
    pl.concat([events, events.sample(1_000, seed=3)]).sample(fraction=1.0, shuffle=True, seed=4).write_ndjson(path)
    stream, now = shop.stream("events"), datetime.now(UTC)
    for _ in range(2):  # and loaded again, nothing more
        loaded = LoadedIds.read(client, stream, now)
        source = FileSource([path], stream, loaded=loaded, chunk_bytes=32 * 1024, group_bytes=96 * 1024)  # ~20 batches, ~7 groups
        stats = run_flow(shop, source, client, clock=lambda: now)
        loaded.commit(client)
        rows, revenue = client.query(f"SELECT count(), sum(revenue) FROM {stream.raw_table}").result_rows[0]
        assert (rows, revenue) == (3_000, events["revenue"].sum())
    assert (loaded.repeats, stats.events_written) == (4_000, 0)
    with pytest.raises(ValueError, match="reads one file, got 2"):
        FileSource([path, path], stream, loaded=loaded)


def _stream() -> StreamPlan:
    return StreamPlan("events", "v", "timestamp", ("event",), (), None, "insert_id", None, None, 86_400, 3_600)


@pytest.mark.core
def test_admitting_the_same_lines_against_the_same_record_keeps_the_same_rows_under_the_same_key():
    now = datetime.now(UTC)
    stamp = (now - timedelta(minutes=5)).isoformat()
    frame = pl.DataFrame({"timestamp": [stamp] * 4, "event": ["a", "b", "c", "d"], "insert_id": ["x", "y", "x", ""]})
    picks = []
    for _ in range(2):  # a load that failed, run again: the record is as it was
        loaded = LoadedIds(_stream(), now, pl.Series(["y"]))
        kept, key = loaded.admit(frame, "jsonl:k")
        picks.append((kept["event"].to_list(), key, loaded.repeats))
    assert picks[0] == picks[1]
    assert picks[0][0] == ["a", "d"] and picks[0][1].startswith("jsonl:k:without:") and picks[0][2] == 2
    untouched = LoadedIds(_stream(), now, pl.Series([], dtype=pl.String))
    kept, key = untouched.admit(frame.head(2), "jsonl:k")
    assert kept.equals(frame.head(2)) and key == "jsonl:k"  # nothing skipped: the batch keeps its own key
