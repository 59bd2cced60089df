"""Segment tracking-spec messages, checked against a declared stream and written as canonical lines.

Both ways produce the same line for the same message (the contract's, :mod:`rta.contract.segment`):
only the fields the flow reads, typed as it reads them, led by what the API settled (``_t`` the
event time, clock skew corrected; ``_id`` the insert id, derived when missing; ``_ip`` the
client's address when the message does not say where it comes from).

- :class:`rta.ingest.fast_path.FastPath` decodes and checks a whole batch in C (msgspec) and
  encodes its lines from the typed messages;
- :func:`validate` checks message by message and names every bad one: index, insert id, field and
  reason. Batches the fast path declines come here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from rta.compiler.plan import StreamPlan
from rta.contract.http import HttpError
from rta.contract.properties import EMPTY, Flat, PropertyError, flatten, line_texts
from rta.contract.segment import (
    KNOWN_KEYS,
    MAX_EVENT_BYTES,
    MAX_EVENTS,
    MAX_NAME,
    MAX_STRING,
    TYPES,
    Limits,
    MessageTypes,
    message_types,
    property_fields,
)

__all__ = ["Limits", "Rejection", "RequestError", "Validated", "decode_messages", "validate"]


class RequestError(HttpError):
    """The request as a whole is unusable: its status and the reason (never a retry time)."""


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


@dataclass
class Validated:
    """Accepted messages as log lines, their insert ids, and rejections."""

    lines: list[bytes] = field(default_factory=list)
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
        if ndjson:  # lines end at \n only: U+2028 and friends are valid inside JSON strings
            items = [_decode(line) for line in text.split("\n") if line.strip(" \t\r")]
        else:
            items = _decode(text)
    except (msgspec.DecodeError, ValueError) as err:
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
        if shared:  # a batch-level context applies to every message, under its own (a context that is no object is refused later)
            items = [_with_context(m, shared) for m in items]
    if not isinstance(items, list):
        raise RequestError(400, "expected an array of messages")
    if len(items) > MAX_EVENTS:
        raise RequestError(413, f"the request holds {len(items):,} events; the limit is {MAX_EVENTS:,} per request")
    return items


def _decode(text: str) -> Any:
    """JSON text as Python values. A number no float or 64-bit integer holds is valid JSON: the
    standard library reads it (as inf, or a big integer), so the per-event checks can refuse just
    the event whose measure it is, and ignore it where nobody reads it."""
    try:
        return msgspec.json.decode(text)
    except msgspec.ValidationError as err:
        if "out of range" not in str(err):
            raise
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as err:
        if "digits" in str(err):
            msg = "a number in the body has over 4,300 digits; no field takes one that long"
            raise ValueError(msg) from None
        raise


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON; send numbers, or null"
    raise ValueError(msg)


def _with_context(message: object, shared: dict[str, Any]) -> object:
    if not isinstance(message, dict):
        return message
    own = message.get("context")
    if own is None:
        return {**message, "context": shared}
    return {**message, "context": {**shared, **own}} if isinstance(own, dict) else message


_TIME_HINT = "expected an ISO 8601 time such as 2026-11-28T12:00:00Z"


def parse_time(text: object, name: str) -> datetime:
    """A message's time: RFC 3339 (any case) or what Python's ISO 8601 reader takes, with a zone.

    An RFC 3339 time keeps the zone it was written in, as on the fast path (so both ways write
    the same line); one only Python's reader takes is given in UTC.
    """
    if not isinstance(text, str):
        raise _Bad(name, f"{_TIME_HINT}, got {_show(text)}")
    rfc3339 = True
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        rfc3339 = False
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(name, f"{_TIME_HINT}, got {_show(text)}") from None
    if value.tzinfo is None:
        raise _Bad(name, f"{text!r} has no time zone; add Z or an offset such as +01:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 and the like
        raise _Bad(name, f"{text!r} is out of range; {_TIME_HINT}") from None
    return value if rfc3339 else utc


def _show(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return "a number too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _event_time(message: Mapping[str, Any], now: datetime, limits: Limits) -> datetime:
    """Segment's rule: ``timestamp``, else ``originalTimestamp`` corrected by the client's clock skew (``sentAt``)."""
    if message.get("timestamp") is not None:
        at = parse_time(message["timestamp"], "timestamp")
        name = "timestamp"
    elif message.get("originalTimestamp") is not None:
        at = parse_time(message["originalTimestamp"], "originalTimestamp")
        if message.get("sentAt") is not None:
            at = now - (parse_time(message["sentAt"], "sentAt") - at)
        name = "originalTimestamp"
    else:
        return now
    return _in_window(at, name, now, limits)


def _in_window(at: datetime, name: str, now: datetime, limits: Limits) -> datetime:
    if at < now - limits.max_age:
        hours = limits.max_age.total_seconds() / 3600
        raise _Bad(name, f"{at.isoformat()} is more than {hours:g} hours old; load old events with `rta load`")
    if at > now + limits.max_ahead:
        hours = limits.max_ahead.total_seconds() / 3600
        raise _Bad(name, f"{at.isoformat()} is more than {hours:g} hour(s) ahead; check the client clock")
    return at


def _text(name: str, value: object) -> str | None:
    """A dimension's value as the log keeps it (strings; integers spelled out)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"properties.{name}", f"expected a string, got {_show(value)}")
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # over Python's 4,300 digits
        raise _Bad(f"properties.{name}", f"is a number too long to be a value; the limit is {MAX_STRING:,} characters") from None
    if len(text) > MAX_STRING:
        raise _Bad(f"properties.{name}", f"is {len(text):,} characters; the limit is {MAX_STRING:,}")
    return text


