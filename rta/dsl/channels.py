"""Where alert notifications go: webhooks, Slack-compatible webhooks, email, the log.

Channels are plain values; checking targets against SSRF and sending happen in
``rta.alerts``, at load, test and send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

from rta.errors import DefinitionError

_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


def _check_http_url(url: str, what: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"{what}: expected an http(s) URL such as 'https://hooks.example.com/rta', got {url!r}"
        raise DefinitionError(msg)
    if parts.username or parts.password:
        msg = f"{what}: credentials in the URL ({url!r}) would be logged; pass secret= for signing instead"
        raise DefinitionError(msg)
    return url


@dataclass(frozen=True, slots=True)
class Webhook:
    """POST a JSON body; with ``secret`` the body is signed (HMAC-SHA256, ``X-Rta-Signature``).

    ``secret`` may be ``"env:NAME"`` to read it from the environment when sending.
    ``slack=True`` sends Slack's ``{"text": ...}`` body instead.
    """

    url: str
    secret: str | None = None
    slack: bool = False

    def __str__(self) -> str:
        return f"{'slack' if self.slack else 'webhook'}:{self.url}"


@dataclass(frozen=True, slots=True)
class Email:
    """Mail through an SMTP server given as ``smtp://[user:password@]host[:port][?starttls=1]``."""

    to: tuple[str, ...]
    smtp: str = "smtp://localhost:25"
    sender: str = "rta@localhost"

    def __str__(self) -> str:
        return f"mailto:{','.join(self.to)}"


@dataclass(frozen=True, slots=True)
class Log:
    """Write notifications to rta's log (stderr of ``rta run``)."""

    def __str__(self) -> str:
        return "log"


Channel: TypeAlias = Webhook | Email | Log


def shown_channel(target: Channel) -> str:
    """A channel for a repr, without what may be secret: a webhook's path (Slack's holds its token), a mail server.

    >>> shown_channel(slack("https://hooks.slack.com/services/T0/B0/x")), shown_channel(email(["a@x.org", "b@x.org"]))
    ('slack:https://hooks.slack.com/…', 'mailto:a@x.org,b@x.org')
    """
    if isinstance(target, Webhook):
        parts = urlsplit(target.url)
        host = parts.netloc.rpartition("@")[2]
        return f"{'slack' if target.slack else 'webhook'}:{parts.scheme}://{host}{'/…' if parts.path.strip('/') else ''}"
    if isinstance(target, Email):
        shown = target.to[:3] + ((f"… {len(target.to) - 3} more",) if len(target.to) > 3 else ())
        return "mailto:" + ",".join(shown)
    return str(target)


def webhook(url: str, *, secret: str | None = None) -> Webhook:
    """A JSON webhook.

    >>> webhook("https://hooks.example.com/rta", secret="env:RTA_HOOK_SECRET")
    Webhook(url='https://hooks.example.com/rta', secret='env:RTA_HOOK_SECRET', slack=False)
    """
    return Webhook(_check_http_url(url, "webhook"), secret)


def slack(url: str) -> Webhook:
    """A Slack (or Mattermost, Discord /slack, Teams-compatible) incoming webhook.

    >>> str(slack("https://hooks.slack.com/services/T0/B0/x"))
    'slack:https://hooks.slack.com/services/T0/B0/x'
    """
    return Webhook(_check_http_url(url, "slack"), None, slack=True)


def email(to: str | list[str] | tuple[str, ...], *, smtp: str = "smtp://localhost:25", sender: str = "rta@localhost") -> Email:
    """Email to one or more addresses.

    >>> email("oncall@example.com", smtp="smtp://mail.example.com:587?starttls=1").to
    ('oncall@example.com',)
    """
    addresses = (to,) if isinstance(to, str) else tuple(to)
    bad = [a for a in (*addresses, sender) if not isinstance(a, str) or not _EMAIL.match(a)]
    if not addresses or bad:
        msg = f"email: expected addresses such as 'oncall@example.com', got {bad or addresses!r}"
        raise DefinitionError(msg)
    parts = urlsplit(smtp)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        msg = f"email: smtp= takes 'smtp://host:port' or 'smtps://host:port', got {smtp!r}"
        raise DefinitionError(msg)
    return Email(addresses, smtp, sender)


def channel(spec: str | Channel) -> Channel:
    """A channel from a short spec: ``webhook:URL``, ``slack:URL``, ``mailto:a@x,b@y`` or ``log``.

    >>> channel("mailto:oncall@example.com")
    Email(to=('oncall@example.com',), smtp='smtp://localhost:25', sender='rta@localhost')
    """
    if isinstance(spec, Webhook | Email | Log):
        return spec
    if not isinstance(spec, str):
        msg = f"notify= takes channels such as 'webhook:https://…', 'slack:https://…', 'mailto:a@b' or 'log', got {spec!r}"
        raise DefinitionError(msg)
    kind, _, rest = spec.partition(":")
    if kind == "webhook":
        return webhook(rest)
    if kind == "slack":
        return slack(rest)
    if kind == "mailto":
        return email(rest.split(","))
    if spec == "log":
        return Log()
    msg = f"unknown channel {spec!r}; write 'webhook:https://…', 'slack:https://…', 'mailto:a@b' or 'log'"
    raise DefinitionError(msg)
