"""Alert evaluation against the embedded store: readings equal brute force, live equals backtest."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rta
from rta import alert, col
from rta.alerts.backtest import backtest
from rta.alerts.engine import AlertEngine
from rta.alerts.measure import readings
from rta.alerts.notify import Notification, Notifier
from rta.compiler.ddl import ALERT_STATE_TABLE
from rta.flows.runner import run_flow
from rta.testing import BatchSource, frame_batches

pytestmark = pytest.mark.store
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METRICS = """
from rta import stream, metric, rollup, alert, count, distinct, col, no_events
events = stream("events", dimensions={"event": str, "country": str}, measures={"revenue": float})
errors = metric("errors", count(), where=col("event") == "error")
views = metric("views", count(), where=col("event") == "view")
error_rate = metric("error_rate", errors / views)
users = metric("users", distinct("user_id"))
rollup("traffic", [errors, views], by=["event", "country"], keep={"1m": "30d", "1h": "90d"})
rollup("audience", [users], by=["country"], keep={"1m": "30d"})
alert("spike", errors.over("2m") > 5, by="country", notify="log")
alert("quiet", no_events(events, "1m"))
"""
_examples = itertools.count()


@pytest.fixture(scope="module")
def ws(_session_client, store_dsn, tmp_path_factory):
    from tests.conftest import clear_store

    clear_store(_session_client)
    project: Path = tmp_path_factory.mktemp("alerts")
    (project / "metrics").mkdir()
    (project / "metrics" / "app.py").write_text(METRICS)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
        return rta.connect(project)


def events_from(counts: dict[str, list[int]], start: datetime, *, event: str = "error") -> pl.DataFrame:
    """``counts[country][i]`` events in minute ``i`` after ``start`` (spread over the minute), users u0..u3."""
    rows = []
    for country, per_minute in counts.items():
        for minute, n in enumerate(per_minute):
            for k in range(n):
                at = start + timedelta(minutes=minute, seconds=k * 59 / max(n, 1))
                rows.append({"timestamp": at, "event": event, "country": country, "user_id": f"u{k % 4}", "revenue": 1.0})
    return pl.DataFrame(
        rows,
        schema={
            "timestamp": pl.Datetime("ms", "UTC"),
            "event": pl.String,
            "country": pl.String,
            "user_id": pl.String,
            "revenue": pl.Float64,
        },
    )


def load(ws, frame: pl.DataFrame, now: datetime) -> None:
    key = f"alerts-{next(_examples)}"
    run_flow(ws.plan, BatchSource(frame_batches("events", [frame], key)), ws.client, clock=lambda: now)


def brute(frame: pl.DataFrame, at: datetime, minutes: int, expr: pl.Expr) -> pl.DataFrame:
    window = frame.filter((pl.col("timestamp") >= at - timedelta(minutes=minutes)) & (pl.col("timestamp") < at))
    return window.group_by("country").agg(expr.alias("want"))


def test_readings_equal_brute_force_for_rolled_and_per_window_metrics(ws):
    start = T0
    errors = events_from({"FR": [3, 0, 7, 1, 4, 9], "DE": [0, 2, 2, 0, 5, 1]}, start)
    views = events_from({"FR": [10, 10, 5, 5, 8, 8], "DE": [4, 4, 4, 4, 4, 4]}, start, event="view")
    frame = pl.concat([errors, views])
    load(ws, frame, start + timedelta(minutes=10))
    defs = ws.plan.definitions
    times = [start + timedelta(minutes=m) for m in range(2, 7)]
    is_error = pl.col("event") == "error"
    cases = [
        (alert("e", defs.metric("errors").over("2m") > 0, by="country"), 2, is_error.sum().cast(pl.Float64)),
        (alert("r", defs.metric("error_rate").over("3m") > 0, by="country"), 3, is_error.sum() / (pl.col("event") == "view").sum()),
        (alert("u", defs.metric("users").over("2m") > 0, by="country"), 2, pl.col("user_id").n_unique().cast(pl.Float64)),
    ]
    for rule, minutes, expr in cases:
        got = readings(ws, rule, times)
        for at in times:
            want = brute(frame, at, minutes, expr)
            have = got.filter(pl.col("at") == at).join(want, on="country", how="full", coalesce=True)
            assert ((have["value"].fill_null(0) - have["want"].fill_null(0)).abs() < 1e-9).all(), (rule.name, at, have)
    change = readings(ws, alert("c", defs.metric("errors").over("2m").vs("previous_period") > 0), [start + timedelta(minutes=6)])
    now_, before = 4 + 9 + 5 + 1, 7 + 1 + 2 + 0  # minutes 4-5 and 2-3, both countries
    assert change["value"][0] == pytest.approx((now_ - before) / before) and change["current"][0] == now_
    where = readings(ws, alert("w", defs.metric("errors").over("1m") > 0, where=col("country") == "DE"), [start + timedelta(minutes=5)])
    assert where["value"].to_list() == [5.0]


class Collected(Notifier):
    """A notifier that keeps what it is asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[Notification] = []

    def send(self, note: Notification, channels: tuple) -> None:  # type: ignore[override]
        self.notes.append(note)