def _number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
        raise _Bad(f"properties.{name}", "is beyond the range of a 64-bit float (about 1.8e308); expected a finite number")
    raise _Bad(f"properties.{name}", f"expected a number, got {_show(value)}")


def _context(context: dict[str, Any], types: MessageTypes) -> Any:
    """The context fields the flow reads, typed as the fast path demands."""
    try:
        return msgspec.convert(context, types.context)
    except msgspec.ValidationError as err:
        where = str(err).rpartition(" - at `$")[2].rstrip("`")
        raise _Bad(f"context{where}", str(err).partition(" - at ")[0]) from None


def located(properties: Any, context: Any) -> bool:
    """Whether a message says where it comes from (so the client's address is not needed)."""
    if properties is not None and getattr(properties, "country", None) is not None:
        return True
    return context is not None and (context.ip is not None or (context.location is not None and context.location.country is not None))


def _user(value: object, name: str) -> str | None:
    """A user id as the log keeps it (integers spelled out), or None when absent."""
    if value is None:
        return None
    needed = "a message needs a userId or an anonymousId (a non-empty string)"
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _Bad("userId", needed)
    if isinstance(value, int) and abs(value) >= 10**MAX_NAME:
        raise _Bad(name, f"is a number over {MAX_NAME} digits; the limit is {MAX_NAME} characters")
    text = str(value)
    if len(text) > MAX_NAME:
        raise _Bad(name, f"is {len(text):,} characters; the limit is {MAX_NAME}")
    return text


