"""Deliver notifications: at least once, with retries and backoff, one worker per channel.

``Notifier.send`` only enqueues, so the flow and the evaluation never wait for a slow
channel, and a failing channel never holds up another. Each attempt re-checks the target
against SSRF after resolving it and connects to the checked address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from rta.alerts.ssrf import AllowList, Resolver, TargetRefused, host_port, resolve_checked, system_resolver
from rta.alerts.state import Notice
from rta.dsl.channels import Channel, Email, Webhook
from rta.errors import RtaError

log = logging.getLogger("rta.alerts")
MAX_REDIRECTS = 3


class DeliveryError(RtaError):
    """A channel refused or failed a notification; ``retry`` tells whether trying again may help."""

    def __init__(self, message: str, *, retry: bool, after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.after = after


@dataclass(frozen=True, slots=True)
class Notification:
    """What one rule has to say at one evaluation: firing or resolved, for one or more groups."""

    rule: str
    status: Notice
    at: datetime
    condition: str
    groups: tuple[tuple[dict[str, str], float | None], ...]  # (group, value)
    provisional: bool = False
    description: str | None = None
    test: bool = False

    @property
    def id(self) -> str:
        """Stable across retries, so receivers can drop repeats."""
        key = f"{self.rule}|{self.status}|{self.at.isoformat()}|{self.test}"
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook."""
        return {
            "id": self.id,
            "alert": self.rule,
            "status": self.status,
            "at": self.at.isoformat(),
            "condition": self.condition,
            "groups": [{"group": g, "value": v} for g, v in self.groups],
            "provisional": self.provisional,
            "description": self.description,
            "test": self.test,
        }

    def text(self) -> str:
        """One line for chat and logs."""
        head = {"firing": "FIRING", "resolved": "RESOLVED"}[self.status] + (" (test)" if self.test else "")
        shown = ", ".join(f"{'/'.join(g.values()) + ': ' if g else ''}{'n/a' if v is None else f'{v:,.4g}'}" for g, v in self.groups[:10])
        more = f" and {len(self.groups) - 10} more" if len(self.groups) > 10 else ""
        flag = " [provisional data]" if self.provisional else ""
        return f"[rta] {head}: {self.rule}: {self.condition} ({shown}{more}) at {self.at:%Y-%m-%d %H:%M} UTC{flag}"


class Message(Protocol):
    """What the notifier sends: alert notifications, and scheduled reports (``rta.dash.scheduled``)."""

    @property
    def rule(self) -> str: ...  # the alert or report name

    @property
    def status(self) -> str: ...

    @property
    def id(self) -> str: ...

    def payload(self) -> dict[str, Any]: ...

    def text(self) -> str: ...


Record = Callable[[Any, str, str, str], None]  # (message, channel, outcome, detail)


def _secret(value: str) -> bytes:
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if found is None:
            msg = f"the webhook secret comes from ${name}, which is not set"
            raise DeliveryError(msg, retry=False)
        return found.encode()
    return value.encode()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


class _Pinned:
    """Connects to the checked address while TLS and the protocol keep using the host's name."""

    def __init__(self, address: str, **options: Any) -> None:
        self._address = address
        super().__init__(**options)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return super()._get_socket(self._address, port, timeout)  # type: ignore[misc]


class _PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class _PinnedSMTPS(_Pinned, smtplib.SMTP_SSL):
    pass


