"""A demo you can trust: `ws.load_demo` run again adds nothing, `rta run --demo --history` completes its
backfill before `--duration` counts, and live traffic keeps the history's rate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

import rta
from rta.cli import app
from rta.flows.demo import HOUR_MS, DemoSource, Population, anchored, live_rate
from rta.workspace import Workspace

runner = CliRunner()
NOW = datetime(2026, 11, 28, 12, 30, 17, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.mark.core
def test_the_demo_is_a_function_of_time_the_same_range_the_same_events_and_ranges_agree_where_they_overlap():
    pop = Population(1, users=2_000)
    first = anchored(
        pop,
        300,
        NOW_MS - 2 * 86_400_000,
        NOW_MS,
    )
    assert first.equals(
        anchored(
            pop,
            300,
            NOW_MS - 2 * 86_400_000,
            NOW_MS,
        )
    )
    assert first["insert_id"].n_unique() == first.height
    assert first.height == pytest.approx(2 * 24 * 300, rel=0.03)  # 300 an hour
    assert first["timestamp"].min() >= datetime.fromtimestamp((NOW_MS - 2 * 86_400_000) / 1000, UTC)
    assert first["timestamp"].max() < NOW

    # Three hours and some minutes later, from a later start: what both ranges hold is the same events, values and all,
    # plus the few of the hours since that arrive hours late (their times reach back into the first range).
    later = anchored(
        pop,
        300,
        NOW_MS - 2 * 86_400_000 + 5 * HOUR_MS + 1_234,
        NOW_MS + 3 * HOUR_MS + 600_000,
    )
    start, end = later["timestamp"].min(), first["timestamp"].max()
    shared = first.filter(pl.col("timestamp") >= start)
    overlap = later.filter(pl.col("timestamp") <= end)
    assert shared.sort("insert_id").equals(overlap.filter(pl.col("insert_id").is_in(shared["insert_id"].implode())).sort("insert_id"))
    hour = overlap.filter(~pl.col("insert_id").is_in(shared["insert_id"].implode()))["insert_id"].str.split("-").list.get(4).cast(pl.Int64)
    assert hour.len() < 0.005 * shared.height and (hour > NOW_MS // HOUR_MS).all()
    assert later.filter(pl.col("timestamp") > end).height > 2 * 300  # and the hours since are new events

    other = anchored(Population(2, users=2_000), 300, NOW_MS - HOUR_MS, NOW_MS)  # another seed: other events, other ids
    assert not set(other["insert_id"]) & set(first["insert_id"])


@pytest.mark.core
def test_live_traffic_keeps_the_historys_rate_and_starts_where_the_history_ends():
    clock = [NOW.timestamp()]
    history_seconds, history_events = 86_400, 20_000  # 0.231 events/s: less than one per wake-up
    rate = live_rate(None, history_seconds, history_events)
    assert rate == 0.231
    source = DemoSource("events", rate=rate, history_seconds=history_seconds, history_events=history_events, clock=lambda: clock[0])
    part = source.build("demo", 0, 1)
    history = pl.concat([b.payload for b in part.next_batch()])
    assert source.backfilled.is_set() and source.history_sent == history.height == history_events
    live = []
    for _ in range(6 * 60):  # six hours, woken every minute
        clock[0] += 60
        live += [b.payload for b in part.next_batch()]
    frame = pl.concat(live)
    assert source.live_sent == frame.height
    per_hour_history = history_events / 24
    per_hour_live = frame.height / 6
    assert per_hour_live == pytest.approx(per_hour_history, rel=0.01)  # was: 1 event/s (4.3x), and fractions lost per wake-up
    assert frame["timestamp"].min() >= NOW - timedelta(minutes=1, hours=6)  # late ones reach back, none into the future
    assert frame["timestamp"].max() <= NOW + timedelta(hours=6)


@pytest.mark.core
def test_backfilled_is_set_by_the_last_history_batch_or_at_once_without_a_history():
    source = DemoSource("events", rate=1, history_seconds=3_600, history_events=250_000)
    part = source.build("demo", 0, 1)
    for _ in range(2):
        part.next_batch()
        assert not source.backfilled.is_set()
    part.next_batch()
    assert source.backfilled.is_set() and source.history_sent == 250_000
    plain = DemoSource("events", rate=5)
    plain.build("demo", 0, 1)
    assert plain.backfilled.is_set()


def _state(ws: Workspace) -> tuple:
    raw = ws.sql("SELECT count() AS n, uniqExact(insert_id) AS ids, round(sum(revenue), 2) AS r FROM events").row(0)
    rollups = ws.sql("SELECT sum(page_views__n) AS v, sum(purchases__n) AS p, round(sum(revenue__sum), 2) AS r FROM traffic_overall_1h")
    kpis = ws.query(
        ["revenue", "purchases", "visitors", "buyers"], start=NOW - timedelta(days=3), end=NOW, total=True, cache=False, now=NOW
    )
    return raw, rollups.row(0), tuple(round(v, 2) for v in kpis.select("revenue", "purchases", "visitors", "buyers").row(0))


@pytest.mark.store
@pytest.mark.flow
def test_loading_the_demo_again_adds_nothing_and_later_adds_only_the_time_since(client, tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "shop")]).exit_code == 0
    ws = rta.connect(tmp_path / "shop")
    assert isinstance(ws, Workspace)
    ws.load_demo(8_000, days=3, now=NOW)
    once = _state(ws)
    assert once[0][0] == once[0][1] == pytest.approx(8_000, rel=0.03)  # about as many events as asked, each id once
    again = ws.load_demo(8_000, days=3, now=NOW + timedelta(seconds=30))  # a notebook rerun in the same minute
    assert f"skipped {once[0][0]:,} demo events loaded before" in again
    assert _state(ws) == once  # was: every rerun added the demo again (revenue doubled, visitors flat)

    two_hours = ws.load_demo(8_000, days=3, now=NOW + timedelta(hours=2))
    n, ids, _ = ws.sql("SELECT count(), uniqExact(insert_id), 0 FROM events").row(0)
    per_hour = round(8_000 / 72)
    assert n == ids and 1.5 * per_hour < n - once[0][0] < 2.5 * per_hour, two_hours  # the two hours since, once
    before = ws.sql(f"SELECT count() FROM events WHERE timestamp < toDateTime64({NOW_MS // 60_000 * 60} , 3, 'UTC')").item()
    assert before == once[0][0]  # the old hours untouched


@pytest.mark.store
@pytest.mark.flow
def test_run_with_history_completes_the_backfill_before_duration_counts_then_runs_live(client, tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "shop")]).exit_code == 0
    project = str(tmp_path / "shop")
    # Three batches of 100K take the flow seconds; --duration 1 used to end the run inside the backfill.
    args = ["run", "-p", project, "--demo", "--history", "1d", "--history-events", "300000", "--duration", "1", "--port", "0"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "backfill" in result.output and "% of 300,000 |" in result.output  # progress on the live line
    assert "rta: demo history backfilled (300,000 events in" in result.output and "live traffic at 3.47 events/s for 1 s" in result.output
    stored = json.loads(
        runner.invoke(app, ["sql", "SELECT count() AS n FROM events", "-p", project, "--format", "json"], catch_exceptions=False).output
    )
    live = stored[0]["n"] - 300_000
    assert live > 0, result.output  # then live events, at the history's rate
    assert "demo: 300,000 history events, then" in result.output and f"{live:,} events since the history's end" in result.output