def _event(
    message: object, stream: StreamPlan, types: MessageTypes, now: datetime, limits: Limits, client_ip: str | None, fallback_id: str
) -> tuple[bytes, str]:
    if not isinstance(message, dict):
        raise _Bad("", f"expected a message object, got {_show(message)}")
    unknown = sorted(set(message) - KNOWN_KEYS)
    if unknown:
        raise _Bad(unknown[0], f"unknown key {unknown[0]!r}; put custom fields in properties")
    kind = message.get("type")
    if kind not in TYPES:
        raise _Bad("type", f"expected one of {', '.join(TYPES)}, got {_show(kind)}")
    name = message.get("event")
    if kind == "track":
        if not isinstance(name, str) or not name.strip():
            raise _Bad("event", f"a track call needs an event name, got {_show(name)}")
        if len(name) > MAX_NAME:
            raise _Bad("event", f"is {len(name):,} characters; the limit is {MAX_NAME}")
    elif not isinstance(name, str) or len(name) > MAX_NAME:
        name = None  # other calls count as their type's event; a stray name is not read
    user, anonymous = _user(message.get("userId"), "userId"), _user(message.get("anonymousId"), "anonymousId")
    if user is None and anonymous is None:
        raise _Bad("userId", "a message needs a userId or an anonymousId (a non-empty string)")
    insert_id = message.get("messageId")
    if insert_id is None:  # absent or null: derived, as on the fast path
        insert_id = fallback_id
    if not isinstance(insert_id, str) or not insert_id or len(insert_id) > MAX_NAME:
        raise _Bad("messageId", f"expected a string of 1 to {MAX_NAME} characters, got {_show(insert_id)}")
    given = message.get("properties")
    if given is not None and not isinstance(given, dict):
        raise _Bad("properties", f"expected an object, got {_show(given)}")
    context = message.get("context")
    if context is not None and not isinstance(context, dict):
        raise _Bad("context", f"expected an object, got {_show(context)}")
    typed_context = None if context is None else _context(context, types)
    properties, flat = None, EMPTY
    if given is not None:
        values: dict[str, object] = {}
        for prop, kind_of in property_fields(stream).items():
            value = _number(prop, given.get(prop)) if kind_of is float else _text(prop, given.get(prop))
            if value is not None:
                values[prop] = value
        properties = types.properties(**values)
        flat = _flat(given, types.declared, "properties")
    traits = message.get("traits")
    if traits is not None and not isinstance(traits, dict):
        raise _Bad("traits", f"expected an object, got {_show(traits)}")
    traits_flat = _flat(merged_traits(typed_context, traits), frozenset(), "traits")
    previous = _previous(message.get("previousId"))
    at = _event_time(message, now, limits)
    ip = client_ip if client_ip and "country" in stream.dims and not located(properties, typed_context) else None
    line = types.line(at, insert_id, kind, ip, name, user, anonymous, properties, without_traits(typed_context), previous,
                      *line_texts(flat, traits_flat))  # fmt: skip
    return types.encode(line), insert_id


def _flat(values: dict[str, Any] | None, skip: frozenset[str], what: str) -> Flat:
    try:
        return flatten(values, skip, what=what)
    except PropertyError as err:
        raise _Bad(err.path, err.reason) from None


def _previous(value: object) -> str | None:
    """An alias call's previous id, as the log keeps it (integers spelled out)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _Bad("previousId", f"expected the id the user had before (a non-empty string), got {_show(value)}")
    return _user(value, "previousId")


def merged_traits(context: Any, traits: dict[str, Any] | None) -> dict[str, Any] | None:
    """A message's traits: ``context.traits``, overridden by an identify call's own ``traits``."""
    shared = None if context is None else context.traits
    if not shared:
        return traits
    return {**shared, **traits} if traits else shared


def without_traits(context: Any) -> Any:
    """The context as the line keeps it: its traits travel flattened, in ``_tr``."""
    return context if context is None or context.traits is None else msgspec.structs.replace(context, traits=None)


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
    types = message_types(stream)
    items = decode_messages(body, ndjson=ndjson, single_type=single_type)
    seed = request_id or hashlib.blake2b(body, digest_size=12).hexdigest()
    out = Validated()
    for index, message in enumerate(items):
        given = message.get("messageId") if isinstance(message, dict) and isinstance(message.get("messageId"), str) else None
        try:
            if _size(message) > MAX_EVENT_BYTES:
                raise _Bad("", f"the event is over {MAX_EVENT_BYTES // 1024} KB; the limit is {MAX_EVENT_BYTES // 1024} KB per event")
            line, insert_id = _event(message, stream, types, now, limits, client_ip, f"{seed}-{index}")
        except _Bad as bad:
            out.rejected.append(Rejection(index, given, bad.field, bad.reason))
            continue
        out.lines.append(line)
        out.insert_ids.append(insert_id)
    return out


def _size(message: object) -> int:
    try:
        return len(msgspec.json.encode(message))
    except ValueError:  # an int over Python's 4,300 digits: far over any limit
        return MAX_EVENT_BYTES + 1