@dataclass
class Notifier:
    """Sends notifications on worker threads, retrying with exponential backoff and jitter."""

    allow: AllowList = field(default_factory=AllowList)
    record: Record | None = None
    resolver: Resolver = system_resolver
    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    queue_size: int = 1000
    timeout: float = 10.0
    _queues: dict[str, queue.Queue[tuple[Message, Channel] | None]] = field(default_factory=dict, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def send(self, note: Message, channels: tuple[Channel, ...]) -> None:
        """Queue ``note`` on each channel; never blocks (a full queue is recorded as a drop)."""
        for target in channels:
            try:
                self._queue_for(target).put_nowait((note, target))
            except queue.Full:
                self._record(note, target, "dropped", f"the channel's queue holds {self.queue_size} notifications already")

    def deliver(self, note: Message, target: Channel) -> None:
        """One attempt, now, on this thread (``rta alerts test``); raises :class:`DeliveryError`."""
        if isinstance(target, Webhook):
            self._post(note, target)
        elif isinstance(target, Email):
            self._mail(note, target)
        else:
            log.warning(note.text())

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop the workers."""
        deadline = time.monotonic() + timeout
        for q in self._queues.values():
            q.put(None)
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        self._stop.set()  # cut short backoff sleeps of workers still retrying
        for thread in self._threads:
            thread.join(1)

    def _queue_for(self, target: Channel) -> queue.Queue[tuple[Message, Channel] | None]:
        key = str(target)
        with self._lock:
            if key not in self._queues:
                self._queues[key] = queue.Queue(maxsize=self.queue_size)
                thread = threading.Thread(target=self._work, args=(self._queues[key],), name=f"rta-notify-{key[:40]}", daemon=True)
                self._threads.append(thread)
                thread.start()
            return self._queues[key]

    def _work(self, items: queue.Queue[tuple[Message, Channel] | None]) -> None:
        while (item := items.get()) is not None:
            self._attempt(*item)

    def _attempt(self, note: Message, target: Channel) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self.deliver(note, target)
            except DeliveryError as err:
                if not err.retry or attempt == self.attempts:
                    self._record(note, target, "failed", f"after {attempt} attempt(s): {err}")
                    return
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                delay = max(delay, min(err.after or 0.0, self.max_delay))
                self._record(note, target, "retrying", f"attempt {attempt}: {err}; next in {delay:.1f}s")
                if self._stop.wait(delay):
                    self._record(note, target, "failed", "rta stopped before the channel accepted it")
                    return
            else:
                self._record(note, target, "sent", f"attempt {attempt}")
                return

    def _record(self, note: Message, target: Channel, outcome: str, detail: str) -> None:
        if outcome != "sent":
            log.warning("notification %s of %r via %s: %s %s", note.status, note.rule, target, outcome, detail)
        if self.record is not None:
            self.record(note, str(target), outcome, detail)

    def _post(self, note: Message, hook: Webhook) -> None:
        body = json.dumps({"text": note.text()} if hook.slack else note.payload(), default=str).encode()
        headers = {"content-type": "application/json", "user-agent": "rta-alerts", "x-rta-delivery": note.id}
        if hook.secret:
            stamp = str(int(time.time()))
            digest = hmac.new(_secret(hook.secret), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers |= {"x-rta-timestamp": stamp, "x-rta-signature": f"sha256={digest}"}
        url = hook.url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._post_pinned(url, body, headers)
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])  # checked again on the next turn
                continue
            if response.status_code in (408, 429) or response.status_code >= 500:
                raise DeliveryError(f"{url} answered {response.status_code}", retry=True, after=_retry_after(response))
            if response.status_code >= 400:
                raise DeliveryError(f"{url} answered {response.status_code}: {response.text[:200]}", retry=False)
            return
        msg = f"{hook.url} redirected more than {MAX_REDIRECTS} times"
        raise DeliveryError(msg, retry=False)

    def _post_pinned(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            address = resolve_checked(url, self.allow, self.resolver)
        except TargetRefused as err:
            raise DeliveryError(str(err), retry=False) from None
        parts = urlsplit(url)
        host, port = host_port(url)
        pinned = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{pinned}:{port}").geturl()
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                return client.post(target, content=body, headers={**headers, "host": parts.netloc}, extensions=extensions)
        except httpx.HTTPError as err:
            raise DeliveryError(f"{url}: {type(err).__name__}: {err}", retry=True) from None

    def _mail(self, note: Message, mail: Email) -> None:
        try:
            address = resolve_checked(mail.smtp, self.allow, self.resolver)
        except TargetRefused as err:
            raise DeliveryError(str(err), retry=False) from None
        parts = urlsplit(mail.smtp)
        host, port = host_port(mail.smtp)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = mail.sender, ", ".join(mail.to), note.text()[:200]
        message["Message-ID"] = f"<{note.id}@rta>"
        message.set_content(note.text() + "\n\n" + json.dumps(note.payload(), indent=2, default=str))
        for filename, data, mime in getattr(note, "attachments", ()):  # reports carry their files
            kind, _, sub = mime.partition("/")
            message.add_attachment(data, maintype=kind, subtype=sub, filename=filename)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP = (
                _PinnedSMTPS(address, timeout=self.timeout, context=context)
                if parts.scheme == "smtps"
                else _PinnedSMTP(address, timeout=self.timeout)
            )
            with smtp:
                smtp.connect(host, port)
                if parts.scheme == "smtp" and "starttls=1" in (parts.query or ""):
                    smtp.starttls(context=context)
                if parts.username:
                    smtp.login(unquote(parts.username), unquote(parts.password or ""))
                smtp.send_message(message)
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(f"{host}:{port} answered {err.smtp_code}", retry=err.smtp_code >= 400 and err.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryError(f"{host}:{port}: {type(err).__name__}: {err}", retry=True) from None
