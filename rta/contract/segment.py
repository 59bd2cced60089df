"""The Segment message contract: what the collect API accepts, and the line it writes for the flow.

One table of fields (:data:`CONTEXT`, the stream's properties) builds both sides: the msgspec
types the API decodes and checks messages with, and the Polars schema the flow reads the log
with. What the API acknowledges is written as one canonical line per message
(:meth:`MessageTypes.encode`): compact JSON holding only the fields the flow reads, typed as
the flow reads them, led by what the API settled: ``_t`` (the event time, clock skew
corrected, in RFC 3339 as msgspec writes a datetime: the flow parses it vectorized), ``_id``
(the insert id) and ``_ip`` (the client's address, when the message does not say where it
comes from). Whatever layout a client sends (indentation, CRLF, duplicate keys, escapes, a
400-digit number in a field nobody reads, ``t``/``z`` in lower case), the log holds lines the
flow parses to exactly what the API checked (docs/architecture.md, "One event contract").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
import polars as pl

from rta.compiler.plan import StreamPlan
from rta.contract.properties import LINE_FIELDS

MAX_EVENT_BYTES = 64 * 1024
MAX_EVENTS = 2_000
MAX_STRING = 1_024  # characters of a dimension value
MAX_NAME = 200  # characters of an event name, a user id, an insert id
# Message types other than track, and the event name each one counts as.
EVENT_NAMES = {"page": "page_view", "screen": "screen_view", "identify": "identify", "group": "group", "alias": "alias"}
TYPES = ("track", *EVENT_NAMES)
# Every key the Segment spec and its SDKs put on a message; anything else is a mistake.
KNOWN_KEYS = frozenset(
    {
        "type", "event", "name", "category", "userId", "anonymousId", "previousId", "groupId", "messageId",
        "timestamp", "originalTimestamp", "sentAt", "receivedAt", "properties", "traits", "context",
        "integrations", "_metadata", "version", "channel", "writeKey", "options", "library",
    }
)  # fmt: skip
# Written by the API in front of each line: the settled event time, the insert id, the client's address.
API_FIELDS = ("_t", "_id", "_ip")
CAMPAIGN_PARTS = ("name", "source", "medium", "term", "content")
PAGE_PARTS = ("path", "referrer", "url", "title", "search")
# Dimensions the flow derives from the referrer, the page URL and UTM tags (rta/flows/referrers.py).
TRAFFIC_DIMS = ("source", "medium", "referrer_host")
# The context fields the flow reads (dimensions it fills when properties leave them out).
CONTEXT: dict[str, Any] = {
    "userAgent": str, "ip": str, "locale": str, "location": {"country": str}, "sessionId": str,
    "campaign": dict.fromkeys(CAMPAIGN_PARTS, str), "page": dict.fromkeys(PAGE_PARTS, str),
}  # fmt: skip
MAX_IP = 64

Text = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
Zoned = Annotated[datetime, msgspec.Meta(tz=True)]


def utm_field(dim: str) -> str | None:
    """The ``utm_*`` property that may carry a campaign dimension (``campaign`` -> ``utm_campaign``)."""
    part = "name" if dim == "campaign" else dim
    return f"utm_{dim}" if part in CAMPAIGN_PARTS else None


def property_fields(stream: StreamPlan) -> dict[str, type]:
    """The properties the flow reads: declared dimensions (strings), measures (numbers), UTM spellings."""
    fields: dict[str, type] = {d: str for d in stream.dims if d != "event"}
    fields |= dict.fromkeys(stream.measures, float)
    fields |= {u: str for d in stream.dims if (u := utm_field(d)) and u not in fields}
    if any(d in TRAFFIC_DIMS for d in stream.dims):  # a source's medium says "(not set)" when only its source is tagged
        fields |= {u: str for u in ("utm_source", "utm_medium") if u not in fields}
    return fields


@dataclass(frozen=True, slots=True)
class Limits:
    """How old or new an event the API accepts may be: never wider than the stream's own window."""

    max_age: timedelta = timedelta(hours=72)
    max_ahead: timedelta = timedelta(hours=1)

    def within(self, stream: StreamPlan) -> Limits:
        """These limits, narrowed to what ``stream`` counts (its ``max_lateness``, its future bound)."""
        return Limits(
            min(self.max_age, timedelta(seconds=stream.max_lateness_seconds)),
            min(self.max_ahead, timedelta(seconds=stream.max_future_seconds)),
        )


