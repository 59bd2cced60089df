"""Segment tracking-spec messages, checked against a declared stream before they reach the log.

Both ways write the messages themselves, prefixed with what the API settled: ``_t`` (the event
time, clock skew corrected), ``_id`` (the insert id, derived when missing) and ``_ip`` (the
client's address). The flow maps messages to the stream's fields, columnwise, and fills
dimensions the properties leave out from ``context`` (see ``rta.flows.events``).

- :class:`FastPath` checks a whole batch in C (msgspec) and writes its bytes untouched when it can;
- :func:`validate` checks message by message and names every bad one: index, insert id,
  field and reason. Batches the fast path declines come here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from rta.compiler.plan import StreamPlan
from rta.flows.events import EVENT_NAMES

MAX_EVENT_BYTES = 64 * 1024
MAX_EVENTS = 2_000
MAX_STRING = 1_024  # characters of a dimension value
MAX_NAME = 200  # characters of an event name
TYPES = ("track", *EVENT_NAMES)
# Every key the Segment spec and its SDKs put on a message; anything else is a mistake.
KNOWN_KEYS = frozenset(
    {
        "type", "event", "name", "category", "userId", "anonymousId", "previousId", "groupId", "messageId",
        "timestamp", "originalTimestamp", "sentAt", "receivedAt", "properties", "traits", "context",
        "integrations", "_metadata", "version", "channel", "writeKey", "options", "library",
    }
)  # fmt: skip


class RequestError(Exception):
    """The request as a whole is unusable: its status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejection:
    """One event refused: which, why."""

    index: int
    insert_id: str | None
    field: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        """For the JSON response."""
        return {"index": self.index, "insert_id": self.insert_id, "field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Limits:
    """What a request may hold and how old or new its events may be."""

    max_age: timedelta = timedelta(hours=72)
    max_ahead: timedelta = timedelta(hours=1)


@dataclass
class Validated:
    """Accepted messages (prefixed with ``_t``, ``_id``, ``_ip``), their insert ids, and rejections."""

    events: list[dict[str, object]] = field(default_factory=list)
    insert_ids: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class _Bad(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def decode_messages(body: bytes, *, ndjson: bool, single_type: str | None) -> list[Any]:
    """The request's messages, undecoded items left as they are for per-event checks."""
    if not body.strip():
        raise RequestError(400, "the request body is empty; send a JSON object, an array of messages or NDJSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(400, f"the body is not valid UTF-8 (byte {err.start}); encode JSON as UTF-8") from None
    try:
        if ndjson:
            items = [msgspec.json.decode(line) for line in text.splitlines() if line.strip()]
        else:
            items = msgspec.json.decode(text)
    except msgspec.DecodeError as err:
        raise RequestError(400, f"malformed JSON: {err}") from None
    except RecursionError:
        raise RequestError(400, "the JSON is nested too deeply; keep properties flat") from None
    if single_type is not None:
        if not isinstance(items, dict):
            raise RequestError(400, f"/v1/{single_type} takes one JSON object (a message); use /v1/batch for several")
        return [{**items, "type": items.get("type", single_type)}]
    if isinstance(items, dict):
        if "batch" not in items:
            raise RequestError(400, 'a batch body is {"batch": [messages]}, a JSON array of messages, or NDJSON')
        shared = items.get("context") if isinstance(items.get("context"), dict) else None
        items = items["batch"]
        if not isinstance(items, list):
            raise RequestError(400, '"batch" must be an array of messages')
        if shared:  # a batch-level context applies to every message that has none of its own
            items = [{**m, "context": {**shared, **(m.get("context") or {})}} if isinstance(m, dict) else m for m in items]
    if not isinstance(items, list):
        raise RequestError(400, "expected an array of messages")
    if len(items) > MAX_EVENTS:
        raise RequestError(413, f"the request holds {len(items):,} events; the limit is {MAX_EVENTS:,} per request")
    return items


def _time(text: object, name: str) -> datetime:
    if not isinstance(text, str):
        raise _Bad(name, f"expected an ISO 8601 time such as 2026-11-28T12:00:00Z, got {_show(text)}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(name, f"expected an ISO 8601 time such as 2026-11-28T12:00:00Z, got {_show(text)}") from None
    if value.tzinfo is None:
        raise _Bad(name, f"{text!r} has no time zone; add Z or an offset such as +01:00")
    return value.astimezone(UTC)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _event_time(message: Mapping[str, Any], now: datetime, limits: Limits) -> datetime:
    """Segment's rule: ``timestamp``, else ``originalTimestamp`` corrected by the client's clock skew (``sentAt``)."""
    if message.get("timestamp") is not None:
        at = _time(message["timestamp"], "timestamp")
        name = "timestamp"
    elif message.get("originalTimestamp") is not None:
        at = _time(message["originalTimestamp"], "originalTimestamp")
        if message.get("sentAt") is not None:
            at = now - (_time(message["sentAt"], "sentAt") - at)
        name = "originalTimestamp"
    else:
        return now
    if at < now - limits.max_age:
        hours = limits.max_age.total_seconds() / 3600
        raise _Bad(name, f"{at.isoformat()} is more than {hours:g} hours old; load old events with `rta load`")
    if at > now + limits.max_ahead:
        hours = limits.max_ahead.total_seconds() / 3600
        raise _Bad(name, f"{at.isoformat()} is more than {hours:g} hour(s) ahead; check the client clock")
    return at


def _check_dimension(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"properties.{name}", f"expected a string, got {_show(value)}")
    if len(str(value)) > MAX_STRING:
        raise _Bad(f"properties.{name}", f"is {len(str(value)):,} characters; the limit is {MAX_STRING:,}")


def _check_measure(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
        raise _Bad(f"properties.{name}", f"expected a number, got {_show(value)}")


def _check_context(context: dict[str, Any]) -> None:
    """The context fields the flow reads must have the types the fast path demands."""
    try:
        msgspec.convert(context, _Context)
    except msgspec.ValidationError as err:
        where = str(err).rpartition(" - at `$")[2].rstrip("`")
        raise _Bad(f"context{where}", str(err).partition(" - at ")[0]) from None


def _event(
    message: object, stream: StreamPlan, now: datetime, limits: Limits, client_ip: str | None, fallback_id: str
) -> tuple[dict[str, object], str]:
    if not isinstance(message, dict):
        raise _Bad("", f"expected a message object, got {_show(message)}")
    unknown = sorted(set(message) - KNOWN_KEYS)
    if unknown:
        raise _Bad(unknown[0], f"unknown key {unknown[0]!r}; put custom fields in properties")
    kind = message.get("type")
    if kind not in TYPES:
        raise _Bad("type", f"expected one of {', '.join(TYPES)}, got {_show(kind)}")
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise _Bad("event", f"a track call needs an event name, got {_show(name)}")
        if len(name) > MAX_NAME:
            raise _Bad("event", f"is {len(name):,} characters; the limit is {MAX_NAME}")
    user = message.get("userId") if message.get("userId") is not None else message.get("anonymousId")
    if user is None or isinstance(user, bool) or not isinstance(user, str | int) or str(user) == "":
        raise _Bad("userId", "a message needs a userId or an anonymousId (a non-empty string)")
    if len(str(user)) > MAX_NAME:
        raise _Bad("userId", f"is {len(str(user)):,} characters; the limit is {MAX_NAME}")
    insert_id = message.get("messageId", fallback_id)
    if not isinstance(insert_id, str) or not insert_id or len(insert_id) > MAX_NAME:
        raise _Bad("messageId", f"expected a string of 1 to {MAX_NAME} characters, got {_show(insert_id)}")
    properties = message.get("properties", {})
    if not isinstance(properties, dict):
        raise _Bad("properties", f"expected an object, got {_show(properties)}")
    context = message.get("context", {})
    if not isinstance(context, dict):
        raise _Bad("context", f"expected an object, got {_show(context)}")
    _check_context(context)
    for dim in stream.dims:
        if dim != "event":  # the event name comes from the message's type or event, checked above
            _check_dimension(dim, properties.get(dim))
    for measure in stream.measures:
        _check_measure(measure, properties.get(measure))
    settled: dict[str, object] = {"_t": _event_time(message, now, limits).isoformat(), "_id": insert_id}
    if client_ip:
        settled["_ip"] = client_ip
    return {**settled, **message}, insert_id


Text = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]


class _Campaign(msgspec.Struct, gc=False):
    name: Text | None = None
    source: Text | None = None
    medium: Text | None = None
    term: Text | None = None
    content: Text | None = None


class _Page(msgspec.Struct, gc=False):
    path: Text | None = None
    referrer: Text | None = None
    url: Text | None = None
    title: Text | None = None
    search: Text | None = None


class _Location(msgspec.Struct, gc=False):
    country: Text | None = None


class _Context(msgspec.Struct, gc=False):
    userAgent: str | None = None  # noqa: N815 (Segment's spelling)
    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    locale: Text | None = None
    campaign: _Campaign | None = None
    page: _Page | None = None
    location: _Location | None = None


def _located(message: Any) -> bool:
    """Whether a message says where it comes from (so the client's address is not needed)."""
    props, context = message.properties, message.context
    if props is not None and getattr(props, "country", None) is not None:
        return True
    return context is not None and (context.ip is not None or (context.location is not None and context.location.country is not None))


def _settled_time(message: Any, now: datetime) -> datetime:
    """Segment's rule, for a message that passed the typed decode (see :func:`_event_time`)."""
    if message.timestamp is not None:
        return message.timestamp
    if message.originalTimestamp is None:
        return now
    return message.originalTimestamp if message.sentAt is None else now - (message.sentAt - message.originalTimestamp)


class _RawBatch(msgspec.Struct, gc=False):
    batch: list[msgspec.Raw]


class FastPath:
    """Whole batches checked in C by msgspec against types built from the stream.

    A batch that passes is written as its messages' own bytes, each prefixed with the time,
    insert id and client address the API settled (``_t``, ``_id``, ``_ip``); the flow maps
    them to the stream's fields, columnwise. A batch that does not pass, or needs rewriting
    (a batch-level context), goes the per-event way, which names every bad event.
    """

    def __init__(self, stream: StreamPlan) -> None:
        props = [(d, Text | int | None, None) for d in stream.dims if d != "event"]
        props += [(m, float | None, None) for m in stream.measures]
        properties = msgspec.defstruct("Properties", props, gc=False)
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            ("type", Literal["track", "page", "screen", "identify", "group", "alias"]),
            ("event", Annotated[str, msgspec.Meta(max_length=MAX_NAME)] | None, None),
            ("userId", Id | int | None, None),
            ("anonymousId", Id | int | None, None),
            ("messageId", Id | None, None),
            ("timestamp", Annotated[datetime, msgspec.Meta(tz=True)] | None, None),
            ("originalTimestamp", Annotated[datetime, msgspec.Meta(tz=True)] | None, None),
            ("sentAt", Annotated[datetime, msgspec.Meta(tz=True)] | None, None),
            ("properties", properties | None, None),
            ("context", _Context | None, None),
            ("traits", dict[str, Any] | None, None),
            ("integrations", dict[str, Any] | None, None),
            *((name, Any, None) for name in ("name", "category", "previousId", "groupId", "receivedAt", "version", "channel",
                                             "writeKey", "options", "library", "metadata")),
        ]  # fmt: skip
        message = msgspec.defstruct("Message", fields, forbid_unknown_fields=True, rename={"metadata": "_metadata"}, gc=False)
        batch = msgspec.defstruct("Batch", [("batch", list[message]), ("context", dict[str, Any] | None, None)])  # type: ignore[valid-type]
        self._typed = msgspec.json.Decoder(batch)
        self._wants_ip = "country" in stream.dims
        self._raw = msgspec.json.Decoder(_RawBatch)

    def lines(
        self, body: bytes, now: datetime, limits: Limits, client_ip: str | None, seed: Callable[[], str]
    ) -> tuple[list[bytes | msgspec.Raw], list[str]] | None:
        """The messages' bytes (log lines, without their newline) and insert ids, or None when the per-event way must judge the batch."""
        try:
            typed: Any = self._typed.decode(body)
            raw = self._raw.decode(body).batch
        except Exception:  # noqa: BLE001 (whatever is wrong, the per-event way says what, or refuses the request)
            return None
        if typed.context is not None or not raw:
            return None
        if len(raw) > MAX_EVENTS:
            raise RequestError(413, f"the request holds {len(raw):,} events; the limit is {MAX_EVENTS:,} per request")
        if len(body) > MAX_EVENT_BYTES and max(map(len, raw)) > MAX_EVENT_BYTES:
            return None
        messages = typed.batch
        names = [m.event for m in messages]
        if None in names and any(m.type == "track" and m.event is None for m in messages):
            return None  # a track call without an event name
        if not all(name is None or name.strip() for name in set(names)):
            return None  # a blank one
        if None in [m.userId for m in messages] and any(m.userId is None and m.anonymousId is None for m in messages):
            return None
        stamps, given = [m.timestamp for m in messages], [m.messageId for m in messages]
        settled = stamps if None not in stamps else tuple(_settled_time(m, now) for m in messages)
        if min(settled) < now - limits.max_age or max(settled) > now + limits.max_ahead:
            return None
        ids = [given_id or f"{seed()}-{index}" for index, given_id in enumerate(given)] if None in given else given
        unlocated: set[int] = set()
        if client_ip and self._wants_ip:
            countries = [None if m.properties is None else m.properties.country for m in messages]
            if None in countries:
                unlocated = {i for i, country in enumerate(countries) if country is None and not _located(messages[i])}
        rewrite = set(unlocated)
        if None in stamps or None in given:
            rewrite.update(i for i, (at, given_id) in enumerate(zip(stamps, given, strict=True)) if at is None or given_id is None)
        lines: list[bytes | msgspec.Raw] = list(raw)
        ip = b',"_ip":' + msgspec.json.encode(client_ip) if unlocated else b""
        for index in rewrite:
            # What the message leaves to the API goes in front: the settled time, the id, the client address.
            head = b'{"_t":"' + settled[index].astimezone(UTC).isoformat().encode() + b'","_id":' + msgspec.json.encode(ids[index])
            lines[index] = head + (ip if index in unlocated else b"") + b"," + bytes(raw[index])[1:]
        return lines, ids


def validate(
    body: bytes,
    stream: StreamPlan,
    *,
    ndjson: bool = False,
    single_type: str | None = None,
    now: datetime | None = None,
    client_ip: str | None = None,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
    request_id: str | None = None,
) -> Validated:
    """Check every message of a request; never raises for a bad event, only for a bad request.

    Messages without ``messageId`` get one derived from the request (``request_id``, or the
    body's hash) and their position, so a retried request repeats the same ids.
    """
    now = now or datetime.now(UTC)
    items = decode_messages(body, ndjson=ndjson, single_type=single_type)
    seed = request_id or hashlib.blake2b(body, digest_size=12).hexdigest()
    out = Validated()
    for index, message in enumerate(items):
        fallback = f"{seed}-{index}"
        given = message.get("messageId") if isinstance(message, dict) and isinstance(message.get("messageId"), str) else None
        try:
            if len(msgspec.json.encode(message)) > MAX_EVENT_BYTES:
                raise _Bad("", f"the event is over {MAX_EVENT_BYTES // 1024} KB; the limit is {MAX_EVENT_BYTES // 1024} KB per event")
            event, insert_id = _event(message, stream, now, limits, client_ip, fallback)
        except _Bad as bad:
            out.rejected.append(Rejection(index, given, bad.field, bad.reason))
            continue
        out.events.append(event)
        out.insert_ids.append(insert_id)
    return out
