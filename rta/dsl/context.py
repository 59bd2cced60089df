"""The definition collector: definitions made while a metrics file loads register here.

Registration lets ``rollup("traffic", ...)`` work without assigning the result, as in
a notebook; outside ``collecting()`` nothing is recorded and definitions stay plain values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[list[object] | None] = ContextVar("rta_definitions", default=None)


@contextmanager
def collecting() -> Iterator[list[object]]:
    """Collect every definition created inside the block, in order."""
    bucket: list[object] = []
    token = _active.set(bucket)
    try:
        yield bucket
    finally:
        _active.reset(token)


def register(definition: object) -> None:
    """Record ``definition`` in the active collector, if any."""
    bucket = _active.get()
    if bucket is not None:
        bucket.append(definition)


def latest(kind: type) -> object | None:
    """The most recent definition of ``kind`` in the active collector."""
    for item in reversed(_active.get() or ()):
        if isinstance(item, kind):
            return item
    return None
