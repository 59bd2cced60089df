"""Alert rules: definitions, the state machine on a fake clock, and the SSRF corpus (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rta import alert, col, count, metric, no_events, rollup, stream, total, webhook
from rta.alerts.ssrf import AllowList, TargetRefused, check_written, literal_ip, resolve_checked
from rta.alerts.state import RuleState, advance, in_quiet_hours
from rta.compiler import compile
from rta.dsl.definitions import definitions
from rta.errors import CompilationError, DefinitionError

pytestmark = pytest.mark.core
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop():
    events = stream("events", dimensions={"event": str, "country": str}, measures={"revenue": float})
    errors = metric("errors", count(), where=col("event") == "error", stream=events)
    revenue = metric("revenue", total("revenue"), stream=events)
    return events, errors, revenue


def test_rules_read_like_sentences(shop):
    events, errors, revenue = shop
    assert (errors.over("5m") > 100).describe() == "errors over 5m > 100"
    assert (revenue.over("1h").vs("1w") < -0.3).describe() == "revenue over 1h vs 1w < -0.3"
    assert errors.over("15m").outside(1, 10).describe() == "errors over 15m outside 1 and 10"
    assert no_events(events, "10m").describe() == "events arriving in events over 10m < 1"
    rule = alert("spike", errors.over("5m") > 100, for_="2m", keep_firing="5m", renotify="1h", cooldown="10m", by="country")
    assert (rule.pending, rule.keep_firing, rule.renotify, rule.cooldown, rule.by) == (120, 300, 3600, 600, ("country",))
    assert str(rule.notify[0]) == "log"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda e, r: alert("a", r.over("90s") > 1), r"window of 'errors'.*whole minutes"),
        (lambda e, r: alert("a", r.over("5m").vs("2w") > 1), r"unknown baseline '2w'; valid baselines are: previous_period, 1d, 1w, 1y"),
        (lambda e, r: alert("a", r.over("5m").between(5, 1)), r"low bound is above the high bound"),
        (lambda e, r: alert("a", r.over("5m") > "ten"), r"threshold of errors over 5m must be a number, got 'ten'"),
        (lambda e, r: alert("a", r.over("5m") > 1, by="contry"), r"did you mean 'country'"),
        (lambda e, r: alert("a", r.over("5m") > 1, notify="pager:x"), r"unknown channel 'pager:x'"),
        (lambda e, r: alert("a", r.over("5m") > 1, notify="webhook:ftp://x"), r"expected an http\(s\) URL"),
        (lambda e, r: alert("a", r.over("5m") > 1, notify="webhook:https://u:p@x.io/"), r"credentials in the URL"),
        (lambda e, r: alert("a", r.over("5m") > 1, quiet_hours=("22:00", "07:00", "Mars/Olympus")), r"unknown time zone"),
        (lambda e, r: alert("a", r.over("5m") > 1, quiet_hours=("25:00", "07:00")), r"times as HH:MM, got '25:00'"),
        (lambda e, r: alert("a", r.over("5m") > 1, pending="1m", for_="1m"), r"pending= and for_= are the same setting"),
        (lambda e, r: alert("a", no_events(e, "5m"), by="country"), r"cannot be split or filtered"),
        (lambda e, r: alert("a", r.over("5m") > 1, where=col("country") > 5), r"alert 'a' where=: .*dimension 'country' with 5"),
        (lambda e, r: alert("a", r.over("5m") > 1, where=col("revenue") > 5), r"cannot split or filter by 'revenue'"),
        (lambda e, r: alert("a", r > 5), r"compare a window of metric 'errors', not the metric: for example errors.over\('5m'\) > 5"),
        (lambda e, r: alert("a", True), r"expected a condition such as"),
        (lambda e, r: no_events(e).window.vs("1w"), r"cannot be compared with a baseline"),
    ],
)
def test_mistakes_fail_at_definition_time(shop, make, message):
    events, errors, _ = shop
    with pytest.raises(DefinitionError, match=message):
        make(events, errors)


def test_rules_compile_only_when_a_rollup_answers_them(shop):
    events, errors, revenue = shop
    hourly = rollup("hourly", [errors, revenue], by=["country"], keep={"1h": "90d"})
    minute_rule = alert("fast", errors.over("5m") > 1, by="country")
    with pytest.raises(
        CompilationError,
        match=r"alert 'fast' cannot be evaluated: no rollup holds 'errors' by \['country'\] at a grain that divides 1 minute",
    ):
        compile(definitions([events, hourly, minute_rule]))
    hour_rule = alert("slow", errors.over("1h") > 1, every="1h", by="country")
    plan = compile(definitions([events, hourly, hour_rule]))
    assert "rta_alert_history" in plan.ddl_sql()
    with pytest.raises(DefinitionError, match="two different alerts are named 'slow'"):
        definitions([hour_rule, alert("slow", errors.over("2h") > 1, every="1h")])


# --- the state machine, on a fake clock -----------------------------------------------------


def run(rule, breaches: list[bool], *, start: datetime = T0, step: int = 60) -> list[tuple[int, str | None, str]]:
    """Step ``rule`` once a minute; returns (minute, notice, status) for every step."""
    state, out = RuleState(), []
    for i, breached in enumerate(breaches):
        state, notice = advance(state, breached, start + timedelta(seconds=i * step), rule)
        out.append((i, notice, state.status))
    return out


def notices(steps):
    return [(i, n) for i, n, _ in steps if n]


@pytest.fixture
def errors(shop):
    return shop[1]


def test_pending_then_firing_then_resolved(errors):
    rule = alert("a", errors.over("1m") > 1, pending="3m")
    steps = run(rule, [False, True, True, True, True, False, False])
    assert [s for _, _, s in steps] == ["normal", "pending", "pending", "pending", "firing", "normal", "normal"]
    assert notices(steps) == [(4, "firing"), (5, "resolved")]


def test_a_breach_shorter_than_pending_never_fires(errors):
    rule = alert("a", errors.over("1m") > 1, pending="3m")
    assert notices(run(rule, [True, True, False, True, True, False])) == []


def test_keep_firing_rides_out_short_gaps(errors):
    rule = alert("a", errors.over("1m") > 1, keep_firing="2m")
    steps = run(rule, [True, False, True, False, False, False])
    # Stops holding at minute 3; kept firing for 2 minutes from then.
    assert notices(steps) == [(0, "firing"), (5, "resolved")]
    assert [s for _, _, s in steps] == ["firing", "firing", "firing", "firing", "firing", "normal"]


def test_renotify_repeats_while_firing(errors):
    rule = alert("a", errors.over("1m") > 1, renotify="3m")
    assert notices(run(rule, [True] * 8 + [False])) == [(0, "firing"), (3, "firing"), (6, "firing"), (8, "resolved")]


def test_cooldown_keeps_a_flapping_rule_quiet(errors):
    rule = alert("a", errors.over("1m") > 1, cooldown="5m")
    steps = run(rule, [True, False, True, False, True, True, True, True, True, False])
    # Fires, recovers; the flaps within 5 minutes of that recovery say nothing, then it may fire again.
    assert notices(steps) == [(0, "firing"), (1, "resolved"), (6, "firing"), (9, "resolved")]


def test_quiet_hours_hold_notifications_until_they_end(errors):
    rule = alert("a", errors.over("1m") > 1, quiet_hours=("23:00", "23:03", "Europe/Paris"))  # 22:00-22:03 UTC in winter
    start = datetime(2026, 11, 28, 21, 58, tzinfo=UTC)
    steps = run(rule, [False, False, True, True, True, True, True, True], start=start)
    assert notices(steps) == [(5, "firing")]  # breached at 22:00, told at 22:03
    held = run(rule, [False, False, True, False, False, False, False], start=start)
    assert notices(held) == []  # fired and recovered inside quiet hours: nothing to tell
    assert in_quiet_hours(rule.quiet_hours, datetime(2026, 11, 28, 22, 2, tzinfo=UTC))
    overnight = alert("b", errors.over("1m") > 1, quiet_hours=("22:00", "07:00"))
    assert in_quiet_hours(overnight.quiet_hours, datetime(2026, 11, 28, 23, 0, tzinfo=UTC))
    assert in_quiet_hours(overnight.quiet_hours, datetime(2026, 11, 29, 6, 59, tzinfo=UTC))
    assert not in_quiet_hours(overnight.quiet_hours, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))
    assert not in_quiet_hours(rule.quiet_hours, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


# --- SSRF -------------------------------------------------------------------------------------

REFUSED_AS_WRITTEN = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://0.0.0.0/",
    "http://0/",
    "http://localhost:8080/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://2852039166/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://printer.local/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://192.0.2.1/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[::127.0.0.1]/",
    "http://[ff02::1]/",
    "smtp://127.0.0.1:25",
    "smtps://[::1]:465",
]


@pytest.mark.parametrize("url", REFUSED_AS_WRITTEN)
def test_internal_targets_are_refused_as_written(url):
    with pytest.raises(TargetRefused, match="refused"):
        check_written(url, AllowList())


def fake_dns(table: dict[str, list[str]]):
    return lambda host, port: table[host]


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("rebind.example.com", ["127.0.0.1"]),
        ("meta.example.com", ["169.254.169.254"]),
        ("mixed.example.com", ["93.184.216.34", "10.0.0.7"]),  # one bad address refuses the name
        ("six.example.com", ["::ffff:192.168.0.1"]),
        ("ula.example.com", ["fd00::5"]),
        ("empty.example.com", []),
    ],
)
def test_names_resolving_inside_are_refused_at_send_time(host, addresses):
    url = f"https://{host}/hook"
    check_written(url, AllowList())  # fine as written
    with pytest.raises(TargetRefused):
        resolve_checked(url, AllowList(), fake_dns({host: addresses}))


def test_public_targets_pass_and_the_allow_list_opens_local_ones():
    assert (
        resolve_checked("https://hooks.example.com/x", AllowList(), fake_dns({"hooks.example.com": ["93.184.216.34"]})) == "93.184.216.34"
    )
    assert resolve_checked("http://8.8.8.8/", AllowList(), fake_dns({})) == "8.8.8.8"
    allow = AllowList.parse(["127.0.0.1", "10.1.0.0/16", "hooks.internal"])
    assert resolve_checked("http://0x7f.1:9/", allow, fake_dns({})) == "127.0.0.1"
    assert resolve_checked("http://10.1.2.3/", allow, fake_dns({})) == "10.1.2.3"
    assert resolve_checked("http://hooks.internal/", allow, fake_dns({"hooks.internal": ["10.9.9.9"]})) == "10.9.9.9"
    with pytest.raises(TargetRefused):
        resolve_checked("http://10.2.0.1/", allow, fake_dns({}))
    assert str(literal_ip("0177.0.0.01")) == "127.0.0.1"
    with pytest.raises(DefinitionError):
        webhook("gopher://127.0.0.1/")
