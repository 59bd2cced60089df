"""The definition collector: definitions made while a metrics file loads register here.

Registration lets ``rollup("traffic", ...)`` work without assigning the result, as in
a notebook; outside ``collecting()`` nothing is recorded and definitions stay plain values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[list[object] | None] = ContextVar("rta_definitions", default=None)
# The latest definition of each kind, also outside a collector: in a notebook, metrics
# declared after a stream read that stream without naming it.
_latest: ContextVar[dict[type, object] | None] = ContextVar("rta_latest", default=None)


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
    _latest.set({**(_latest.get() or {}), type(definition): definition})


def latest(kind: type) -> object | None:
    """The most recent definition of ``kind``, in the active collector if there is one."""
    bucket = _active.get()
    if bucket is None:
        return (_latest.get() or {}).get(kind)
    return next((item for item in reversed(bucket) if isinstance(item, kind)), None)
