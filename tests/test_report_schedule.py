"""Scheduled reports: due times, rendering on schedule, delivery by the alerts' notifier to real loopback receivers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from rta import email, report, webhook
from rta.alerts.notify import Notifier
from rta.alerts.ssrf import AllowList
from rta.compiler import compile
from rta.dash.scheduled import ReportScheduler
from rta.dsl.definitions import definitions
from rta.errors import CompilationError, DefinitionError
from rta.project import load_definitions
from tests.conftest import ROOT
from tests.receivers import Hook, Smtp

LOCAL = AllowList.parse(["127.0.0.1"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.core
def test_due_times_hourly_daily_weekly_in_a_time_zone():
    hourly = report("h", "shop", every="1h")
    assert hourly.due(at("2026-11-28T16:59:59+00:00")) == at("2026-11-28T16:00:00+00:00")
    daily = report("d", "shop", every="1d", at="08:00", tz="Europe/Paris")
    assert daily.due(at("2026-11-28T07:30:00+00:00")) == at("2026-11-28T08:00:00+01:00")  # 07:00 UTC
    assert daily.due(at("2026-11-28T06:59:00+00:00")) == at("2026-11-27T08:00:00+01:00")
    # Across the switch to summer time the report stays at 08:00 local.
    assert daily.due(at("2026-03-29T07:00:00+00:00")) == at("2026-03-29T08:00:00+02:00")
    weekly = report("w", "shop", every="7d", at="09:15")
    assert weekly.due(at("2026-11-28T12:00:00+00:00")) == at("2026-11-23T09:15:00+00:00")  # Monday
    assert weekly.due(at("2026-11-23T09:14:00+00:00")) == at("2026-11-16T09:15:00+00:00")


@pytest.mark.core
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": "2h"}, r"every='2h' is not a schedule; use '1h' \(hourly, on the hour\), '1d'"),
        ({"at": "8am"}, r"at= takes a time of day as HH:MM, got '8am'"),
        ({"tz": "Mars/Olympus"}, r"unknown time zone 'Mars/Olympus'"),
        ({"last": "a week"}, r"invalid report 'r' last="),
        ({"notify": "carrier-pigeon"}, r"unknown channel 'carrier-pigeon'"),
    ],
)
def test_schedule_mistakes_fail_at_definition(options, message):
    with pytest.raises(DefinitionError, match=message):
        report("r", "shop", **options)


@pytest.mark.core
def test_the_compiler_checks_the_dashboard_and_filters():
    shop = load_definitions((ROOT / "metrics" / "shop.py",))
    # The dashboard draws the checkout funnel, the signups' retention and the paths after a signup.
    base = [*shop.streams, *shop.metrics, *shop.rollups, *shop.funnels, *shop.retentions, *shop.paths, *shop.dashboards]
    assert compile(definitions([*base, report("ok", "shop", where={"country": "FR"})])).definitions.reports[0].where == (
        ("country", ("FR",)),
    )
    with pytest.raises(CompilationError, match=r"report 'r': no dashboard named 'shoop'; did you mean 'shop'"):
        compile(definitions([*base, report("r", "shoop")]))
    with pytest.raises(CompilationError, match=r"dashboard 'shop' cannot filter by 'path'"):
        compile(definitions([*base, report("r", "shop", where={"path": "/"})]))


@pytest.mark.store
def test_reports_are_rendered_once_per_due_time_and_delivered(shop_ws, tmp_path):
    hook, smtp = Hook(), Smtp()
    schedule = report(
        "daily", "shop", every="1d", at="08:00", last="7d", where={"device": "mobile"},
        notify=[webhook(hook.url, secret="s3cret"), email("team@example.com", smtp=smtp.url)],
    )  # fmt: skip
    notifier = Notifier(allow=LOCAL, base_delay=0.05)
    scheduler = ReportScheduler(shop_ws, (schedule,), tmp_path, tmp_path / "reports", notifier.send, close=notifier.close)
    try:
        assert scheduler.run_once(at("2026-11-27T09:00:00+00:00")) == []  # first sight: remembered, nothing sent
        assert scheduler.run_once(at("2026-11-27T20:00:00+00:00")) == []  # same due time
        (notice,) = scheduler.run_once(at("2026-11-28T08:00:30+00:00"))
        assert notice.files == (tmp_path / "reports" / "daily" / "daily-20261128-0800.html",)
        assert "device = mobile" in notice.files[0].read_text()
        # A restart reads what was sent: no repeat; after days away, only the newest missed report.
        again = ReportScheduler(shop_ws, (schedule,), tmp_path, tmp_path / "reports", notifier.send)
        assert again.run_once(at("2026-11-28T10:00:00+00:00")) == []
        (late,) = again.run_once(at("2026-12-01T12:00:00+00:00"))
        assert late.at == at("2026-12-01T08:00:00+00:00")
        notifier.close()
        bodies = hook.wait(lambda got: len(got) == 2)
        assert [b["report"] for b in bodies] == ["daily", "daily"] and bodies[0]["dashboard"] == "shop"
        assert bodies[0]["files"] == [str(notice.files[0])] and hook.requests[0]["headers"]["x-rta-signature"].startswith("sha256=")
        mail = smtp.messages[0]
        assert mail["Subject"].startswith("[rta] report daily: Shop overview, last 7d")
        (attachment,) = [part for part in mail.walk() if part.get_filename()]
        assert attachment.get_filename() == "daily-20261128-0800.html" and b"vegaEmbed" in attachment.get_payload(decode=True)
    finally:
        hook.close()
        smtp.close()
    assert json.loads((tmp_path / ".rta" / "reports.json").read_text()) == {"daily": "2026-12-01T08:00:00+00:00"}


def _shop_reporting_to(root: Path, toml: str, url: str) -> Path:
    """The shop example as a project under ``root`` (``toml`` its rta.toml), its report notifying a webhook at ``url``."""
    (root / "metrics").mkdir(parents=True)
    (root / "rta.toml").write_text(toml)
    shop = (ROOT / "metrics" / "shop.py").read_text().replace('notify="log")', f'notify=webhook("{url}"))')
    (root / "metrics" / "shop.py").write_text(shop.replace("from rta import (", "from rta import (\n    webhook,"))
    return root


@pytest.mark.store
def test_rta_reports_send_renders_now_and_delivers(tmp_path):
    hook = Hook()
    toml = '[store]\ndsn = "chdb://data"\n[alerts]\nallow_hosts = ["127.0.0.1"]\n[reports]\nfolder = "out"\n'
    project = _shop_reporting_to(tmp_path / "app", toml, hook.url)
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    run = [sys.executable, "-m", "rta.cli"]
    try:
        listed = subprocess.run([*run, "reports", "list", "-p", str(project), "--format", "csv"], capture_output=True, text=True, env=env)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[1].startswith("shop_daily,shop,1d,08:00,UTC,24h,false,webhook:http://127.0.0.1")
        sent = subprocess.run(
            [*run, "reports", "send", "shop_daily", "-p", str(project)], capture_output=True, text=True, env=env, timeout=120
        )
        assert sent.returncode == 0, sent.stderr
        html_file = Path(sent.stdout.splitlines()[0])
        assert html_file.parent == project / "out" / "shop_daily" and html_file.exists()
        assert sent.stdout.splitlines()[1] == f"webhook:{hook.url}: delivered"
        (body,) = hook.json()
        assert body["report"] == "shop_daily" and body["test"] is True and body["range"] == "last 24h"
        missing = subprocess.run([*run, "reports", "send", "weekly", "-p", str(project)], capture_output=True, text=True, env=env)
        assert missing.returncode == 2 and "no scheduled report named 'weekly'; the project has: shop_daily" in missing.stderr
    finally:
        hook.close()


@pytest.mark.core
def test_a_local_target_is_refused_without_allow_hosts(tmp_path):
    project = _shop_reporting_to(tmp_path / "app", '[store]\ndsn = "chdb://data"\n', "http://127.0.0.1:9/x")
    env = {k: v for k, v in os.environ.items() if k != "RTA_CLICKHOUSE_DSN"}
    sent = subprocess.run(
        [sys.executable, "-m", "rta.cli", "reports", "send", "shop_daily", "-p", str(project)], capture_output=True, text=True, env=env
    )
    assert sent.returncode == 2 and "report 'shop_daily'" in sent.stderr and "allow_hosts" in sent.stderr
    assert not (project / "reports").exists()