def summary(notes) -> list[tuple]:
    return [(n.at, n.status, tuple(sorted(g["country"] for g, _ in n.groups))) for n in notes]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fr=st.lists(st.integers(0, 8), min_size=16, max_size=16),
    de=st.lists(st.integers(0, 8), min_size=16, max_size=16),
    threshold=st.integers(2, 10),
    window=st.sampled_from(["1m", "2m", "3m"]),
    pending=st.sampled_from([None, "1m", "3m"]),
    keep=st.sampled_from([None, "2m"]),
    cooldown=st.sampled_from([None, "4m"]),
    steps=st.lists(st.integers(1, 4), min_size=12, max_size=12),
    restart_at=st.integers(0, 8),
)
def test_live_evaluation_agrees_with_the_backtest(ws, fr, de, threshold, window, pending, keep, cooldown, steps, restart_at):
    start = T0 + timedelta(days=1 + next(_examples))  # each example in its own day: no clearing needed
    end = start + timedelta(minutes=16)
    frame = events_from({"FR": fr, "DE": de}, start)
    pusher = events_from({"ZZ": [1]}, end + timedelta(minutes=1), event="view")  # moves the watermark past the end
    load(ws, pl.concat([frame, pusher]), end + timedelta(minutes=3))
    errors = ws.plan.definitions.metric("errors")
    rule = alert("spike", errors.over(window) > threshold, by="country", pending=pending, keep_firing=keep, cooldown=cooldown)
    ws.client.command(f"TRUNCATE TABLE {ALERT_STATE_TABLE}")

    notifier = Collected()
    engine = AlertEngine(ws, [rule], notifier=notifier, clock=lambda: start)  # a new rule judges windows ending after start
    clock, sent = start, []
    for i, step in enumerate(steps):  # uneven rounds: catching up several windows at once must not matter
        clock = min(clock + timedelta(minutes=step), end)
        if i == restart_at:  # a restart picks up pending-since, cooldowns and the cursor from the store
            engine.close()
            sent += notifier.notes
            notifier = Collected()
            engine = AlertEngine(ws, [rule], notifier=notifier, clock=lambda at=clock: at)
        engine.run_once(clock)
    engine.run_once(end)
    engine.close()
    sent += notifier.notes
    replay = backtest(ws, rule, start=start + timedelta(seconds=1), end=end)
    want = [(row["at"], row["status"]) for row in replay.notifications.iter_rows(named=True)]
    assert [(at, status) for at, status, _ in summary(sent)] == want


def test_backtest_tells_when_a_rule_fired_and_draws_it(ws):
    start = T0 - timedelta(days=1)
    load(ws, events_from({"FR": [0, 9, 9, 9, 0, 0, 0, 9, 0, 0]}, start), start + timedelta(minutes=12))
    rule = alert("spike", ws.plan.definitions.metric("errors").over("1m") > 5, pending="1m", by="country")
    result = ws.alerts.backtest(rule, start=start + timedelta(seconds=1), end=start + timedelta(minutes=10))
    assert summary_rows(result.notifications) == [(start + timedelta(minutes=3), "firing"), (start + timedelta(minutes=5), "resolved")]
    periods = result.firing_periods()
    assert periods.select("start", "end").rows() == [(start + timedelta(minutes=3), start + timedelta(minutes=5))]
    spec = result.chart().to_dict()
    assert spec["title"].startswith("spike: errors over 1m > 5") and len(spec["layer"]) == 3
    assert "3 evaluations" not in repr(result) and "1 firing notifications" in repr(result)


