"""The collect API's fast path: a whole batch decoded and checked in C, its lines encoded from the typed messages.

It must write, for every batch it takes, exactly the lines the per-event way
(:func:`rta.ingest.segment.validate`) writes: both encode the contract's line type
(:mod:`rta.contract.segment`), and a property test holds them equal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from rta.compiler.plan import StreamPlan
from rta.contract.properties import PropertyError, flatten, line_texts
from rta.contract.segment import MAX_EVENT_BYTES, MAX_EVENTS, Limits, message_types
from rta.ingest.segment import RequestError, located, merged_traits, without_traits


class _RawBatch(msgspec.Struct, gc=False):
    batch: list[msgspec.Raw]


class FastPath:
    """Whole batches decoded and checked in C by msgspec against the contract's types.

    A batch that passes is written as the lines the contract encodes from its typed messages. A
    batch that does not pass, or needs rewriting (a batch-level context), goes the per-event
    way, which names every bad event.
    """

    def __init__(self, stream: StreamPlan) -> None:
        self.types = message_types(stream)
        self._typed: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.types.batch)
        self._raw = msgspec.json.Decoder(_RawBatch)
        self._wants_ip = "country" in stream.dims

    def lines(
        self, body: bytes, now: datetime, limits: Limits, client_ip: str | None, seed: Callable[[], str]
    ) -> tuple[list[bytes], list[str]] | None:
        """The messages' log lines (without their newline) and insert ids, or None when the per-event way must judge the batch."""
        try:
            typed: Any = self._typed.decode(body)
            sizes = [len(raw) for raw in self._raw.decode(body).batch] if len(body) > MAX_EVENT_BYTES else [0]
        except (msgspec.DecodeError, RecursionError):  # whatever is wrong, the per-event way says what, or refuses the request
            return None
        messages = typed.batch
        if typed.context is not None or not messages or max(sizes) > MAX_EVENT_BYTES:
            return None  # a shared context to merge, or a message the per-event way refuses as too big
        if len(messages) > MAX_EVENTS:
            raise RequestError(413, f"the request holds {len(messages):,} events; the limit is {MAX_EVENTS:,} per request")
        names = [m.event for m in messages]
        if None in names and any(m.type == "track" and m.event is None for m in messages):
            return None  # a track call without an event name
        if not all(name is None or name.strip() for name in set(names)):
            return None  # a blank one
        if None in [m.userId for m in messages] and any(m.userId is None and m.anonymousId is None for m in messages):
            return None
        settled = [m.timestamp if m.timestamp is not None else _settled_time(m, now) for m in messages]
        if min(settled) < now - limits.max_age or max(settled) > now + limits.max_ahead:
            return None
        ids = [m.messageId or f"{seed()}-{index}" for index, m in enumerate(messages)]
        ip = client_ip if client_ip and self._wants_ip else None
        types = self.types
        line, encode, declared = types.line, types.encode, types.declared
        out = []
        try:
            for i, (m, at) in enumerate(zip(messages, settled, strict=True)):
                given = m.properties
                properties = None if given is None else msgspec.convert(given, types.properties)
                texts = line_texts(flatten(given, declared), flatten(merged_traits(m.context, m.traits), what="traits"))
                out.append(encode(line(at, ids[i], m.type, ip if ip and not located(properties, m.context) else None,
                                       m.event, m.userId, m.anonymousId, properties, without_traits(m.context), m.previousId,
                                       *texts)))  # fmt: skip
        except (msgspec.ValidationError, PropertyError):  # a declared property of the wrong type, too many properties...
            return None
        return out, ids


def _settled_time(message: Any, now: datetime) -> datetime:
    """Segment's rule, for a message that passed the typed decode (see :func:`_event_time`)."""
    if message.originalTimestamp is None:
        return now
    return message.originalTimestamp if message.sentAt is None else now - (message.sentAt - message.originalTimestamp)
