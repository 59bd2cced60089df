"""Sessions (visits) of a stream: how long a pause ends one, how long one may last, how late its events may come."""

from __future__ import annotations

from dataclasses import dataclass

from rta.dsl.durations import parse_duration
from rta.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class Sessions:
    """How a stream's events are cut into visits. Build it with :func:`sessions`; pass it as ``stream(session=...)``."""

    gap: str = "30m"
    max: str = "24h"
    lateness: str = "1h"

    def __post_init__(self) -> None:
        gap = parse_duration(self.gap, what="session gap")
        longest = parse_duration(self.max, what="session max")
        parse_duration(self.lateness, what="session lateness")
        if longest < gap:
            msg = f"sessions: max={self.max!r} is shorter than gap={self.gap!r}; a session lasts at least one gap, e.g. max='24h'"
            raise DefinitionError(msg)

    def seconds(self) -> tuple[int, int, int]:
        """(gap, max, lateness) in seconds."""
        return parse_duration(self.gap), parse_duration(self.max), parse_duration(self.lateness)

    def __repr__(self) -> str:
        """For example ``Sessions(gap 30m, max 24h, lateness 1h)``."""
        return f"Sessions(gap {self.gap}, max {self.max}, lateness {self.lateness})"


def sessions(gap: str = "30m", max: str = "24h", lateness: str = "1h") -> Sessions:  # noqa: A002 - the issue's spelling
    """Visits of a stream: a person's events with no pause over ``gap``, at most ``max`` long.

    Events carrying a client session id (``context.sessionId``, or PostHog's ``$session_id``
    property) are one visit per id. A visit stays open to late events until the newest event seen
    is ``gap`` plus ``lateness`` past its end (docs/architecture.md, "Sessions").

    >>> sessions(gap="15m")
    Sessions(gap 15m, max 24h, lateness 1h)
    """
    return Sessions(gap, max, lateness)
