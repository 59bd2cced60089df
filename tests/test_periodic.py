"""The periodic thread under the alert and report loops: ticks on time, survives a failing tick, stops promptly."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rta.alerts.loop import AlertLoop
from rta.dash.scheduled import ReportLoop
from rta.periodic import Periodic

pytestmark = pytest.mark.core


class Ticker(Periodic):
    """Records when it ticks; raises for the ticks numbered in ``fail`` (1-based)."""

    def __init__(self, *, every: float, now: bool = False, fail: frozenset[int] = frozenset(), want: int = 3) -> None:
        super().__init__(every=every, name="rta-test-ticker", now=now)
        self.fail, self.want = fail, want
        self.times: list[float] = []
        self.enough = threading.Event()

    def tick(self) -> None:
        self.times.append(time.monotonic())
        if len(self.times) >= self.want:
            self.enough.set()
        if len(self.times) in self.fail:
            raise RuntimeError(f"tick {len(self.times)} broke")


def test_ticks_every_interval_the_first_after_one_interval():
    ticker = Ticker(every=0.05)
    started = time.monotonic()
    ticker.start()
    assert ticker.enough.wait(5)
    ticker.stop()
    assert ticker.times[0] - started >= 0.05
    gaps = [b - a for a, b in zip(ticker.times, ticker.times[1:], strict=False)]
    assert all(gap >= 0.05 for gap in gaps), gaps


def test_now_ticks_at_start():
    ticker = Ticker(every=60, now=True, want=1)
    started = time.monotonic()
    ticker.start()
    assert ticker.enough.wait(5)
    ticker.stop()
    assert ticker.times[0] - started < 1
    assert len(ticker.times) == 1


@pytest.mark.parametrize("now", [False, True])
def test_stop_does_not_wait_out_the_interval(now):
    ticker = Ticker(every=60, now=now, want=1)
    ticker.start()
    if now:
        assert ticker.enough.wait(5)
    started = time.monotonic()
    ticker.stop()
    assert time.monotonic() - started < 1
    assert not ticker._thread.is_alive()
    assert len(ticker.times) == (1 if now else 0)


def test_a_failing_tick_is_logged_with_its_streak_and_the_loop_goes_on(caplog):
    ticker = Ticker(every=0.01, fail=frozenset({1, 2, 4}), want=5)
    with caplog.at_level(logging.ERROR, logger="rta"):
        ticker.start()
        assert ticker.enough.wait(5)
        ticker.stop()
    failures = [r.getMessage() for r in caplog.records if r.name == "rta"]
    assert failures == [
        "rta-test-ticker: tick failed (1 in a row): tick 1 broke",
        "rta-test-ticker: tick failed (2 in a row): tick 2 broke",
        "rta-test-ticker: tick failed (1 in a row): tick 4 broke",  # tick 3 went through: a new streak
    ]


class Engine:
    """Stands in for an AlertEngine: fails its first rounds, records being closed."""

    def __init__(self, failures: int) -> None:
        self.failures, self.rounds = failures, 0
        self.closed: float | None = None
        self.recovered = threading.Event()

    def run_once(self) -> None:
        self.rounds += 1
        if self.rounds <= self.failures:
            raise RuntimeError("store busy")
        self.recovered.set()

    def close(self, timeout: float) -> None:
        self.closed = timeout


def test_alert_loop_logs_a_run_of_failures_once_and_closes_the_engine_on_stop(caplog):
    engine = Engine(failures=3)
    with caplog.at_level(logging.ERROR, logger="rta.alerts"):
        loop = AlertLoop(engine, every=0.01).start()  # type: ignore[arg-type]
        assert engine.recovered.wait(5)
        loop.stop(timeout=2.5)
    assert [r.getMessage() for r in caplog.records if r.name == "rta.alerts"] == [
        "alert evaluation failed (retrying every 0.01s): store busy"
    ]
    assert engine.closed == 2.5


class Scheduler:
    """Stands in for a ReportScheduler: fails every check."""

    def __init__(self, want: int) -> None:
        self.checks, self.want = 0, want
        self.enough = threading.Event()

    def run_once(self) -> None:
        self.checks += 1
        if self.checks >= self.want:
            self.enough.set()
        raise RuntimeError("store busy")


def test_report_loop_checks_at_start():
    scheduler = Scheduler(want=1)
    loop = ReportLoop(scheduler, every=60).start()  # type: ignore[arg-type]
    assert scheduler.enough.wait(5)
    loop.stop()
    assert scheduler.checks == 1


def test_report_loop_logs_every_failure(caplog):
    scheduler = Scheduler(want=3)
    with caplog.at_level(logging.ERROR, logger="rta.reports"):
        loop = ReportLoop(scheduler, every=0.01).start()  # type: ignore[arg-type]
        assert scheduler.enough.wait(5)
        loop.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "rta.reports"]
    assert len(messages) == scheduler.checks >= 3
    assert set(messages) == {"scheduled reports failed: store busy"}


def test_every_notification_shows_on_the_console_unless_a_log_channel_wrote_it():
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from rta.alerts.notify import Notification
    from rta.dsl.channels import Log, Webhook

    at = datetime(2026, 11, 28, 12, tzinfo=UTC)
    rules = [SimpleNamespace(name="paged", notify=(Webhook("https://hooks.example/x"),)), SimpleNamespace(name="logged", notify=(Log(),))]
    engine = SimpleNamespace(rules=rules, sent=[])

    def run_once() -> None:
        engine.sent += [
            Notification("paged", "firing", at, "purchases < 1", (({}, 0.0),)),
            Notification("logged", "firing", at, "x", (({}, 1.0),)),
        ]

    engine.run_once = run_once
    shown: list[str] = []
    AlertLoop(engine, announce=shown.append).tick()  # type: ignore[arg-type]
    assert shown == ["[rta] FIRING: paged: purchases < 1 (0) at 2026-11-28 12:00 UTC -> webhook:https://hooks.example/x"]