def summary_rows(frame: pl.DataFrame) -> list[tuple]:
    return [(row["at"], row["status"]) for row in frame.iter_rows(named=True)]


def test_provisional_rules_judge_the_current_minute_and_say_so(ws):
    start = T0 - timedelta(days=2)
    load(ws, events_from({"FR": [0, 0, 30]}, start), start + timedelta(minutes=3))
    rule = alert("fast", ws.plan.definitions.metric("errors").over("1m") > 10, provisional=True)
    notifier = Collected()
    engine = AlertEngine(ws, [rule], notifier=notifier, clock=lambda: start + timedelta(minutes=1))
    engine.run_once(start + timedelta(minutes=2, seconds=40))  # minute 2 is not over, its 30 events are in
    engine.close()
    (note,) = notifier.notes
    assert note.provisional and note.at == start + timedelta(minutes=2, seconds=40) and note.groups == (({}, 30.0),)
    assert "[provisional data]" in note.text()
    evaluations = ws.alerts.history("fast", kind="evaluation")
    assert evaluations.filter(pl.col("provisional"))["status"].to_list()[0] == "firing"


def test_silenced_rules_are_evaluated_and_recorded_but_not_sent(ws):
    from rta.alerts.engine import silence

    start = T0 - timedelta(days=3)
    load(ws, events_from({"FR": [0, 30, 0]}, start), start + timedelta(minutes=4))
    rule = alert("hushed", ws.plan.definitions.metric("errors").over("1m") > 10)
    silence(ws.project.root, "hushed", 3600, now=start)
    notifier = Collected()
    engine = AlertEngine(ws, [rule], notifier=notifier, clock=lambda: start)
    for minute in (1, 2, 3):
        engine.run_once(start + timedelta(minutes=minute))
    engine.close()
    assert notifier.notes == []
    told = ws.alerts.history("hushed", kind="notification")
    assert [(s, d.split(":")[0]) for s, d in told.select("status", "detail").rows()] == [("resolved", "silenced"), ("firing", "silenced")]
    (ws.project.root / ".rta" / "silences.json").unlink()


def test_a_backtest_over_the_last_hour_evaluates_60_minutes_wherever_the_clock_falls(ws):
    from rta.alerts.backtest import backtest

    start = (T0 - timedelta(days=1)).replace(second=0, microsecond=0)
    load(ws, events_from({"FR": [0, 9, 9, 0]}, start), start + timedelta(minutes=5))
    rule = alert("spike", ws.plan.definitions.metric("errors").over("1m") > 5)
    for now in (start + timedelta(hours=1), start + timedelta(hours=1, seconds=30)):  # on the minute, and not
        assert backtest(ws, rule, last="1h", now=now).evaluations["at"].n_unique() == 60


def test_a_held_loop_leaves_the_windows_of_a_backfill_unjudged(ws):
    from rta.alerts.loop import AlertLoop

    start = T0 + timedelta(days=40)  # no event arrives then: "quiet" breaches at every window
    clock = [start]
    rule = ws.plan.definitions.alert("quiet")
    notifier, held = Collected(), [True]
    engine = AlertEngine(ws, [rule], notifier=notifier, clock=lambda: clock[0])
    loop = AlertLoop(engine, hold=lambda: held[0])
    clock[0] = start + timedelta(minutes=10)  # ten quiet minutes of backfill
    loop.tick()
    held[0] = False
    loop.tick()  # released: the backfill's windows are skipped, not judged
    assert notifier.notes == [] and engine.cursors["quiet"] == start + timedelta(minutes=9)
    clock[0] = start + timedelta(minutes=11)
    loop.tick()
    assert [n.at for n in notifier.notes] == [start + timedelta(minutes=10)]  # the first live window fires
    other = replace(rule, name="quiet unheld")
    unheld = AlertEngine(ws, [other], notifier=Collected(), clock=lambda: start)
    assert len(unheld.due(other, start + timedelta(minutes=10))) == 10  # without the hold, the backfill's windows are judged