def _struct(name: str, fields: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> type:
    """A msgspec struct of optional fields from a field table (``str`` leaves capped in length), plus ``extra`` typed fields."""
    spec: list[tuple[str, Any, Any]] = [(key, kind | None, None) for key, kind in (extra or {}).items()]
    for key, kind in fields.items():
        if isinstance(kind, dict):
            inner: Any = _struct(name + key.title(), kind)
        elif kind is float:
            inner = float
        else:
            inner = Annotated[str, msgspec.Meta(max_length=MAX_IP)] if key == "ip" else Text
        spec.append((key, inner | None, None))
    return msgspec.defstruct(name, spec, omit_defaults=True, gc=False)


def _polars(fields: Mapping[str, Any]) -> dict[str, pl.DataType]:
    return {
        key: pl.Struct(_polars(kind)) if isinstance(kind, dict) else pl.Float64() if kind is float else pl.String()
        for key, kind in fields.items()
    }


_OTHER_KEYS = ("name", "category", "groupId", "receivedAt", "version", "channel", "writeKey", "options",
               "library", "metadata", "integrations")  # fmt: skip
Traits = dict[str, Any]  # free-form: flattened by rta.contract.properties


@dataclass(frozen=True)
class MessageTypes:
    """The msgspec types of one stream's messages, and the encoder of its log lines."""

    properties: type
    context: type
    message: type  # one message, typed: unknown keys refused, fields nobody reads skipped
    batch: type  # ``{"batch": [message, ...], "context": ...}``
    line: type  # what the log holds for one message
    declared: frozenset[str]  # the properties the stream reads itself; all others are flattened into the line's _p and _n

    def encode(self, line: Any) -> bytes:
        """One log line (without its newline)."""
        return _ENCODER.encode(line)


_ENCODER = msgspec.json.Encoder()


@cache
def message_types(stream: StreamPlan) -> MessageTypes:
    """The types built from ``stream``'s properties and :data:`CONTEXT` (one set per stream)."""
    properties = _struct("Properties", property_fields(stream))
    # context.traits is read for people (flattened into the line's _tr), never written in the line's context.
    context = _struct("Context", CONTEXT, {"traits": Traits})
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("type", Literal[TYPES]),
        ("event", Name | None, None),
        ("userId", Id | None, None),
        ("anonymousId", Id | None, None),
        ("messageId", Id | None, None),
        ("timestamp", Zoned | None, None),
        ("originalTimestamp", Zoned | None, None),
        ("sentAt", Zoned | None, None),
        ("properties", dict[str, Any] | None, None),  # all of them: the declared ones are checked against `properties`
        ("traits", Traits | None, None),
        ("previousId", Id | None, None),
        ("context", context | None, None),
        *((key, msgspec.Raw | None, None) for key in _OTHER_KEYS),  # known, not read: not decoded, not written
    ]
    message = msgspec.defstruct("Message", fields, forbid_unknown_fields=True, rename={"metadata": "_metadata"}, gc=False)
    batch = msgspec.defstruct("Batch", [("batch", list[message]), ("context", dict[str, Any] | None, None)])  # type: ignore[valid-type]
    line = msgspec.defstruct(
        "Line",
        [
            ("t", datetime),
            ("id", str),
            ("type", str),
            ("ip", str | None, None),
            ("event", str | None, None),
            ("userId", str | None, None),
            ("anonymousId", str | None, None),
            ("properties", properties | None, None),
            ("context", context | None, None),
            ("previousId", str | None, None),
            *((field.lstrip("_"), str | None, None) for field in LINE_FIELDS),  # JSON objects, as text (rta.contract.properties)
        ],
        rename={"t": "_t", "id": "_id", "ip": "_ip", **{field.lstrip("_"): field for field in LINE_FIELDS}},
        omit_defaults=True,
        gc=False,
    )
    return MessageTypes(properties, context, message, batch, line, frozenset(property_fields(stream)))


def line_schema(stream: StreamPlan) -> dict[str, pl.DataType]:
    """The Polars schema of the log's lines (``_t`` as text: lines of earlier versions hold ISO times there)."""
    schema: dict[str, pl.DataType] = dict.fromkeys((*API_FIELDS, "type", "event", "userId", "anonymousId"), pl.String())
    schema["properties"] = pl.Struct(_polars(property_fields(stream)))
    schema["context"] = pl.Struct(_polars(CONTEXT))
    schema["previousId"] = pl.String()
    schema |= dict.fromkeys(LINE_FIELDS, pl.String())  # each a JSON object's text, read as it is
    return schema
