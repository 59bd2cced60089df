"""Delivering notifications to real loopback receivers: webhooks (signed, retried, pinned), Slack, email."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from rta.alerts.notify import DeliveryError, Notification, Notifier
from rta.alerts.ssrf import AllowList, check_written
from rta.dsl.channels import email, slack, webhook
from tests.receivers import Hook, Smtp

pytestmark = pytest.mark.core
LOCAL = AllowList.parse(["127.0.0.1"])
NOTE = Notification(
    "error spike", "firing", datetime(2026, 11, 28, 12, 5, tzinfo=UTC), "errors over 5m > 100", (({"country": "FR"}, 150.0),)
)


@pytest.fixture
def hook():
    receiver = Hook()
    yield receiver
    receiver.close()


def recorder():
    seen: list[tuple[str, str, str]] = []
    return seen, lambda note, channel, outcome, detail: seen.append((channel, outcome, detail))


def test_signed_webhook_body_names_the_alert_and_groups(hook, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    Notifier(allow=LOCAL).deliver(NOTE, webhook(hook.url, secret="env:HOOK_SECRET"))
    (request,) = hook.requests
    body = json.loads(request["body"])
    assert (
        body["alert"] == "error spike" and body["status"] == "firing" and body["groups"] == [{"group": {"country": "FR"}, "value": 150.0}]
    )
    headers = request["headers"]
    signed = headers["x-rta-timestamp"].encode() + b"." + request["body"]
    assert headers["x-rta-signature"] == "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert headers["x-rta-delivery"] == NOTE.id


def test_slack_gets_one_line_of_text(hook):
    Notifier(allow=LOCAL).deliver(NOTE, slack(hook.url))
    text = hook.json()[0]["text"]
    assert text.startswith("[rta] FIRING: error spike: errors over 5m > 100 (FR: 150)")


def test_retries_with_backoff_honour_retry_after_then_deliver_once(hook):
    hook.responses = [(500, {}), (429, {"Retry-After": "0.3"}), (503, {})]
    seen, record = recorder()
    notifier = Notifier(allow=LOCAL, record=record, base_delay=0.05)
    started = time.monotonic()
    notifier.send(NOTE, (webhook(hook.url),))
    notifier.close(timeout=10)
    assert [o for _, o, _ in seen] == ["retrying", "retrying", "retrying", "sent"]
    assert len(hook.requests) == 4 and time.monotonic() - started >= 0.3
    assert len({r["headers"]["x-rta-delivery"] for r in hook.requests}) == 1  # one id: receivers can drop repeats


def test_client_errors_are_not_retried_and_a_failing_channel_blocks_no_other(hook):
    broken = Hook()
    broken.responses = [(400, {})]
    seen, record = recorder()
    notifier = Notifier(allow=LOCAL, record=record, base_delay=0.05)
    notifier.send(NOTE, (webhook(broken.url), webhook(hook.url)))
    notifier.close(timeout=10)
    broken.close()
    outcomes = {(c, o) for c, o, _ in seen}
    assert (f"webhook:{broken.url}", "failed") in outcomes and (f"webhook:{hook.url}", "sent") in outcomes
    assert len(broken.requests) == 1


def test_unreachable_channels_give_up_after_the_attempts(hook):
    seen, record = recorder()
    notifier = Notifier(allow=LOCAL, record=record, base_delay=0.01, attempts=3, timeout=1)
    notifier.send(NOTE, (webhook("http://127.0.0.1:9/nothing-listens"),))
    notifier.close(timeout=10)
    assert [o for _, o, _ in seen] == ["retrying", "retrying", "failed"]
    assert "after 3 attempt(s)" in seen[-1][2]


def test_redirects_are_checked_like_the_target(hook):
    hop = Hook()  # allowed by name only; redirects to the loopback address, which is not allowed
    hop.responses = [(307, {"Location": hook.url})]
    allow = AllowList.parse(["hooks.test"])
    notifier = Notifier(allow=allow, resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(DeliveryError, match="refused: loopback address 127.0.0.1"):
        notifier.deliver(NOTE, webhook(f"http://hooks.test:{hop.port}/hook"))
    assert hop.requests[0]["headers"]["host"] == f"hooks.test:{hop.port}"  # pinned address, the name kept as Host
    assert hook.requests == []
    hop.close()


def test_dns_rebinding_to_an_internal_address_is_refused_at_send_time(hook):
    target = webhook(f"http://rebind.example.com:{hook.port}/hook")
    check_written(target.url, AllowList())  # a public-looking name passes when rules load
    with pytest.raises(DeliveryError, match="resolves to a loopback address 127.0.0.1"):
        Notifier(allow=AllowList(), resolver=lambda host, port: ["127.0.0.1"]).deliver(NOTE, target)
    assert hook.requests == []


def test_email_reaches_an_smtp_server_on_loopback():
    server = Smtp()
    try:
        Notifier(allow=LOCAL).deliver(NOTE, email(["oncall@example.com", "ops@example.com"], smtp=server.url))
        (message,) = server.messages
        assert message["To"] == "oncall@example.com, ops@example.com"
        assert message["Subject"].startswith("[rta] FIRING: error spike")
        assert '"alert": "error spike"' in message.get_payload()
    finally:
        server.close()
    with pytest.raises(DeliveryError, match="refused"):
        Notifier(allow=AllowList()).deliver(NOTE, email("oncall@example.com", smtp=server.url))
